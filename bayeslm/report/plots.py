"""Figures of the report, drawn with matplotlib (imported inside each function).

Every function returns a :class:`matplotlib.figure.Figure` made without pyplot (so no
global figure registry and no interactive backend is touched; :func:`figure_to_png`
renders with Agg). The corpus, entropy, calibration and comparison plots take the
sections of the report's JSON (:meth:`bayeslm.report.Report.to_dict`), so a figure can be
redrawn from the JSON alone; the MCMC plots take the InferenceData and call ArviZ.
Statistics are computed elsewhere (``diagnostics``, ``ppc``, ``calibration``, ``entropy``).
"""

from __future__ import annotations

import io
import warnings

import numpy as np

__all__ = [
    "figure_to_png",
    "plot_rank",
    "plot_trace",
    "plot_energy",
    "plot_elbo",
    "plot_count_of_counts",
    "plot_type_token",
    "plot_sentence_lengths",
    "plot_ppc_statistics",
    "plot_cross_entropy",
    "plot_entropy_histograms",
    "plot_passage",
    "plot_reliability",
    "plot_comparison",
]

OBSERVED = "#111111"
REPLICATE = "#9aa5b1"
ALEATORIC = "#4c72b0"
EPISTEMIC = "#dd8452"
SURPRISAL = "#c44e52"
MAX_RANK_PANELS = 12


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig


def figure_to_png(fig, dpi: int = 96) -> bytes:
    """The figure as PNG bytes (Agg canvas; the figure is not kept anywhere)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # missing glyphs of exotic tokens
        fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _plain(text) -> str:
    """Text for a matplotlib label, never parsed as mathtext."""
    return str(text).replace("$", r"\$")


def _scalar_subset(idata, var_names, limit: int = MAX_RANK_PANELS):
    """The posterior restricted to ``var_names`` and to at most ``limit`` scalar entries."""
    post = idata["posterior"][list(var_names)]
    keep, total = [], 0
    for name in var_names:
        da = post[name]
        extra = [d for d in da.dims if d not in ("chain", "draw")]
        size = int(np.prod([da.sizes[d] for d in extra], dtype=np.int64)) if extra else 1
        if total >= limit:
            break
        if total + size > limit and extra:
            da = da.isel({extra[0]: slice(0, max(1, (limit - total) // max(size // da.sizes[extra[0]], 1)))})
            size = int(np.prod([da.sizes[d] for d in extra], dtype=np.int64))
        keep.append(da.rename(name))
        total += size
    import xarray as xr

    return xr.merge(keep), total


def plot_rank(idata, var_names):
    """ArviZ rank plots (one panel per scalar parameter, up to 12): uniform bars = chains agree."""
    import arviz as az

    subset, n = _scalar_subset(idata, var_names)
    ncols = min(n, 3)
    nrows = int(np.ceil(n / ncols))
    fig = _figure(3.6 * ncols, 2.6 * nrows)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ArviZ 0.23 vs matplotlib 3.11 deprecation notices
        az.plot_rank(subset, var_names=list(subset.data_vars), ax=axes[:n], show=False)
    for ax in axes[n:]:
        ax.remove()
    return fig


def plot_trace(idata, var_names):
    """ArviZ trace plots, one row per scalar parameter (up to 12): per-chain densities (left), draws (right)."""
    import arviz as az

    subset, n = _scalar_subset(idata, var_names)
    names = list(subset.data_vars)
    fig = _figure(11, 2.0 * n + 0.4)
    axes = fig.subplots(n, 2, squeeze=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        az.plot_trace(subset, var_names=names, axes=axes, compact=False, show=False)
    return fig


def plot_energy(idata):
    """ArviZ energy plot (NUTS): marginal energy vs energy transition distributions."""
    import arviz as az

    fig = _figure(6, 3.4)
    ax = fig.subplots()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        az.plot_energy(idata, ax=ax, show=False)
    return fig


def plot_elbo(elbo_bits):
    """The ELBO per iteration of a variational fit, in bits."""
    elbo = np.asarray(elbo_bits, dtype=float)
    fig = _figure(7, 3)
    ax = fig.subplots()
    ax.plot(np.arange(1, elbo.size + 1), elbo, color=ALEATORIC, lw=1)
    ax.set_xlabel("iteration")
    ax.set_ylabel("ELBO (bits)")
    ax.set_title("ELBO trace")
    return fig


# -- posterior predictive checks -------------------------------------------------------
def _replicate_lines(ax, x, replicated, label="replicates (posterior predictive)"):
    for i, row in enumerate(replicated):
        ax.plot(x, row, color=REPLICATE, lw=0.8, alpha=0.7, label=label if i == 0 else None)


def plot_count_of_counts(ppc: dict):
    """Types occurring c times vs c, observed against replicates (log scales)."""
    coc = ppc["count_of_counts"]
    c = np.asarray(coc["count"])
    fig = _figure(5.6, 3.8)
    ax = fig.subplots()
    rep = np.asarray(coc["replicated"], dtype=float)
    rep[rep <= 0] = np.nan
    obs = np.asarray(coc["observed"], dtype=float)
    obs[obs <= 0] = np.nan
    _replicate_lines(ax, c, rep)
    ax.plot(c, obs, color=OBSERVED, lw=1.8, marker="o", ms=3, label=f"observed ({ppc['observed_corpus']})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("count c")
    ax.set_ylabel("types occurring exactly c times")
    ax.set_title("Frequency of frequencies")
    ax.legend(fontsize=8)
    return fig


def plot_type_token(ppc: dict):
    """Distinct types among the first t tokens, observed against replicates."""
    tt = ppc["type_token"]
    t = np.asarray(tt["tokens"], dtype=float)
    fig = _figure(5.6, 3.8)
    ax = fig.subplots()
    rep = np.array([[np.nan if v is None else v for v in row] for row in tt["replicated"]], dtype=float)
    _replicate_lines(ax, t, rep)
    ax.plot(t, np.asarray(tt["observed"], dtype=float), color=OBSERVED, lw=1.8, label=f"observed ({ppc['observed_corpus']})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("tokens read")
    ax.set_ylabel("distinct types")
    ax.set_title("Type-token growth")
    ax.legend(fontsize=8)
    return fig


def plot_sentence_lengths(ppc: dict):
    """Sentence-length histogram: observed bars against the replicates' 5-95% band and median."""
    sl = ppc["sentence_length"]
    edges = np.asarray(sl["bin_edges"], dtype=float)
    obs = np.asarray(sl["observed"], dtype=float)
    rep = np.asarray(sl["replicated"], dtype=float)
    fig = _figure(5.6, 3.8)
    ax = fig.subplots()
    ax.bar(edges[:-1], obs, width=np.diff(edges), align="edge", color="#d9d9d9", edgecolor=OBSERVED, lw=0.6,
           label=f"observed ({ppc['observed_corpus']})")
    mid = (edges[:-1] + edges[1:]) / 2
    ax.fill_between(mid, np.quantile(rep, 0.05, axis=0), np.quantile(rep, 0.95, axis=0), color=ALEATORIC, alpha=0.3,
                    step="mid", label="replicates 5-95%")
    ax.step(mid, np.median(rep, axis=0), where="mid", color=ALEATORIC, lw=1.2, label="replicates median")
    ax.set_xlabel("tokens per sentence (last bin: that many or more)")
    ax.set_ylabel("sentences")
    ax.set_title("Sentence lengths")
    ax.legend(fontsize=8)
    return fig


def plot_ppc_statistics(ppc: dict):
    """One panel per scalar statistic: replicated values (histogram) and the observed value."""
    stats = {k: v for k, v in ppc["statistics"].items() if v["observed"] is not None and np.isfinite(v["observed"])}
    n = len(stats)
    ncols = min(3, max(n, 1))
    nrows = int(np.ceil(max(n, 1) / ncols))
    fig = _figure(3.8 * ncols, 2.7 * nrows)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, (name, s) in zip(axes, stats.items()):
        rep = np.asarray([np.nan if v is None else v for v in s["replicated"]], dtype=float)
        rep = rep[np.isfinite(rep)]
        ax.hist(rep, bins=min(15, max(rep.size // 2, 5)), color=REPLICATE, edgecolor="white")
        ax.axvline(s["observed"], color=SURPRISAL, lw=2)
        two = s["p_value_two_sided"]
        ax.set_title(f"{name}\np = {s['p_value']:.2f}, two-sided {two:.2f}" if two is not None else name, fontsize=9)
        ax.tick_params(labelsize=8)
    for ax in axes[n:]:
        ax.remove()
    return fig


# -- entropy ---------------------------------------------------------------------------
def plot_cross_entropy(entropy: dict):
    """Posterior of the held-out cross-entropy (bits per token), its HDI and the predictive value."""
    ev = entropy["evaluation"]
    hist = entropy["cross_entropy_bits_histogram"]
    edges = np.asarray(hist["bin_edges_bits"], dtype=float)
    fig = _figure(6, 3.2)
    ax = fig.subplots()
    ax.bar(edges[:-1], hist["count"], width=np.diff(edges), align="edge", color=ALEATORIC, alpha=0.6,
           label="per posterior draw")
    ce = ev["cross_entropy_bits"]
    ax.axvspan(ce["hdi_low"], ce["hdi_high"], color=ALEATORIC, alpha=0.12,
               label=f"{100 * ce['hdi_prob']:.0f}% HDI [{ce['hdi_low']:.4f}, {ce['hdi_high']:.4f}]")
    ax.axvline(ev["predictive_cross_entropy_bits"], color=SURPRISAL, lw=2,
               label=f"posterior predictive {ev['predictive_cross_entropy_bits']:.4f}")
    ax.set_xlabel("cross-entropy (bits per token)")
    ax.set_ylabel("draws")
    ax.set_title("Held-out cross-entropy")
    ax.legend(fontsize=8)
    return fig


def plot_entropy_histograms(entropy: dict):
    """Distributions over held-out positions of total, aleatoric and epistemic entropy (bits)."""
    hist = entropy["histograms"]
    fig = _figure(11, 3.2)
    axes = fig.subplots(1, 3)
    for ax, name, color in zip(axes, ("total", "aleatoric", "epistemic"), ("#55a868", ALEATORIC, EPISTEMIC)):
        h = hist[name]
        edges = np.asarray(h["bin_edges_bits"], dtype=float)
        ax.bar(edges[:-1], h["count"], width=np.diff(edges), align="edge", color=color, alpha=0.85)
        ax.set_yscale("log")
        mean = entropy["per_position_bits"][name]["mean"]
        ax.axvline(mean, color=OBSERVED, lw=1, ls="--")
        label = {"total": "predictive entropy", "aleatoric": "expected entropy (aleatoric)",
                 "epistemic": "mutual information (epistemic)"}[name]
        ax.set_title(f"{label}\nmean {mean:.3f} bits", fontsize=10)
        ax.set_xlabel("bits")
    axes[0].set_ylabel("positions (log scale)")
    return fig


def plot_passage(entropy: dict):
    """Along a passage: entropy split into aleatoric + epistemic, surprisal of the actual token."""
    p = entropy["passage"]
    tokens = [_plain(t) for t in p["tokens"]]
    x = np.arange(len(tokens))
    ale = np.asarray(p["aleatoric_bits"], dtype=float)
    epi = np.asarray(p["epistemic_bits"], dtype=float)
    sur = np.asarray(p["surprisal_bits"], dtype=float)
    fig = _figure(max(8.0, 0.17 * len(tokens) + 2), 5.2)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1.4])
    top.bar(x, ale, color=ALEATORIC, label="aleatoric (expected entropy)")
    top.bar(x, epi, bottom=ale, color=EPISTEMIC, label="epistemic (mutual information)")
    top.plot(x, sur, color=SURPRISAL, marker="o", ms=3, lw=0.8, label="surprisal of the actual token")
    top.set_ylabel("bits")
    top.legend(fontsize=8, ncols=3, loc="upper left")
    top.set_title("Uncertainty along a passage of the held-out text")
    bottom.bar(x, epi, color=EPISTEMIC)
    bottom.set_ylabel("epistemic\nbits")
    bottom.set_xticks(x)
    bottom.set_xticklabels(tokens, rotation=90, fontsize=7, parse_math=False)
    for label, oov in zip(bottom.get_xticklabels(), p.get("oov", [False] * len(tokens))):
        if oov:
            label.set_color(SURPRISAL)
    bottom.set_xlim(-0.6, len(tokens) - 0.4)
    for s in p.get("sentence_starts", []):
        if 0 < s < len(tokens):
            top.axvline(s - 0.5, color="#cccccc", lw=0.8, zorder=0)
            bottom.axvline(s - 0.5, color="#cccccc", lw=0.8, zorder=0)
    return fig


def plot_reliability(calibration: dict):
    """Reliability diagram of top-1 confidence, with the number of predictions per bin below."""
    bins = calibration["bins"]
    low = np.array([b["bin_low"] for b in bins])
    high = np.array([b["bin_high"] for b in bins])
    count = np.array([b["count"] for b in bins], dtype=float)
    acc = np.array([np.nan if b["accuracy"] is None else b["accuracy"] for b in bins], dtype=float)
    conf = np.array([np.nan if b["mean_confidence"] is None else b["mean_confidence"] for b in bins], dtype=float)
    fig = _figure(5.2, 5.4)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    width = high - low
    top.bar(low, np.nan_to_num(acc), width=width, align="edge", color=ALEATORIC, edgecolor="white", label="accuracy")
    top.hlines(conf, low, high, color=SURPRISAL, lw=2.2, label="mean confidence in the bin")
    top.plot([0, 1], [0, 1], color=OBSERVED, ls="--", lw=1, label="perfect calibration")
    top.set_ylabel("accuracy of the top-1 token")
    top.set_ylim(0, 1)
    top.set_title(f"Reliability (ECE {calibration['ece']:.4f}, {len(bins)} bins)")
    top.legend(fontsize=8, loc="upper left")
    bottom.bar(low, count, width=width, align="edge", color=REPLICATE, edgecolor="white")
    bottom.set_yscale("log")
    bottom.set_ylabel("positions")
    bottom.set_xlabel("confidence: top-1 predictive probability")
    bottom.set_xlim(0, 1)
    return fig


def plot_comparison(comparison: dict):
    """Held-out elpd per character of each model, with its standard error and the paired SE of the difference."""
    rows = comparison["models"]
    fig = _figure(7, 0.55 * len(rows) + 1.6)
    ax = fig.subplots()
    y = np.arange(len(rows))[::-1]
    elpd = np.array([r["elpd_per_char_bits"] for r in rows])
    se = np.array([r["elpd_se_per_char_bits"] for r in rows])
    dse = np.array([r["elpd_diff_se_per_char_bits"] or 0.0 for r in rows])
    ax.errorbar(elpd, y, xerr=se, fmt="o", color=OBSERVED, capsize=3, label="elpd per character +- SE")
    ax.errorbar(elpd[1:], y[1:] + 0.18, xerr=dse[1:], fmt="^", color=SURPRISAL, capsize=3, ms=4,
                label="+- SE of the difference to the best")
    ax.set_yticks(y)
    ax.set_yticklabels([_plain(r["label"]) for r in rows], parse_math=False)
    ax.axvline(elpd[0], color=REPLICATE, ls="--", lw=1)
    ax.set_xlabel("held-out elpd (bits per character; higher is better)")
    ax.legend(fontsize=8)
    return fig
