"""The report's HTML page, rendered from the report's JSON data (and the InferenceData for MCMC plots).

One self-contained page: a summary of the three questions (can I trust the fit, how well
does it predict, where is it unsure), then the model card, diagnostics, posterior
predictive checks, entropy, comparison and, if asked for, sampled continuations. Figures
come from :mod:`bayeslm.report.plots`; HTML pieces and the style from
:mod:`bayeslm.report.html`. Nothing here computes a statistic.
"""

from __future__ import annotations

import numpy as np

from bayeslm.report import plots
from bayeslm.report.html import (
    CSP,
    STYLE,
    escape,
    figure,
    json_cell,
    key_value_table,
    number,
    status_mark,
    table,
)

__all__ = ["render_page"]

_SHADES = ("#ffffff", "#fde0dc", "#f9bdbb", "#f69988", "#f36c60", "#e84e40")  # white .. red
_CHAIN_COLUMNS = {"draws": "draws", "divergences": "divergences", "max_treedepth_hits": "max tree depth hits",
                  "bfmi": "E-BFMI"}


# -- model card ------------------------------------------------------------------------------
def _section_card(d: dict) -> str:
    card = d["model"]
    post = card["posterior"]
    v = card["versions"]
    pairs = [
        ("family / class", f"{escape(card['family'])} / {escape(card['class'])}"),
        ("order / architecture", f"{escape(card['order'])} &nbsp; {json_cell(card['architecture'])}"),
        ("model id", escape(card["id"])),
        ("vocabulary", f"{number(card['vocabulary_size'])} types &nbsp; tokenizer {json_cell(card['tokenizer'])}"),
        ("training text", f"{number(card['training_tokens'])} tokens in {number(card['training_sentences'])} sentences"),
        ("priors", json_cell(card["priors"])),
        ("sampler settings", json_cell(card["sampler"])),
        ("posterior", f"{post['chains']} chains x {post['draws_per_chain']} draws (tuning {escape(post['tuning_steps'])}); "
                      f"variables {escape(', '.join(post['variables']))}"),
        ("seeds", f"sampler {escape(card['seeds']['sampler_random_seed'])}, report replicates {escape(card['seeds']['report_random_seed'])}"),
        ("fit time", f"{number(card['fit_seconds'], 1)} s (sampling {number(card['sampling_seconds'], 1)} s), fitted {escape(card['fitted_at'])}"),
        ("versions", f"bayeslm {escape(v['bayeslm'])} (fitted with {escape(v['bayeslm_at_fit'])}), PyMC {escape(v['pymc'])}, "
                     f"ArviZ {escape(v['arviz'])}; sampled by {escape(v['inference_library_at_fit'])} {escape(v['inference_library_version_at_fit'])}"),
    ]
    if "mi_threshold_bits" in card:
        pairs.append(("epistemic flag threshold", f"{number(card['mi_threshold_bits'])} bits (used by generate)"))
    t = d["test"]
    pairs.append(("held-out text", f"{number(t['tokens'])} tokens in {number(t['sentences'])} sentences ({number(t['positions'])} scored "
                                   f"positions with one &lt;/s&gt; each), {number(t['oov'])} out of vocabulary "
                                   f"({100 * t['oov_rate']:.2f}%); {escape(', '.join(t['sources']))}"))
    return '<h2 id="card">1. Model card</h2>' + key_value_table(pairs)


# -- diagnostics -----------------------------------------------------------------------------
def _diagnostics_verdict(dg: dict) -> list[str]:
    th = dg["thresholds"]
    if dg["ok"]:
        hamiltonian = f', no divergences, E-BFMI &ge; {th["bfmi_min"]} in every chain' if dg["method"] == "mcmc" else ""
        parts = [f'<p class="pass">&#10003; All checks pass: R-hat &le; {th["r_hat_max"]}, bulk and tail ESS &ge; '
                 f'{th["ess_min"]}{hamiltonian}.</p>' if dg["has_chains"] else '<p>No failed check.</p>']
    else:
        parts = ['<div class="alert"><b>&#10007; Do not trust this fit yet.</b><ul>'
                 + "".join(f"<li>{escape(p)}</li>" for p in dg["problems"]) + "</ul></div>"]
    parts += [f'<p class="note">{escape(w)}</p>' for w in dg["warnings"]]
    if dg["message"]:
        parts.append(f'<p class="note">{escape(dg["message"])}</p>')
    return parts


def _parameter_table(dg: dict) -> str:
    th = dg["thresholds"]
    pct = f"{100 * dg['hdi_prob']:.0f}%"
    header = ["parameter", "mean", "sd", f"{pct} HDI", "MCSE mean", "MCSE sd", "ESS bulk", "ESS tail", "R-hat", "check"]
    rows, classes = [], []
    for p in dg["parameters"]:
        check = status_mark(p["ok"]) + (f"<br><small>{escape(p['problems'])}</small>" if p["problems"] else "")
        rows.append([escape(p["name"]), number(p["mean"]), number(p["sd"]), f"[{number(p['hdi_low'])}, {number(p['hdi_high'])}]",
                     number(p["mcse_mean"]), number(p["mcse_sd"]), number(p["ess_bulk"], 0), number(p["ess_tail"], 0),
                     number(p["r_hat"], 4), check])
        classes.append("fail" if p["ok"] is False else "")
    return (f"<p>Thresholds: R-hat &le; {th['r_hat_max']}, bulk and tail ESS &ge; {th['ess_min']} "
            "(Vehtari et al. 2021). Failing rows are marked.</p>" + table(header, rows, classes))


def _chain_table(chains: list[dict]) -> str:
    cols = [c for c in _CHAIN_COLUMNS if c in chains[0]]
    rows, classes = [], []
    for c in chains:
        ok = c.get("bfmi_ok", True) and not c.get("divergences", 0)
        rows.append([str(c["chain"])] + [number(c[k], 3) if k == "bfmi" else number(c[k]) for k in cols] + [status_mark(ok)])
        classes.append("" if ok else "fail")
    return "<h3>Per chain</h3>" + table(["chain"] + [_CHAIN_COLUMNS[c] for c in cols] + ["check"], rows, classes)


def _mcmc_figures(names: list[str], idata) -> list[str]:
    parts = [
        figure(lambda: plots.plot_rank(idata, names), "rank plots",
               "Rank plots: the ranks of all draws, split by chain. When the chains explore the same "
               "posterior every bar is near the dashed uniform line; bars sloping or differing between "
               "chains mean the chains disagree."),
        figure(lambda: plots.plot_trace(idata, names), "trace plots",
               "Trace plots: each chain's posterior density (left) and its draws in order (right); the "
               "chains should overlap and the traces look like stationary noise."),
    ]
    if "sample_stats" in idata.groups() and "energy" in idata["sample_stats"]:
        parts.append(figure(lambda: plots.plot_energy(idata), "energy plot",
                            "NUTS energy: the marginal energy distribution against the energy transitions. "
                            "If the transition distribution is much narrower (E-BFMI &lt; 0.3), the sampler "
                            "explores the tails poorly.", width="640px"))
    return parts


def _approximation_checks(approx: dict) -> list[str]:
    rows = [("final ELBO (bits)", number(approx.get("elbo_final_bits"))),
            ("relative ELBO change over the last 10% of iterations", number(approx.get("elbo_relative_change_last_10pct"))),
            ("PSIS Pareto k (max)", f"{number(approx.get('pareto_k'), 3)} {status_mark(approx.get('pareto_k_ok'))}")]
    parts = ["<h3>Checks of the approximation</h3>" + key_value_table(rows)]
    if approx.get("elbo_bits"):
        parts.append(figure(lambda: plots.plot_elbo(approx["elbo_bits"]), "ELBO trace",
                            "ELBO per iteration: it should rise and level off."))
    return parts


def _section_diagnostics(d: dict, idata) -> str:
    dg = d["diagnostics"]
    parts = ['<h2 id="diagnostics">2. Posterior diagnostics</h2>', *_diagnostics_verdict(dg), _parameter_table(dg)]
    if dg["chains"]:
        parts.append(_chain_table(dg["chains"]))
    if dg["has_chains"] and dg["var_names"]:
        parts += _mcmc_figures(dg["var_names"], idata)
    if dg.get("approximation"):
        parts += _approximation_checks(dg["approximation"])
    return "".join(parts)


# -- posterior predictive checks -------------------------------------------------------------
def _statistics_table(ppc: dict) -> str:
    rows, classes = [], []
    for name, s in ppc["statistics"].items():
        flagged = name in ppc["flagged"]
        digits = 4 if "share" in name else 2
        rows.append([f"<b>{escape(name)}</b><br><small>{escape(s['description'])}</small>", number(s["observed"], digits),
                     number(s["replicated_mean"], digits),
                     f"[{number(s['replicated_q025'], digits)}, {number(s['replicated_q975'], digits)}]",
                     number(s["p_value"], 2), number(s["p_value_two_sided"], 2),
                     '<span class="failmark nowrap">&#9888; outside</span>' if flagged else '<span class="pass">&#10003;</span>'])
        classes.append("warn" if flagged else "")
    return table(["statistic", "observed", "replicated mean", "replicates 95%", "p", "two-sided p", ""], rows, classes)


def _ppc_figures(ppc: dict) -> list[str]:
    return [
        figure(lambda: plots.plot_ppc_statistics(ppc), "posterior predictive statistics",
               "Each panel: the statistic in every replicate (grey) and in the observed text (red line)."),
        '<div class="cards" style="grid-template-columns:1fr 1fr">',
        figure(lambda: plots.plot_count_of_counts(ppc), "frequency of frequencies",
               "How many types occur exactly c times. Language has many rare types (Zipf); a model that "
               "smooths too little or too much shifts the left end."),
        figure(lambda: plots.plot_type_token(ppc), "type-token growth",
               "Distinct types met as the text is read; its slope is the rate of new words."),
        "</div>",
        figure(lambda: plots.plot_sentence_lengths(ppc), "sentence lengths",
               "Sentence lengths of the observed text (bars) and the replicates (band and median line).",
               width="640px"),
    ]


def _section_ppc(d: dict) -> str:
    ppc = d["ppc"]
    parts = ['<h2 id="ppc">3. Posterior predictive checks</h2>']
    if not ppc.get("available"):
        return "".join(parts) + f'<p class="note">{escape(ppc.get("reason"))}</p>'
    what = "training text" if ppc["observed_corpus"] == "train" else "held-out text"
    parts.append(
        f"<p>{ppc['replicates']} replicate corpora of {number(ppc['replicate_sentences'])} sentences each (the size of the "
        f"{what}) were drawn from the fitted model, each from its own posterior draw, and compared with the {what}. "
        f"The unseen-n-gram share is measured on {number(ppc['novelty_sentences'])}-sentence replicates (the held-out size) "
        "against the training counts. p is the share of replicates whose statistic is &ge; the observed one; "
        f"the two-sided value 2&nbsp;min(p,&nbsp;1&minus;p) below {ppc['flag_two_sided_below']} is flagged: the model "
        "does not reproduce that feature of the text.</p>")
    if ppc["observed_corpus"] == "test":
        parts.append('<p class="note">The training text was not given (<code>train=</code> / <code>--train</code>), '
                     "so the replicates are compared with the held-out text: a check of the model's predictions on "
                     "new text rather than of its fit to the training text.</p>")
    parts.append(_statistics_table(ppc))
    parts += _ppc_figures(ppc)
    return "".join(parts)


# -- entropy ---------------------------------------------------------------------------------
def _context_html(item: dict) -> str:
    oov = ' <span class="oov">OOV</span>' if item.get("oov") else ""
    return f"{escape(item['left'])} <mark>{escape(item['token'])}</mark>{oov} {escape(item['right'])}"


def _evaluation_html(ent: dict) -> list[str]:
    ev = ent["evaluation"]
    ce, pp = ev["cross_entropy_bits"], ev["perplexity"]
    pct = f"{100 * ce['hdi_prob']:.0f}%"
    return [
        table(["", "posterior predictive", "per draw: mean", f"{pct} HDI"],
              [["cross-entropy (bits per token)", number(ev["predictive_cross_entropy_bits"]), number(ce["mean"]),
                f"[{number(ce['hdi_low'])}, {number(ce['hdi_high'])}]"],
               ["perplexity", number(ev["predictive_perplexity"], 2), number(pp["mean"], 2),
                f"[{number(pp['hdi_low'], 2)}, {number(pp['hdi_high'], 2)}]"]]),
        "<p>The posterior-predictive value scores each token by its probability averaged over the posterior "
        "(the mixture); the per-draw values score the text under one posterior draw at a time, so their HDI "
        "shows how much the posterior's uncertainty moves the score. "
        f"Scored positions: {number(ev['positions'])}, out-of-vocabulary words scored as &lt;unk&gt;: "
        f"{number(ev['oov'])}.</p>",
        figure(lambda: plots.plot_cross_entropy(ent), "cross-entropy posterior",
               "Held-out cross-entropy under each posterior draw, its HDI and the posterior-predictive value.",
               width="640px"),
    ]


def _uncertainty_html(ent: dict) -> list[str]:
    per = ent["per_position_bits"]
    parts = [
        "<h3>Where the model is unsure</h3>",
        "<p>At every position the entropy of the predictive next-token distribution splits into the <b>expected "
        "entropy</b> (aleatoric: the language itself leaves the next token open, even if the parameters were known) "
        "and the <b>mutual information</b> between the next token and the parameters (epistemic: the model has seen "
        "too little of this context; more data would reduce it).</p>",
    ]
    rows = [[name, number(per[k]["mean"]), number(per[k]["median"]), number(per[k]["q05"]), number(per[k]["q95"]),
             number(per[k]["max"])]
            for name, k in (("predictive entropy", "total"), ("aleatoric (expected entropy)", "aleatoric"),
                            ("epistemic (mutual information)", "epistemic"), ("surprisal of the actual token", "surprisal"))]
    parts.append(table(["bits per position", "mean", "median", "5%", "95%", "max"], rows))
    if ent.get("epistemic_share") is not None:
        parts.append(f"<p>Epistemic share of the predictive entropy: {100 * ent['epistemic_share']:.1f}%.</p>")
    parts.append(figure(lambda: plots.plot_entropy_histograms(ent), "entropy histograms",
                        "Distributions over held-out positions (counts on a log scale; dashed: mean)."))
    return parts


def _passage_html(ent: dict) -> list[str]:
    p = ent["passage"]
    plot = figure(lambda: plots.plot_passage(ent), "entropy along a passage",
                  f"The first {p['positions']} scored positions of the held-out text: bars are the "
                  "predictive entropy split into aleatoric (blue) and epistemic (orange) parts, red dots the "
                  "surprisal of the token that actually came; grey lines separate sentences.")
    top = max(max(p["epistemic_bits"]), 1e-12)
    spans = []  # the passage as text, shaded by epistemic entropy
    for tok, e_b, s_b, o in zip(p["tokens"], p["epistemic_bits"], p["surprisal_bits"], p["oov"]):
        alpha = min(e_b / top, 1.0) * 0.6
        title = f"surprisal {s_b:.2f} bits, epistemic {e_b:.3f} bits" + (", out of vocabulary" if o else "")
        oov_style = ";color:#b42318;text-decoration:underline dotted" if o else ""
        spans.append(f'<span style="background:rgba(221,132,82,{alpha:.2f}){oov_style}" title="{escape(title)}">{escape(tok)}</span>')
    return [plot, '<p class="passage">' + " ".join(spans) + "</p>"
            "<p><small>The same passage, shaded by epistemic uncertainty (darker: more); out-of-vocabulary words "
            "(scored as &lt;unk&gt;) in red, here and on the plot's axis.</small></p>"]


def _token_tables(ent: dict) -> list[str]:
    rows = [[str(i + 1), _context_html(t), number(t["surprisal_bits"], 2), number(t["entropy_bits"], 2),
             number(t["epistemic_bits"], 3), f"{t['sentence']}:{t['index']}"] for i, t in enumerate(ent["most_surprising"])]
    parts = [f"<h3>The {len(rows)} most surprising tokens</h3><p>Lowest posterior-predictive probability "
             "(highest surprisal), with the text around them.</p>",
             table(["#", "text (token marked)", "surprisal bits", "entropy bits", "epistemic bits", "sentence:index"],
                   rows, cls="text")]
    rows = [[str(i + 1), escape(" ".join(c["context"])), number(c["occurrences"]), number(c["epistemic_bits"], 3),
             number(c["aleatoric_bits"], 3), _context_html(c["example"])] for i, c in enumerate(ent["most_uncertain_contexts"])]
    parts += [f"<h3>The {len(rows)} most uncertain contexts</h3><p>Contexts with the highest mutual information "
              "(epistemic entropy) among those in the held-out text, with their first occurrence.</p>",
              table(["#", "context", "occurrences", "epistemic bits", "aleatoric bits", "first occurrence"], rows, cls="text")]
    return parts


def _calibration_html(cal: dict) -> list[str]:
    return [
        "<h3>Calibration</h3>",
        f"<p>Confidence is the top-1 posterior-predictive probability at each position; it is correct when "
        f"that token is the one that came. Expected calibration error (ECE, {cal['n_bins']} equal-width bins, "
        f"weighted by the positions in each): <b>{number(cal['ece'])}</b>. Top-1 accuracy "
        f"{100 * cal['accuracy']:.2f}% against mean confidence {100 * cal['mean_confidence']:.2f}% over "
        f"{number(cal['positions'])} positions ({number(cal['distinct_contexts'])} distinct contexts).</p>",
        figure(lambda: plots.plot_reliability(cal), "reliability diagram",
               "Bars below the diagonal: over-confident in that range; above: under-confident.", width="520px"),
    ]


def _section_entropy(d: dict) -> str:
    ent = d["entropy"]
    parts = ['<h2 id="entropy">4. Entropy on the held-out text</h2>', *_evaluation_html(ent), *_uncertainty_html(ent),
             *_passage_html(ent), *_token_tables(ent), *_calibration_html(ent["calibration"])]
    return "".join(parts)


# -- comparison, summary, continuations ------------------------------------------------------
def _section_comparison(d: dict) -> str:
    cmp_ = d["comparison"]
    rows = []
    for r in cmp_["models"]:
        rows.append([str(r["rank"]), escape(r["label"]), escape(r["family"]), escape(r["order"]), escape(r["tokenizer"]),
                     number(r["bits_per_character"], 4), number(r["elpd_se_per_char_bits"]),
                     number(r["elpd_diff_per_char_bits"]), number(r["elpd_diff_se_per_char_bits"]),
                     number(r["stacking_weight"], 3), number(r["elpd_per_token_bits"]),
                     number(r["predictive_perplexity"], 2), number(r["fit_seconds"], 1)])
    parts = ['<h2 id="comparison">5. Comparison</h2>']
    if len(rows) == 1:
        parts.append("<p>One model was given; pass others with <code>compare=[...]</code> or "
                     "<code>--compare DIR ...</code> (any family or tokenizer) to rank them on the same text.</p>")
    text = "the exact text" if cmp_["models"][0]["text"] == "exact" else f"text normalised as {cmp_['models'][0]['text']}"
    parts.append(f"<p>Ranked by held-out expected log predictive density of the same {number(cmp_['sentences'])} "
                 f"sentences ({number(cmp_['characters'])} characters of {escape(text)}; bits, higher is better), "
                 "shown per character so that models which cut the text into other tokens compare"
                 + ("" if cmp_["same_tokens"] else " (they do here: per-token figures are left out)")
                 + ". The difference to the best and its standard error are paired over sentences; stacking weights "
                 f"combine the models' predictives best on this text: <small>{escape(cmp_['method'])}</small>.</p>")
    if not cmp_["fair"]:
        unfair = ", ".join(escape(r["label"]) for r in cmp_["models"] if not r["oov_priced"] and r["oov"])
        parts.append(f'<p class="warn">Not a fair comparison: {unfair} read unseen words as &lt;unk&gt; and pay '
                     "nothing for their spellings (a closed vocabulary); open-vocabulary models price every string.</p>")
    parts.append(table(["rank", "model", "family", "order", "tokenizer", "bits / char", "SE", "diff to best (elpd / char)",
                        "SE of diff", "stacking weight", "elpd / token", "predictive perplexity", "fit s"], rows, cls="cmp"))
    if len(rows) > 1:
        parts.append(figure(lambda: plots.plot_comparison(cmp_), "model comparison",
                            "elpd per character with its standard error (black) and the paired standard error of the "
                            "difference to the best model (red).", width="700px"))
    return "".join(parts)


def _summary_cards(d: dict) -> str:
    dg, ent = d["diagnostics"], d["entropy"]
    ev, cal = ent["evaluation"], ent["calibration"]
    pp = ev["perplexity"]
    n_problems = len(dg["problems"])
    ppc_flags = d["ppc"].get("flagged", []) if d["ppc"].get("available") else []
    trust = "bad" if not dg["ok"] else ("warn" if ppc_flags else "good")
    verdict = {"bad": "No", "warn": "Converged; misfit flagged", "good": "Yes"}[trust]
    trust_text = ("All convergence checks pass." if dg["ok"] else f"{n_problems} failed check(s): see section 2.")
    if d["ppc"].get("available"):
        trust_text += (f" Posterior predictive checks flag {escape(', '.join(ppc_flags))} (section 3)." if ppc_flags
                       else " No posterior predictive check is flagged.")
    per = ent["per_position_bits"]
    return (
        '<div class="cards">'
        f'<div class="card {trust}"><h3>Can I trust the fit?</h3><div class="big">{verdict}</div><p>{trust_text}</p></div>'
        f'<div class="card"><h3>How well does it predict?</h3><div class="big">{number(ev["predictive_cross_entropy_bits"], 3)} '
        f"bits/token</div><p>perplexity {number(ev['predictive_perplexity'], 1)} (per draw {100 * pp['hdi_prob']:.0f}% HDI "
        f"[{number(pp['hdi_low'], 1)}, {number(pp['hdi_high'], 1)}]); top-1 accuracy {100 * cal['accuracy']:.1f}%, "
        f"ECE {number(cal['ece'], 3)}</p></div>"
        f'<div class="card"><h3>Where is it unsure?</h3><div class="big">{number(per["epistemic"]["mean"], 3)} bits</div>'
        f"<p>mean epistemic (mutual information) per position, against {number(per['aleatoric']['mean'], 3)} bits "
        f"aleatoric; see the most uncertain contexts in section 4.</p></div>"
        "</div>"
    )


def _continuation_html(prompt: str, c: dict) -> str:
    """One continuation: each token shaded by its mutual information, details on hover."""
    threshold = c["mi_threshold_bits"]
    scale = threshold if threshold and np.isfinite(threshold) and threshold > 0 else 1.0
    spans = []
    for t in c["tokens"]:
        if t["token"] == "</s>":
            continue
        level = min(max(t["epistemic_bits"], 0.0) / scale, 1.0)
        shade = _SHADES[int(round(level * (len(_SHADES) - 1)))]
        top = ", ".join(f"{alt['token']} {alt['prob']:.3f}" for alt in t["top"])
        tip = (f"p(draw) {t['prob_draw']:.4f}; p(predictive) {t['prob_predictive']:.4f}; "
               f"entropy {t['entropy_bits']:.2f} bits = aleatoric {t['aleatoric_bits']:.2f} + "
               f"epistemic {t['epistemic_bits']:.3f}; top: {top}")
        style = f"background:{shade}" + (";text-decoration:underline" if t["flagged"] else "")
        spans.append(f'<span class="tok" style="{style}" title="{escape(tip)}">{escape(t["token"])}</span>')
    summary = (f"draw {c['draw']}, log p {c['log_prob_bits']:.2f} bits, mean entropy "
               f"{c['mean_entropy_bits']:.2f} bits, mean MI {c['mean_epistemic_bits']:.3f} bits, "
               f"{c['flagged_tokens']} flagged ({escape(c['stop_reason'])})")
    return (f"<li><span class=\"prompt\">{escape(prompt)}</span> {' '.join(spans)}"
            f"<div class=\"sub\">{escape(summary)}</div></li>")


def _section_continuations(d: dict) -> str:
    """Sampled continuations, each token shaded by its mutual information (hover: details)."""
    groups = d.get("continuations") or []
    if not groups:
        return ""
    parts = ['<section id="continuations"><h2>Sampled continuations</h2>',
             "<p>Each continuation holds one posterior draw for its whole length, so their spread "
             "shows the model's epistemic uncertainty. A token's shade is its mutual information "
             "(epistemic entropy) relative to the flag threshold; underlined tokens are above it. "
             "Hover a token for its probabilities, entropy split and the top alternatives.</p>"]
    for group in groups:
        parts.append(f"<h3>Prompt: <q>{escape(group['prompt'])}</q></h3><ol class=\"continuations\">")
        parts += [_continuation_html(group["prompt"], c) for c in group["continuations"]]
        parts.append("</ol>")
    parts.append("</section>")
    return "".join(parts)


def _section_departure(d: dict) -> str:
    """An adapted model: the departure per order, and where the held-out predictions' weight comes from."""
    dep = d.get("departure")
    if not dep:
        return ""
    rows = [[str(r["order"]), number(r["mean"]), f"[{number(r['hdi_low'])}, {number(r['hdi_high'])}]", escape(r["meaning"])]
            for r in dep["orders"]]
    hdi = f"{dep['orders'][0]['hdi_prob']:.0%} HDI" if dep["orders"] else "HDI"
    sources = [[escape(g["source"]), number(g["positions"]), number(g["share_of_positions"], 3),
                number(g["mean_domain_share"], 3), number(g["mean_epistemic_bits"], 3), number(g["share_of_epistemic"], 3)]
               for g in dep["sources"]]
    by_order = [[str(g["order"]), number(g["positions"]), number(g["mean_domain_share"], 3),
                 number(g["mean_epistemic_bits"], 3)] for g in dep["by_order"]]
    return "".join([
        '<section id="departure"><h2>Departure from the general model</h2>',
        f"<p>This model adapts a general model to a domain; per order, {escape(dep['parameter'])}.</p>",
        table(["order", "lam_k (mean)", hdi, "meaning"], rows),
        "<h3>Where each prediction's weight comes from</h3>",
        (f"<p>{escape(dep['domain_share'][:1].upper() + dep['domain_share'][1:])}. A position is <em>domain "
         "text</em> where the domain share is at least one half. Thin domain data and a general model that is itself "
         "unsure show as high epistemic entropy in the second row.</p>"),
        table(["source", "positions", "share of positions", "mean domain share", "mean epistemic bits",
               "share of epistemic entropy"], sources),
        table(["context order", "positions", "mean domain share", "mean epistemic bits"], by_order),
        "</section>",
    ])


# -- the page --------------------------------------------------------------------------------
def render_page(data: dict, idata) -> str:
    """The self-contained HTML page of a report's ``data`` (``idata``: for the MCMC plots)."""
    d = data
    card = d["model"]
    title = f"bayeslm report: {card['family']} order {card['order']}"
    body = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="sub">{escape(d["label"])} &middot; held-out text: {escape(", ".join(d["test"]["sources"]))} &middot; '
        f"generated {escape(d['created_at'])}</p>",
        '<nav><a href="#card">Model card</a><a href="#diagnostics">Diagnostics</a><a href="#ppc">Predictive checks</a>'
        '<a href="#entropy">Entropy</a><a href="#comparison">Comparison</a>'
        + ('<a href="#departure">Departure</a>' if d.get("departure") else "")
        + ('<a href="#continuations">Continuations</a>' if d.get("continuations") else "") + "</nav>",
        _summary_cards(d),
        _section_card(d),
        _section_diagnostics(d, idata),
        _section_ppc(d),
        _section_entropy(d),
        _section_comparison(d),
        _section_departure(d),
        _section_continuations(d),
        f"<footer>Written by bayeslm {escape(card['versions']['bayeslm'])} (schema {escape(d['schema'])}); every number on this "
        "page is in the JSON file beside it. Units: bits (log probabilities in base 2).</footer>",
    ]
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><main>{''.join(body)}</main></body></html>\n"
    )
