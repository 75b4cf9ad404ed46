"""Reports: every JSON figure against an independent computation, flags, escaping, bad input,
and the page rendered in a real headless browser (skipped where no chromium is installed)."""

from __future__ import annotations

import base64
import copy
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
from scipy.special import logsumexp

import bayeslm as blm
from bayeslm.cli import main
from bayeslm.exceptions import (
    BayesLMError,
    ConfigError,
    CorpusError,
    ModelFileError,
    NotFittedError,
    VocabularyMismatchError,
)
from bayeslm.report.build import Report, report
from bayeslm.report.html import number
from bayeslm.stats.calibration import expected_calibration_error, reliability_bins
from bayeslm.stats.intervals import HDI_PROB
from corpora import markov_sentences
from sampling import SMALL

SAMPLER = SMALL  # tests/sampling.py: the draws are summarised (intervals, ESS flags, calibration)
SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
WORDS = [f"w{i}" for i in range(40)] + [SCRIPT]


def sentences(seed: int, n: int) -> list[str]:
    """Sentences of a small Zipfian language with some bigram structure (whitespace tokens)."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, len(WORDS) + 1)
    p /= p.sum()
    out = []
    for _ in range(n):
        length = int(rng.integers(2, 10))
        words = [WORDS[int(rng.choice(len(WORDS), p=p))]]
        for _ in range(length - 1):
            prev = WORDS.index(words[-1])
            nxt = (prev + 1) % len(WORDS) if rng.random() < 0.5 else int(rng.choice(len(WORDS), p=p))
            words.append(WORDS[nxt])
        out.append(" ".join(words))
    return out


TRAIN = sentences(0, 300)
TEST = sentences(1, 40) + [f"w0 {IMG} w1 w2", f"w3 {SCRIPT} novelword w4", "w5 w6 unseen$dollar w7"]


def fit(order: int, seed: int = 1) -> blm.DirichletLM:
    lm = blm.DirichletLM(order=order, tokenizer="whitespace", sampler_config=SAMPLER)
    lm.fit(blm.Corpus.from_texts(TRAIN, tokenizer=blm.make_tokenizer("whitespace")), random_seed=seed)
    return lm


@pytest.fixture(scope="module")
def test_corpus():
    return blm.Corpus.from_texts(TEST, tokenizer=blm.make_tokenizer("whitespace"))


@pytest.fixture(scope="module")
def lm3():
    """Its own fit (as lm2): a vocabulary holding markup, which the page must escape."""
    return fit(3)


@pytest.fixture(scope="module")
def lm2():
    return fit(2)


@pytest.fixture(scope="module")
def rep(lm3, lm2, test_corpus):
    return report(lm3, test_corpus, compare=[lm2], labels=["tri", "bi"], replicates=20, random_seed=3, passage_tokens=30,
                  prompts=[f"w1 {SCRIPT}", ""], continuations=3, max_tokens=12)


@pytest.fixture(scope="module")
def data(rep):
    return rep.to_dict()


@pytest.fixture(scope="module")
def written(rep, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "page.html"
    html_path, json_path = rep.write(out)
    return html_path, json_path


def positions(lm, corpus):
    """(context tokens, token, sentence) of every scored position, by plain python."""
    enc = lm.encode(corpus)
    bos, eos = lm.vocabulary.bos_id, lm.vocabulary.eos_id
    rows = []
    for s in range(enc.n_sentences):
        seq = [bos] * (lm.order - 1) + list(enc[s]) + [eos]
        for t in range(lm.order - 1, len(seq)):
            rows.append((tuple(seq[t - lm.order + 1 : t]), seq[t], s))
    return rows


# ------------------------------------------------------------------------ JSON figures
def test_json_is_strict_and_documented_units(written, data):
    _, json_path = written
    text = json_path.read_text(encoding="utf-8")
    loaded = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert loaded["schema"] == "bayeslm.report/3"
    assert set(loaded) >= {"model", "test", "diagnostics", "ppc", "entropy", "comparison", "timing_seconds"}
    assert loaded == data
    ent = loaded["entropy"]
    assert set(ent["per_position_bits"]) == {"total", "aleatoric", "epistemic", "surprisal"}
    assert "predictive_cross_entropy_bits" in ent["evaluation"]
    assert all(k.endswith("_bits") for k in loaded["comparison"]["models"][0] if k.startswith("elpd_"))
    # one unit for people: bits; no key in nats or base 10
    assert not [k for k in _keys(loaded) if k.endswith("_nats") or "log10" in k]
    card = loaded["model"]
    assert card["family"] == "dirichlet" and card["order"] == 3 and card["training_sentences"] == len(TRAIN)
    assert card["versions"]["pymc"] and card["versions"]["arviz"] and card["sampler"]["draws"] == 100


def test_flag_threshold_is_shown_in_bits(rep, data, lm3):
    """The model directory keeps mi_threshold_nats (Python-API state); the report shows bits."""
    nats = lm3.idata["posterior"].attrs["mi_threshold_nats"]
    assert data["model"]["mi_threshold_bits"] == pytest.approx(nats / math.log(2), rel=1e-12)
    assert data["continuations"][0]["continuations"][0]["mi_threshold_bits"] == data["model"]["mi_threshold_bits"]
    page = rep.render_html()
    assert f"{number(data['model']['mi_threshold_bits'])} bits (used by generate)" in page
    assert "nats" not in page


def _keys(obj):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield k
            yield from _keys(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _keys(v)


def test_tokens_and_positions_mean_one_thing_in_every_section(data, test_corpus):
    """tokens: text tokens (Corpus.n_tokens); positions: tokens and one </s> per sentence."""
    n_tokens = sum(len(s.split()) for s in TEST)
    n_positions = n_tokens + len(TEST)
    assert data["test"]["tokens"] == n_tokens == test_corpus.n_tokens and data["test"]["positions"] == n_positions
    ev = data["entropy"]["evaluation"]
    assert ev["schema"] == "bayeslm.evaluate/2" and (ev["tokens"], ev["positions"]) == (n_tokens, n_positions)
    assert data["comparison"]["positions"] == n_positions
    assert [m["positions"] for m in data["comparison"]["models"]] == [n_positions, n_positions]
    assert data["entropy"]["calibration"]["positions"] == n_positions
    assert data["ppc"]["observed_tokens"] == n_tokens
    assert data["test"]["oov_rate"] == ev["oov_rate"] == pytest.approx(data["test"]["oov"] / n_tokens)
    assert "words" not in set(_keys(data))


def test_elpd_matches_log_mean_exp_of_token_log_prob(lm3, lm2, test_corpus, data):
    rows = {r["label"]: r for r in data["comparison"]["models"]}
    per_sentence = {}
    for label, lm in (("tri", lm3), ("bi", lm2)):
        lp = lm.token_log_prob(test_corpus).values  # (chain, draw, position)
        elpd_i = logsumexp(lp.reshape(-1, lp.shape[-1]), axis=0) - math.log(lp.shape[0] * lp.shape[1])
        n = elpd_i.size
        assert rows[label]["positions"] == n
        elpd_i = elpd_i / math.log(2)  # bits
        assert rows[label]["elpd_sum_bits"] == pytest.approx(elpd_i.sum(), rel=1e-9)
        assert rows[label]["elpd_per_token_bits"] == pytest.approx(elpd_i.sum() / n, rel=1e-9)
        assert rows[label]["elpd_per_token_bits"] == pytest.approx(-rows[label]["predictive_cross_entropy_bits"], rel=1e-12)
        sums = Counter()
        for (_, _, s), value in zip(positions(lm, test_corpus), elpd_i):
            sums[s] += value
        per_sentence[label] = np.array([sums[s] for s in range(len(TEST))])
    best, other = ("tri", "bi") if rows["tri"]["rank"] == 1 else ("bi", "tri")
    d = per_sentence[best] - per_sentence[other]
    n = rows[best]["positions"]
    assert rows[other]["elpd_diff_per_token_bits"] == pytest.approx(d.sum() / n, rel=1e-9)
    se = math.sqrt(len(d) * sum((x - d.mean()) ** 2 for x in d) / len(d)) / n
    assert rows[other]["elpd_diff_se_per_token_bits"] == pytest.approx(se, rel=1e-9)
    assert rows[best]["elpd_diff_se_per_token_bits"] is None and rows[best]["elpd_diff_per_token_bits"] == 0.0
    assert [r["rank"] for r in data["comparison"]["models"]] == [1, 2]


def test_ece_by_hand_on_ten_predictions():
    conf = [0.05, 0.10, 0.30, 0.34, 0.50, 0.66, 0.70, 0.90, 0.95, 1.00]
    hit = [0, 0, 1, 0, 1, 1, 0, 1, 1, 1]
    bins = {}
    for c, h in zip(conf, hit):  # bin b holds (b/15, (b+1)/15]
        b = max(math.ceil(c * 15) - 1, 0)
        bins.setdefault(b, []).append((c, h))
    ece = sum(len(v) / 10 * abs(sum(h for _, h in v) / len(v) - sum(c for c, _ in v) / len(v)) for v in bins.values())
    assert expected_calibration_error(conf, hit) == pytest.approx(ece, abs=1e-12)
    table = reliability_bins(conf, hit)
    assert table["count"].sum() == 10 and table["count"].iloc[14] == 2  # 0.95 and 1.0
    assert table.loc[table["count"] > 0, "accuracy"].tolist() == pytest.approx(
        [sum(h for _, h in bins[b]) / len(bins[b]) for b in sorted(bins)])
    with pytest.raises(BayesLMError, match=r"\[0, 1\]"):
        expected_calibration_error([1.2], [True])


def test_calibration_equals_dense_top1_over_draws(lm3, test_corpus, data):
    rows = positions(lm3, test_corpus)
    ctx = np.array([r[0] for r in rows])
    probs = lm3.next_token_probs(ctx).mean(axis=0)  # mean over every posterior draw, dense
    conf = probs.max(axis=1)
    hit = probs.argmax(axis=1) == np.array([r[1] for r in rows])
    cal = data["entropy"]["calibration"]
    assert cal["positions"] == len(rows) and cal["n_bins"] == 15
    assert cal["ece"] == pytest.approx(expected_calibration_error(conf, hit), abs=1e-10)
    assert cal["accuracy"] == pytest.approx(hit.mean()) and cal["mean_confidence"] == pytest.approx(conf.mean())
    assert [b["count"] for b in cal["bins"]] == reliability_bins(conf, hit)["count"].tolist()


def test_entropy_split_equals_dense_computation(lm3, test_corpus, data):
    rows = positions(lm3, test_corpus)
    ctx = np.array([r[0] for r in rows])
    keep = np.arange(len(lm3.vocabulary)) != lm3.vocabulary.bos_id
    p_bar = lm3.next_token_probs(ctx).mean(axis=0)[:, keep]
    total = blm.entropy(p_bar, units="bits")
    S = lm3.n_samples
    which = np.linspace(0, S - 1, lm3.options["entropy_draws"]).round().astype(int)
    A = lm3.dirichlet_parameters(ctx, draws=which)[:, :, keep]
    aleatoric = blm.dirichlet_expected_entropy(A, units="bits").mean(axis=0)
    epistemic = np.maximum(total - aleatoric, 0)
    per = data["entropy"]["per_position_bits"]
    by_position = lm3.entropy_split(test_corpus) / math.log(2)  # the per-position protocol method agrees
    assert per["epistemic"]["max"] == pytest.approx(by_position["epistemic"].max(), rel=1e-9)
    assert per["aleatoric"]["mean"] == pytest.approx(by_position["aleatoric"].mean(), rel=1e-9)
    assert per["total"]["mean"] == pytest.approx(total.mean(), rel=1e-7)
    assert per["aleatoric"]["mean"] == pytest.approx(aleatoric.mean(), rel=1e-7)
    assert per["epistemic"]["mean"] == pytest.approx(epistemic.mean(), rel=1e-6, abs=1e-9)
    passage = data["entropy"]["passage"]
    assert passage["positions"] == 30
    assert passage["epistemic_bits"] == pytest.approx(epistemic[:30].tolist(), rel=1e-6, abs=1e-9)
    assert sum(data["entropy"]["histograms"]["epistemic"]["count"]) == len(rows)
    # most uncertain context: the highest epistemic entropy over positions, with its context
    top = data["entropy"]["most_uncertain_contexts"][0]
    assert top["epistemic_bits"] == pytest.approx(epistemic.max(), rel=1e-6)
    assert top["occurrences"] == sum(1 for r in rows if tuple(lm3.vocabulary.decode(r[0])) == tuple(top["context"]))
    # most surprising: lowest log probability, with the token as written (OOV kept)
    lp = lm3.predictive_log_prob(test_corpus)
    worst = data["entropy"]["most_surprising"][0]
    assert worst["surprisal_bits"] == pytest.approx(-lp.min() / math.log(2))


def test_mutual_information_zero_when_the_posterior_is_a_point(lm3, test_corpus):
    """With a huge concentration every draw of p(. | u) equals the base: epistemic -> 0."""
    import arviz as az

    point = copy.copy(lm3)
    post = lm3.idata["posterior"]
    values = np.full((2, 50, 3), 1e9)
    point.idata = az.from_dict(posterior={"concentration": values}, coords={"order": [1, 2, 3]},
                               dims={"concentration": ["order"]})
    point.idata["posterior"].attrs.update(post.attrs)
    point._draws_cache = None
    d = report(point, test_corpus, replicates=2).to_dict()
    assert d["entropy"]["per_position_bits"]["epistemic"]["max"] < 1e-5
    assert d["entropy"]["per_position_bits"]["total"]["mean"] > 1.0
    assert d["diagnostics"]["method"] == "unknown" and "No MCMC" in d["diagnostics"]["message"]


def test_ppc_statistics_equal_plain_python(lm3, test_corpus, data):
    ppc = data["ppc"]
    assert ppc["observed_corpus"] == "test" and ppc["replicates"] == 20
    assert ppc["replicate_sentences"] == len(TEST)
    vocab = lm3.vocabulary
    train_grams = Counter()
    for s in blm.Corpus.from_texts(TRAIN, tokenizer=blm.make_tokenizer("whitespace"), vocab=vocab):
        seq = [vocab.bos_id] * 2 + list(s) + [vocab.eos_id]
        train_grams.update(tuple(seq[t - 2 : t + 1]) for t in range(2, len(seq)))

    def stats(corpus):
        tokens = [int(t) for s in corpus for t in s]
        freq = Counter(tokens)
        lengths = [len(s) for s in corpus]
        grams = [tuple(list(c) + [w]) for c, w, _ in positions(lm3, corpus)]
        return {
            "types": len(freq), "hapax_types": sum(1 for c in freq.values() if c == 1),
            "mean_sentence_length": float(np.mean(lengths)), "sd_sentence_length": float(np.std(lengths)),
            "unk_share": tokens.count(vocab.unk_id) / len(tokens),
            "unseen_ngram_share": sum(g not in train_grams for g in grams) / len(grams),
            "coc": [sum(1 for c in freq.values() if c == k) for k in range(1, 51)],
        }

    observed = stats(lm3.encode(test_corpus))
    for name in ("types", "hapax_types", "mean_sentence_length", "sd_sentence_length", "unk_share", "unseen_ngram_share"):
        assert ppc["statistics"][name]["observed"] == pytest.approx(observed[name]), name
    assert ppc["count_of_counts"]["observed"] == observed["coc"]
    for r in (0, 7, 19):  # replicates are reproducible from their seed and draw
        rep_corpus = lm3.sample_sentences(len(TEST), random_seed=ppc["seeds"][r], draw=ppc["draws"][r])
        expected = stats(rep_corpus)
        for name in ("types", "mean_sentence_length", "unseen_ngram_share"):
            assert ppc["statistics"][name]["replicated"][r] == pytest.approx(expected[name]), (name, r)
        assert ppc["count_of_counts"]["replicated"][r] == expected["coc"]
    for name, s in ppc["statistics"].items():
        rep_values = np.array(s["replicated"])
        p = float(np.mean(rep_values >= s["observed"]))
        assert s["p_value"] == pytest.approx(p) and s["p_value_two_sided"] == pytest.approx(2 * min(p, 1 - p))
    assert len(set(ppc["draws"])) == 20  # one posterior draw per replicate


def test_ppc_against_training_text_uses_training_sized_replicates(lm3, test_corpus):
    train = blm.Corpus.from_texts(TRAIN, tokenizer=blm.make_tokenizer("whitespace"))
    d = report(lm3, test_corpus, train=train, replicates=3).to_dict()
    assert d["train"] == {"sentences": len(TRAIN), "tokens": sum(len(s.split()) for s in TRAIN)}
    ppc = d["ppc"]
    assert ppc["observed_corpus"] == "train" and ppc["replicate_sentences"] == len(TRAIN)
    assert ppc["novelty_sentences"] == len(TEST)
    assert ppc["statistics"]["types"]["observed"] == len({w for s in TRAIN for w in s.split()})
    assert ppc["statistics"]["unseen_ngram_share"]["observed"] > 0


def test_diagnostics_table_equals_arviz_summary(lm3, data):
    import arviz as az

    table = az.summary(lm3.idata, var_names=["concentration"], hdi_prob=HDI_PROB, round_to="none")
    low, high = [c for c in table.columns if c.startswith("hdi_")]
    rows = {p["name"]: p for p in data["diagnostics"]["parameters"]}
    assert set(rows) == set(table.index)
    for name, row in table.iterrows():
        got = rows[name]
        for col in ("mean", "sd", "ess_bulk", "ess_tail", "r_hat", "mcse_mean"):
            assert got[col] == pytest.approx(row[col]), (name, col)
        assert got["hdi_low"] == pytest.approx(row[low]) and got["hdi_high"] == pytest.approx(row[high])
        assert got["ok"] == bool(row["r_hat"] <= 1.01 and row["ess_bulk"] >= 400 and row["ess_tail"] >= 400)
    chains = data["diagnostics"]["chains"]
    assert [c["divergences"] for c in chains] == lm3.idata["sample_stats"]["diverging"].sum("draw").values.tolist()
    assert [c["bfmi"] for c in chains] == pytest.approx(list(az.bfmi(lm3.idata)))
    # 2 x 100 draws cannot reach a bulk ESS of 400: flagged, and the page says so
    assert data["diagnostics"]["ok"] is False
    assert any("ESS" in p for p in data["diagnostics"]["problems"])


def disagreeing(lm, test_corpus):
    """lm with a hand-built posterior whose chains disagree, and divergent transitions."""
    import arviz as az

    rng = np.random.default_rng(0)
    base = lm.idata["posterior"]["concentration"].values.mean(axis=(0, 1))
    values = base * np.exp(rng.normal(0, 0.01, size=(2, 100, 3)))
    values[1] *= 3.0  # the second chain sits elsewhere
    energy = rng.normal(size=(2, 100))
    diverging = np.zeros((2, 100), dtype=bool)
    diverging[0, :4] = True
    bad = copy.copy(lm)
    bad.idata = az.from_dict(posterior={"concentration": values},
                             sample_stats={"diverging": diverging, "energy": energy},
                             coords={"order": [1, 2, 3]}, dims={"concentration": ["order"]})
    bad.idata["posterior"].attrs.update(lm.idata["posterior"].attrs)
    bad._draws_cache = None
    return report(bad, test_corpus, replicates=2)


def test_known_problems_are_flagged_in_json_and_on_the_page(lm3, test_corpus):
    bad = disagreeing(lm3, test_corpus)
    d = bad.to_dict()["diagnostics"]
    assert d["ok"] is False and d["divergences"] == 4
    assert all(p["r_hat_ok"] is False and p["r_hat"] > 1.5 for p in d["parameters"])
    assert any("R-hat" in p for p in d["problems"]) and any("divergent" in p for p in d["problems"])
    page = bad.render_html()
    assert page.count('<tr class="fail">') >= 4  # three parameters and the divergent chain
    assert "Do not trust this fit" in page and "4 divergent transitions" in page


def test_non_mcmc_branch_shows_its_own_checks(lm3, test_corpus):
    import arviz as az
    import xarray as xr

    approx = copy.copy(lm3)
    values = lm3.idata["posterior"]["concentration"].values[:1]
    approx.idata = az.from_dict(posterior={"concentration": values}, coords={"order": [1, 2, 3]},
                                dims={"concentration": ["order"]})
    approx.idata["posterior"].attrs.update({**lm3.idata["posterior"].attrs, "inference_method": "advi", "pareto_k": 0.9})
    approx.idata.add_groups({"approximation": xr.Dataset({"elbo": ("iteration", -1000 + 900 * (1 - np.exp(-np.arange(200) / 30)))})},
                            warn_on_custom_groups=False)
    approx._draws_cache = None
    rep = report(approx, test_corpus, replicates=2)
    d = rep.to_dict()["diagnostics"]
    assert d["method"] == "advi" and "not MCMC" in d["message"]
    assert all(p["ok"] is None for p in d["parameters"])  # no R-hat / ESS verdicts without chains
    assert d["approximation"]["pareto_k"] == 0.9 and d["approximation"]["pareto_k_ok"] is False
    elbo_nats = approx.idata["approximation"]["elbo"].values
    assert d["approximation"]["elbo_bits"] == pytest.approx((elbo_nats / math.log(2)).tolist(), rel=1e-12)
    assert d["approximation"]["elbo_final_bits"] == pytest.approx(elbo_nats[-1] / math.log(2), rel=1e-12)
    assert "elbo" not in d["approximation"] and d["ok"] is False
    page = rep.render_html()
    assert "not MCMC" in page and 'alt="ELBO trace"' in page and 'alt="rank plots"' not in page


# ------------------------------------------------------------------------------- HTML
def test_page_is_self_contained_and_escapes_text(written, data):
    html_path, _ = written
    page = html_path.read_text(encoding="utf-8")
    assert "http-equiv=\"Content-Security-Policy\"" in page and "default-src 'none'; img-src data:" in page
    assert "<script" not in page.lower()
    assert not re.search(r"<[^>]*\son\w+\s*=", page, flags=re.I)  # no event-handler attribute in any tag
    assert "onerror=alert(1)&gt;" in page  # ... only as text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&quot;&gt;&lt;img" in page
    assert not re.search(r"(src|href)=\"(?!data:image/png;base64,|#)", page)  # nothing to fetch
    # the dangerous strings reached the JSON intact: escaping is the page's job
    text = json.dumps(data, ensure_ascii=False)
    assert SCRIPT in text and "onerror=alert(1)>" in text
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) >= 10


def test_report_writes_both_or_neither(rep, tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="does not exist"):
        rep.write(tmp_path / "missing" / "r.html")
    with pytest.raises(ConfigError, match="beside it"):
        rep.write(tmp_path / "r.json")

    def broken(self):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Report, "render_html", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        rep.write(tmp_path / "r.html")
    assert list(tmp_path.iterdir()) == []


# -------------------------------------------------------------------------- bad input
def test_bad_input_raises_one_clear_error(lm3, lm2, test_corpus):
    with pytest.raises(VocabularyMismatchError, match="tokenis"):
        report(lm3, blm.Corpus.from_texts(["w1 w2 w3"], tokenizer=blm.make_tokenizer("char")))
    with pytest.raises(CorpusError, match="no tokens|empty"):
        report(lm3, "   \n ")
    empty = blm.Corpus(np.zeros(0, np.int32), np.zeros(1, np.int64), lm3.vocabulary, lm3.tokenizer)
    with pytest.raises(CorpusError, match="empty"):
        report(lm3, empty)
    with pytest.raises(VocabularyMismatchError, match="none of the"):
        report(lm3, "zz yy xx")
    with pytest.raises(NotFittedError, match="call fit"):
        report(blm.DirichletLM(order=2), test_corpus)
    import arviz as az

    no_posterior = copy.copy(lm3)
    no_posterior.idata = az.InferenceData(sample_stats=lm3.idata["sample_stats"])
    with pytest.raises(ModelFileError, match="no posterior"):
        report(no_posterior, test_corpus)
    other = blm.DirichletLM(order=2, tokenizer="word", sampler_config=SAMPLER)
    other.vocab_, other.tokenizer_, other.idata, other.is_fitted_ = lm2.vocab_, other.tokenizer, lm2.idata, True
    # a model of another tokenizer reads the text's lines: a corpus whose tokens do not spell them has none
    respaced = blm.Corpus.from_texts([t.replace(" ", "  ") for t in TEST], tokenizer=blm.make_tokenizer("whitespace"))
    with pytest.raises(VocabularyMismatchError, match="cannot compare .* does not keep its lines"):
        report(lm3, respaced, compare=[other])
    with pytest.raises(ConfigError, match="hdi_prob"):
        report(lm3, test_corpus, hdi_prob=1.5)


@pytest.fixture(scope="module")
def model_dirs(lm3, lm2, tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    lm3.save(root / "tri")
    lm2.save(root / "bi")
    (root / "test.txt").write_text("\n".join(TEST) + "\n", encoding="utf-8")
    return root


def test_cli_report_writes_page_and_json(model_dirs, capsys):
    out = model_dirs / "out" / "cli.html"
    out.parent.mkdir()
    code = main(["report", str(model_dirs / "tri"), "--test", str(model_dirs / "test.txt"), "--out", str(out),
                 "--compare", str(model_dirs / "bi"), "--replicates", "20", "--seed", "5"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "wrote" in printed and str(out) in printed
    d = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    assert d["label"] == "tri" and sorted(m["label"] for m in d["comparison"]["models"]) == ["bi", "tri"]
    assert d["ppc"]["replicates"] == 20 and d["settings"]["random_seed"] == 5
    # the CLI reads the text with its own vocabulary: out-of-vocabulary words are shown as written
    assert any(t["token"] == "novelword" and t["oov"] for t in d["entropy"]["most_surprising"])
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_size > 10_000 and out.stat().st_mode & 0o777 == 0o666 & ~umask


def run_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bayeslm", *map(str, args)], capture_output=True, text=True)


def test_cli_bad_input_exits_2_with_one_line(model_dirs, tmp_path):
    test = model_dirs / "test.txt"
    missing = run_cli("report", model_dirs / "tri", "--test", test, "--out", tmp_path / "nope" / "r.html")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    empty_run = run_cli("report", model_dirs / "tri", "--test", empty, "--out", tmp_path / "r.html")
    broken = tmp_path / "broken"
    shutil.copytree(model_dirs / "tri", broken)
    import arviz as az

    idata = az.from_netcdf(broken / "model.nc", engine="h5netcdf")
    sample_stats = idata["sample_stats"].load()
    (broken / "model.nc").unlink()
    (broken / "manifest.json").unlink()  # a directory as format 1 wrote it (no manifest to catch the change)
    az.InferenceData(sample_stats=sample_stats).to_netcdf(str(broken / "model.nc"), engine="h5netcdf")
    no_post = run_cli("report", broken, "--test", test, "--out", tmp_path / "r.html")
    for result, pattern in ((missing, "does not exist"), (empty_run, "empty"), (no_post, "posterior")):
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("bayeslm: error: ") and re.search(pattern, lines[0]), lines
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken", "empty.txt"]  # nothing half-written


# ---------------------------------------------------------------------------- browser
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(CHROMIUM is None, reason="no headless browser: install Debian's chromium (apt-get install -y chromium)")
def test_page_in_headless_browser(written, tmp_path):
    from PIL import Image

    html_path, _ = written
    shot = tmp_path / "shot.png"
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
         f"--screenshot={shot}", "--dump-dom", "--window-size=1200,3000", html_path.resolve().as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    # the page runs no script: any console message (CSP violation, script output, failed load) is an error
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    assert console == [], console
    dom = result.stdout
    assert "<main>" in dom and "Posterior diagnostics" in dom
    assert "<script" not in dom.lower()
    assert not re.search(r"<[^>]*\son\w+\s*=", dom, flags=re.I)  # no element got an event handler
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom  # shown as text
    page = html_path.read_text(encoding="utf-8")
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert dom.count("<img ") == len(images) >= 10
    for data in images:
        with Image.open(io.BytesIO(base64.b64decode(data))) as im:
            im.load()
            assert im.size[0] > 0 and im.size[1] > 0
            assert len(im.convert("L").getextrema()) == 2 and im.convert("L").getextrema()[0] < im.convert("L").getextrema()[1]
    with Image.open(shot) as im:
        assert im.size == (1200, 3000)
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
        assert colours is None or len(colours) > 50  # not blank


def test_continuations_section(rep, data, lm3):
    """Sampled continuations: the same figures as model.generate, shaded spans with hover details."""
    groups = data["continuations"]
    assert [g["prompt"] for g in groups] == [f"w1 {SCRIPT}", ""]
    expected = lm3.generate(f"w1 {SCRIPT}", n=3, max_tokens=12, random_seed=3)
    got = groups[0]["continuations"]
    assert [c["text"] for c in got] == [c.text for c in expected]
    for c, e in zip(got, expected):
        assert [t["epistemic_bits"] for t in c["tokens"]] == pytest.approx([t.epistemic_bits for t in e.tokens])
        assert c["schema"] == "bayeslm.continuation/2"
        assert c["log_prob_bits"] == pytest.approx(e.log_prob_bits)
        assert c["log_prob_bits"] == pytest.approx(sum(math.log2(t.prob_predictive) for t in e.tokens))
    page = rep.render_html()
    shown = sum(1 for g in groups for c in g["continuations"] for t in c["tokens"] if t["token"] != "</s>")
    assert page.count('<span class="tok"') == shown
    assert 'id="continuations"' in page and "p(predictive)" in page
    assert SCRIPT not in page  # the prompt (and any generated script token) appear escaped


# -- diagnostics of samplers other than NUTS --------------------------------------------------------
PY_TEST = markov_sentences(5, 20)  # text of the session Pitman-Yor models' Markov chain (tests/corpora.py)

@pytest.mark.parametrize("fixture, method", [("pitman_yor_lm", "gibbs"), ("fast_lm", "exact")])
def test_pitman_yor_fits_get_chain_verdicts(fixture, method, request):
    """Gibbs sweeps and the fast mode's exact draws come in chains: R-hat and ESS verdicts apply."""
    lm = request.getfixturevalue(fixture)
    dg = report(lm, PY_TEST, replicates=2).data["diagnostics"]
    assert dg["method"] == method and dg["has_chains"] is True and dg["message"]
    assert dg["parameters"] and all(row["r_hat_ok"] is not None for row in dg["parameters"])


def test_a_hyperparameter_that_did_not_converge_is_named(pitman_yor_lm):
    """Discount draws replaced by chains that agree except on the top order's: only it gets an R-hat problem."""
    lm = copy.copy(pitman_yor_lm)
    lm.idata = pitman_yor_lm.idata.copy()
    discount = lm.idata["posterior"]["discount"]  # (chain, draw, order)
    draws = np.random.default_rng(0).normal(0.5, 0.01, size=discount.shape)
    draws[1, :, -1] += 0.2  # chain 1's top-order discount far from chain 0's
    lm.idata["posterior"]["discount"] = discount.copy(data=draws)
    dg = report(lm, PY_TEST, replicates=2).data["diagnostics"]
    named = {p.split(":")[0] for p in dg["problems"] if "R-hat" in p}
    top = f"discount[{discount['order'].values[-1]}]"
    assert top in named and not {n for n in named if n.startswith("discount[")} - {top} and dg["ok"] is False
