"""``Report``: a computed report, written as JSON for programs and as an HTML page for people.

The JSON (schema ``bayeslm.report/3``, ``docs/report.md``) holds every number; the page
(:mod:`bayeslm.report.page`) is rendered from it and the InferenceData its MCMC plots need.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bayeslm.core.files import atomic_write_text
from bayeslm.exceptions import ConfigError

__all__ = ["SCHEMA", "Report", "output_paths", "jsonable"]

SCHEMA = "bayeslm.report/3"


def jsonable(obj):
    """Plain JSON data: numpy scalars/arrays to python, NaN and infinities to None."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [jsonable(v) for v in obj.tolist()]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if obj is None or isinstance(obj, str):
        return obj
    return str(obj)


def output_paths(out: str | Path) -> tuple[Path, Path]:
    """The HTML path and the JSON path beside it (same stem), checked before any work.

    Raises :class:`~bayeslm.exceptions.ConfigError` if the directory does not exist, the
    path is a directory, or it ends in ``.json`` (the JSON would overwrite the page).
    """
    out = Path(out)
    if out.suffix.lower() == ".json":
        raise ConfigError(f"{out}: give the HTML path (e.g. report.html); the JSON is written beside it")
    if out.is_dir():
        raise ConfigError(f"{out} is a directory; give a file name such as {out / 'report.html'}")
    parent = out.parent
    if not parent.is_dir():
        raise ConfigError(f"{out}: directory {parent} does not exist")
    return out, out.with_suffix(".json")


def _check_directory(path: Path) -> Path:
    if not path.parent.is_dir():
        raise ConfigError(f"{path}: directory {path.parent} does not exist")
    return path


@dataclass
class Report:
    """The computed report: ``data`` (the JSON content) and the InferenceData its MCMC plots need.

    Use :meth:`to_dict` / :meth:`to_json` for programs, :meth:`to_html` for people,
    :meth:`write` for both at once (``x.html`` and ``x.json``).
    """

    data: dict
    idata: object = field(default=None, repr=False)

    def to_dict(self) -> dict:
        """Every figure of the report as plain JSON data (schema ``bayeslm.report/3``)."""
        return json.loads(json.dumps(self.data))

    def json_text(self) -> str:
        return json.dumps(self.data, indent=1, allow_nan=False, ensure_ascii=False)

    def to_json(self, path: str | Path) -> Path:
        """Write the JSON atomically; the directory must exist."""
        path = _check_directory(Path(path))
        atomic_write_text(path, self.json_text() + "\n")
        return path

    def render_html(self) -> str:
        """The page as a string (renders the figures; needs matplotlib)."""
        from bayeslm.report.page import render_page

        return render_page(self.data, self.idata)

    def to_html(self, path: str | Path) -> Path:
        """Write the self-contained HTML page atomically; the directory must exist."""
        path = _check_directory(Path(path))
        atomic_write_text(path, self.render_html())
        return path

    def write(self, out: str | Path) -> tuple[Path, Path]:
        """Write ``out`` (HTML) and the JSON beside it with the same stem; both or neither.

        Both texts are rendered before either file is written; each is written to a
        temporary file and renamed.
        """
        html_path, json_path = output_paths(out)
        page, text = self.render_html(), self.json_text() + "\n"
        atomic_write_text(json_path, text)
        atomic_write_text(html_path, page)
        return html_path, json_path

    @property
    def ok(self) -> bool:
        return bool(self.data["diagnostics"]["ok"])

    def __str__(self) -> str:
        d = self.data
        ev = d["entropy"]["evaluation"]
        pp = ev["perplexity"]
        diag = d["diagnostics"]
        lines = [
            f"{d['model']['family']} order {d['model']['order']} on {d['test']['tokens']} held-out tokens "
            f"({d['test']['positions']} scored positions)",
            "fit: OK" if diag["ok"] else f"fit: {len(diag['problems'])} problem(s): " + " | ".join(diag["problems"][:3])
            + (" | ..." if len(diag["problems"]) > 3 else ""),
            f"predictive cross-entropy {ev['predictive_cross_entropy_bits']:.4f} bits/token, perplexity "
            f"{ev['predictive_perplexity']:.2f} (per draw {pp['mean']:.2f}, {100 * pp['hdi_prob']:.0f}% HDI "
            f"[{pp['hdi_low']:.2f}, {pp['hdi_high']:.2f}])",
            f"calibration: ECE {d['entropy']['calibration']['ece']:.4f}",
        ]
        if d["ppc"].get("available"):
            lines.append("posterior predictive checks: " + (
                "flagged " + ", ".join(d["ppc"]["flagged"]) if d["ppc"]["flagged"] else "no statistic outside the replicates"))
        return "\n".join(lines)
