"""The building blocks of the report's HTML page: escaping, numbers, tables, figures, the style.

Everything that reaches the page from a corpus, a vocabulary or a configuration goes
through :func:`escape`. Figures are PNG data URIs (:func:`figure`); a figure that cannot be
drawn becomes a visible note, never a broken page. The page runs no script and loads
nothing (:data:`CSP`).
"""

from __future__ import annotations

import base64
import html
import json
import math

__all__ = ["CSP", "STYLE", "escape", "number", "figure", "table", "key_value_table", "json_cell", "status_mark"]

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def escape(x) -> str:
    """``x`` as HTML text (quotes too); None as an empty string."""
    return html.escape("" if x is None else str(x), quote=True)


def number(x, digits: int = 4) -> str:
    """A number for people: thousands separators, ``digits`` decimals, scientific when tiny or huge; None: n/a."""
    if x is None:
        return "n/a"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    x = float(x)
    if not math.isfinite(x):
        return "n/a"
    if x != 0 and (abs(x) >= 1e6 or abs(x) < 10 ** -(digits - 1)):
        return f"{x:.{max(digits - 1, 1)}e}"
    return f"{x:,.{digits}f}"


def _image(fig, alt: str, width: str | None = None) -> str:
    from bayeslm.report.plots import figure_to_png

    data = base64.b64encode(figure_to_png(fig)).decode("ascii")
    style = f' style="max-width:{width}"' if width else ""
    return f'<img src="data:image/png;base64,{data}" alt="{escape(alt)}"{style}>'


def figure(make, alt: str, caption: str, width: str | None = None) -> str:
    """An image with its caption; a failed plot becomes a visible note, not a broken page."""
    try:
        image = _image(make(), alt, width)
    except Exception as err:  # noqa: BLE001 - a plot must never lose the numbers
        image = f'<p class="note">This figure could not be drawn ({escape(type(err).__name__)}: {escape(err)}).</p>'
    return f"<figure>{image}<figcaption>{caption}</figcaption></figure>"


def table(header: list[str], rows: list[list[str]], classes: list[str] | None = None, cls: str = "") -> str:
    """A table of HTML cells (already escaped); ``classes``: a class per row, e.g. ``"fail"``."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        c = f' class="{classes[i]}"' if classes and classes[i] else ""
        body.append(f"<tr{c}>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>")
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def key_value_table(pairs: list[tuple[str, str]]) -> str:
    return '<table class="kv"><tbody>' + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in pairs) + "</tbody></table>"


def json_cell(obj) -> str:
    return f"<code>{escape(json.dumps(obj, ensure_ascii=False))}</code>"


def status_mark(ok) -> str:
    if ok is None:
        return '<span class="na">n/a</span>'
    return '<span class="pass">&#10003; pass</span>' if ok else '<span class="failmark">&#10007; FAIL</span>'


STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;background:#f6f7f9;color:#1d2430;line-height:1.45}
main{max-width:1120px;margin:0 auto;padding:18px 28px 60px;background:#fff;box-shadow:0 0 12px rgba(0,0,0,.06)}
h1{font-size:1.7em;margin:.3em 0 .1em}h2{border-bottom:2px solid #dde3ea;padding-bottom:.2em;margin-top:2.2em}
h3{margin-top:1.6em}.sub{color:#5a6472;margin:0 0 1em}
table{border-collapse:collapse;margin:.6em 0 1em;font-size:.9em}th,td{border:1px solid #dde3ea;padding:4px 8px;text-align:right;vertical-align:top}
th{background:#eef2f6}td:first-child,th:first-child{text-align:left}table.kv th{text-align:left;width:14em}table.kv td{text-align:left}
table.text td,table.text th{text-align:left}table.cmp td:nth-child(-n+3),table.cmp th:nth-child(-n+3){text-align:left}
.nowrap{white-space:nowrap}tr.fail td{background:#fde8e8}tr.warn td{background:#fff6dd}p.warn{background:#fff6dd;padding:.4em .6em}
.pass{color:#1a7f37;font-weight:600}.failmark{color:#b42318;font-weight:700}.na{color:#7a8491}
.cards{display:grid;grid-template-columns:repeat(3,1fr);gap:14px;margin:1em 0}
.card{border:1px solid #dde3ea;border-radius:8px;padding:10px 14px;background:#fbfcfd}.card h3{margin:.1em 0 .4em;font-size:1.02em}
.card.bad{border-color:#f1a7a7;background:#fff5f5}.card.good{border-color:#a6dcb5;background:#f4fbf6}.card.warn{border-color:#f0cf7a;background:#fffaeb}
.big{font-size:1.35em;font-weight:700}figure{margin:1em 0}figure img{max-width:100%;height:auto;border:1px solid #eef0f3}
figcaption{font-size:.88em;color:#4a5563;max-width:900px}.note{background:#fff6dd;border-left:4px solid #e0a800;padding:8px 12px}
.alert{background:#fde8e8;border-left:4px solid #b42318;padding:8px 12px}mark{background:#ffe08a;padding:0 2px}
code{font-size:.85em;word-break:break-all}nav a{margin-right:1em}.oov{color:#b42318;font-size:.8em}
.passage{line-height:2.1;font-size:.95em}.passage span{padding:1px 2px;border-radius:3px}
footer{margin-top:3em;color:#6b7480;font-size:.85em}
ol.continuations li{margin:.5em 0;line-height:2}.tok{padding:1px 3px;border-radius:3px;border:1px solid #eef0f3}
.prompt{color:#5a6472;font-style:italic}
"""
