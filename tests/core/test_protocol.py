"""A family written only against the abstract protocol gets everything else for free.

``UnigramDirichletLM`` below is a new family defined here and nowhere else: tokens are
drawn independently from p ~ Dirichlet(alpha, ..., alpha) over every token but ``<s>``, so
the posterior is Dirichlet(alpha + c) with c the training counts (every token and one
``</s>`` per sentence), and its posterior draws are exact. It subclasses ``BayesianLM`` and
implements only the abstract methods of ``LanguageModel``; evaluation, sentence scores, the
entropy split, reports (JSON and HTML), generation and save/load must work unchanged, and
their numbers must agree with the closed-form posterior:

- E[log p_w] = digamma(a_w) - digamma(A) (the mean per-draw cross-entropy);
- E[p_w] = a_w / A (the posterior predictive);
- E[H(p)] = digamma(A + 1) - sum_w a_w / A digamma(a_w + 1) (the aleatoric entropy),

with a = alpha + c and A = sum_w a_w. ``SamplingUnigramDirichletLM`` adds the
``SamplesSentences`` ability, and with it the report's posterior predictive checks.
"""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from model_dirs import reseal
from sampling import MONTE_CARLO
from scipy import stats
from scipy.special import digamma, entr

import bayeslm as blm
from bayeslm.core.base import BayesianLM
from bayeslm.core.draws import draw_indices
from bayeslm.core.protocol import LanguageModel, SamplesSentences
from bayeslm.core.storage import family_class
from bayeslm.exceptions import ModelFileError
from bayeslm.text.corpus import Corpus

LN2 = math.log(2.0)
ALPHA = 0.5
WORDS = ["the", "a", "cat", "dog", "sat", "ran", "on", "mat", "big", "red", "slowly", "away"]


def sentences(seed: int, n: int) -> list[str]:
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, len(WORDS) + 1)
    p /= p.sum()
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(1, 9)), p=p)) for _ in range(n)]


TRAIN = sentences(0, 200)
TEST = sentences(1, 30) + ["the zebra sat", "a cat"]  # "zebra" is out of vocabulary


class UnigramDirichletLM(BayesianLM):
    """Tokens i.i.d. from p ~ Dirichlet(alpha) over all tokens but ``<s>``; exact conjugate posterior draws."""

    family = "test-unigram-dirichlet"
    model_options = {"alpha": ALPHA}

    def _support(self) -> np.ndarray:
        return np.arange(len(self.vocab_)) != self.vocab_.bos_id

    def _draws(self, draws=None) -> np.ndarray:
        """p of the chosen posterior draws over the whole vocabulary, shape (draw, token)."""
        p = self.idata["posterior"]["p"].values
        p = p.reshape(-1, p.shape[-1])
        out = np.zeros((p.shape[0], len(self.vocab_)))
        out[:, self._support()] = p
        return out[draw_indices(out.shape[0], draws)]

    # -- the abstract methods of LanguageModel, and nothing else ------------------------------
    def _fit(self, train, valid, sampler):
        import arviz as az

        _, targets = train.context_windows(0)
        self.counts_ = np.bincount(targets, minlength=len(self.vocab_))
        support = self._support()
        rng = np.random.default_rng(sampler["random_seed"])
        p = rng.dirichlet(self.options["alpha"] + self.counts_[support], size=(sampler["chains"], sampler["draws"]))
        names = [t for t, keep in zip(self.vocab_.tokens, support) if keep]
        return az.from_dict(posterior={"p": p}, coords={"token": names}, dims={"p": ["token"]})

    def _log_prob_draws(self, corpus):
        _, tokens = corpus.context_windows(0)
        yield slice(0, tokens.size), np.log(self._draws()[:, tokens])

    def predictive_log_prob(self, data):
        _, tokens = self.encode(data).context_windows(0)
        return np.log(self._draws().mean(axis=0)[tokens])

    def next_token_probs(self, contexts, draws=None):
        p = self._draws(draws)
        return np.repeat(p[:, None, :], np.asarray(contexts).shape[0], axis=1)

    def context_entropy_split(self, contexts):
        p = self._draws()
        total = entr(p.mean(axis=0)).sum()
        aleatoric = entr(p).sum(axis=1).mean()
        m = np.asarray(contexts).shape[0]
        return pd.DataFrame({"total": np.full(m, total), "aleatoric": np.full(m, aleatoric),
                             "epistemic": np.full(m, total - aleatoric)})

    def _family_arrays(self):
        return {"counts": self.counts_}

    def _restore_family(self, arrays):
        if arrays.get("counts", np.zeros(0)).shape != (len(self.vocab_),):
            raise ModelFileError("arrays.npz: counts do not match the vocabulary")
        self.counts_ = arrays["counts"]


class SamplingUnigramDirichletLM(UnigramDirichletLM, SamplesSentences):
    """The same family with the ability to draw sentences (so reports get predictive checks)."""

    family = "test-unigram-dirichlet-sampler"

    def next_tokens(self, history, draw, rng):
        p = self._draws([draw])[0]
        return rng.choice(p.size, size=len(history), p=p)


def fit(cls=UnigramDirichletLM, **options):
    lm = cls(order=1, tokenizer="whitespace", sampler_config={**MONTE_CARLO, "random_seed": 7}, **options)
    lm.fit(blm.Corpus.from_texts(TRAIN, tokenizer=blm.make_tokenizer("whitespace")))
    return lm


@pytest.fixture(scope="module")
def lm():
    return fit()


@pytest.fixture(scope="module")
def test_corpus():
    return blm.Corpus.from_texts(TEST, tokenizer=blm.make_tokenizer("whitespace"))


# -- the closed form, by plain python on the strings --------------------------------------------
def scored(texts: list[str], known) -> list[str]:
    """Every scored token of ``texts`` by name: words (unknown ones as <unk>) and one </s> each."""
    return [w if w in known or w == "</s>" else "<unk>" for s in texts for w in s.split() + ["</s>"]]


@pytest.fixture(scope="module")
def closed_form():
    """The posterior parameters a_w = alpha + c_w by token name, over every token but <s>."""
    counts = Counter(scored(TRAIN, set(WORDS)))
    names = sorted(set(WORDS) | {"<unk>", "</s>"})
    return {w: ALPHA + counts[w] for w in names}


def draws_by_name(lm) -> dict[str, np.ndarray]:
    p = lm.idata["posterior"]["p"]
    return {str(name): p.sel(token=name).values.ravel() for name in p["token"].values}


# -- the family --------------------------------------------------------------------------------
def test_the_toy_implements_only_the_abstract_methods_and_is_registered():
    defined = set(vars(UnigramDirichletLM)) - {"__module__", "__doc__", "__qualname__", "__abstractmethods__", "_abc_impl"}
    overridden = {name for name in defined if hasattr(BayesianLM, name)}
    assert overridden == set(LanguageModel.__abstractmethods__) | {"family", "model_options"}
    assert family_class("test-unigram-dirichlet") is UnigramDirichletLM
    assert not isinstance(UnigramDirichletLM(order=1), SamplesSentences)
    assert isinstance(SamplingUnigramDirichletLM(order=1), SamplesSentences)


def test_posterior_draws_are_the_conjugate_posterior(lm, closed_form):
    p = draws_by_name(lm)
    assert set(p) == set(closed_form)
    A = sum(closed_form.values())
    for w, a in closed_form.items():
        sd = math.sqrt(a * (A - a) / (A**2 * (A + 1)))  # posterior sd of p_w
        assert abs(p[w].mean() - a / A) < 5 * sd / math.sqrt(p[w].size), w


# -- evaluate, score, entropy_split --------------------------------------------------------------
def test_evaluate_agrees_with_the_draws_and_with_the_closed_form(lm, test_corpus, closed_form):
    ev = lm.evaluate(test_corpus)
    names = scored(TEST, set(WORDS))
    assert ev.tokens == sum(len(s.split()) for s in TEST) and ev.positions == len(names) == ev.tokens + len(TEST)
    assert ev.oov == 1 and ev.model == {"family": "test-unigram-dirichlet", "order": 1, "id": lm.id}
    p = draws_by_name(lm)
    log_p = np.array([np.log(p[w]) for w in names])  # (position, sample)
    per_draw_bits = -log_p.mean(axis=0) / LN2
    np.testing.assert_allclose(ev.cross_entropy_bits.values.ravel(), per_draw_bits, rtol=1e-12)
    predictive_bits = -np.mean([np.log(p[w].mean()) for w in names]) / LN2
    assert ev.predictive_cross_entropy_bits == pytest.approx(predictive_bits, rel=1e-12)
    # the closed form: E[-log p_w] = digamma(A) - digamma(a_w); p_hat_w = a_w / A
    A = sum(closed_form.values())
    expected_mean_bits = np.mean([digamma(A) - digamma(closed_form[w]) for w in names]) / LN2
    closed_predictive_bits = -np.mean([np.log(closed_form[w] / A) for w in names]) / LN2
    assert float(ev.cross_entropy_bits.mean()) == pytest.approx(expected_mean_bits, abs=5e-3)
    assert ev.predictive_cross_entropy_bits == pytest.approx(closed_predictive_bits, abs=5e-3)
    assert ev.predictive_perplexity == pytest.approx(2**closed_predictive_bits, rel=5e-3)


def test_score_sums_the_predictive_log_probabilities(lm):
    p = draws_by_name(lm)
    frame = lm.score(TEST)
    for row, text in zip(frame.itertuples(), TEST):
        names = scored([text], set(WORDS))
        assert row.positions == len(names) and row.tokens == len(names) - 1
        assert row.log_prob_nats == pytest.approx(sum(np.log(p[w].mean()) for w in names), rel=1e-12)
        assert row.log10_prob == pytest.approx(row.log_prob_nats / math.log(10), rel=1e-12)


def test_entropy_split_agrees_with_the_closed_form(lm, test_corpus, closed_form):
    split = lm.entropy_split(test_corpus)
    assert len(split) == len(scored(TEST, set(WORDS)))
    p = np.stack(list(draws_by_name(lm).values()), axis=1)  # (sample, token)
    p_bar = p.mean(axis=0)
    np.testing.assert_allclose(split["total"], -(p_bar * np.log(p_bar)).sum(), rtol=1e-12)
    a = np.array(list(closed_form.values()))
    A = a.sum()
    expected_entropy = digamma(A + 1) - (a / A * digamma(a + 1)).sum()
    np.testing.assert_allclose(split["aleatoric"], expected_entropy, rtol=2e-3)
    np.testing.assert_allclose(split["epistemic"], split["total"] - split["aleatoric"], atol=1e-15)
    assert (split["epistemic"] > 0).all()


# -- the report --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def toy_report(lm, test_corpus):
    other = fit(alpha=20.0)
    return blm.report(lm, test_corpus, compare=[other], labels=["alpha 0.5", "alpha 20"], replicates=5, top_k=5)


def test_report_json_agrees_with_the_closed_form(lm, test_corpus, toy_report, closed_form):
    data = toy_report.to_dict()
    assert data["model"]["family"] == "test-unigram-dirichlet" and data["model"]["order"] == 1
    assert data["ppc"] == {"available": False,
                           "reason": "UnigramDirichletLM cannot draw replicate corpora (it has no SamplesSentences ability)"}
    ev = data["entropy"]["evaluation"]
    assert ev == json.loads(json.dumps(lm.evaluate(test_corpus).to_dict()))
    # calibration: one context, so one top-1 token and one confidence for every position
    names = scored(TEST, set(WORDS))
    p_bar = {w: v.mean() for w, v in draws_by_name(lm).items()}
    top = max(p_bar, key=p_bar.get)
    accuracy = sum(w == top for w in names) / len(names)
    cal = data["entropy"]["calibration"]
    assert cal["distinct_contexts"] == 1 and cal["positions"] == len(names)
    assert cal["accuracy"] == pytest.approx(accuracy) and cal["mean_confidence"] == pytest.approx(p_bar[top])
    assert cal["ece"] == pytest.approx(abs(accuracy - p_bar[top]))
    # diagnostics: every p[token] gets a row whose mean is the posterior mean a_w / A
    diag = data["diagnostics"]
    assert diag["method"] == "unknown" and diag["var_names"] == ["p"]
    A = sum(closed_form.values())
    means = {row["name"]: row["mean"] for row in diag["parameters"]}
    assert means == pytest.approx({f"p[{w}]": a / A for w, a in closed_form.items()}, abs=3e-3)
    # comparison: both toys ranked by elpd = sum of log mean_s p_s(token)
    rows = {r["label"]: r for r in data["comparison"]["models"]}
    assert rows["alpha 0.5"]["elpd_sum_bits"] == pytest.approx(sum(np.log2(p_bar[w]) for w in names), rel=1e-12)
    assert {r["rank"] for r in rows.values()} == {1, 2} and data["comparison"]["positions"] == len(names)


def test_report_page_says_predictive_checks_are_unavailable(toy_report, tmp_path):
    html_path, json_path = toy_report.write(tmp_path / "toy.html")
    assert json.loads(json_path.read_text(encoding="utf-8")) == toy_report.to_dict()
    page = html_path.read_text(encoding="utf-8")
    assert "bayeslm report: test-unigram-dirichlet order 1" in page
    assert "cannot draw replicate corpora (it has no SamplesSentences ability)" in page
    assert "could not be drawn" not in page  # every figure rendered


def test_a_family_with_samples_sentences_gets_predictive_checks(test_corpus):
    lm = fit(SamplingUnigramDirichletLM)
    rep = blm.report(lm, test_corpus, replicates=20, random_seed=4)
    ppc = rep.to_dict()["ppc"]
    assert ppc["available"] and ppc["replicates"] == 20 and ppc["replicate_sentences"] == len(TEST)
    assert ppc["statistics"]["unseen_ngram_share"]["observed"] is None  # no training_counts: not computed
    for r in (0, 13):  # each replicate is sample_sentences(seed, draw) of the recorded seed and draw
        replicate = lm.sample_sentences(len(TEST), random_seed=ppc["seeds"][r], draw=ppc["draws"][r])
        assert ppc["statistics"]["types"]["replicated"][r] == len(set(replicate.ids.tolist()))
        assert ppc["statistics"]["mean_sentence_length"]["replicated"][r] == pytest.approx(replicate.sentence_lengths.mean())
    # sentence lengths under draw s are geometric: E[L] = (1 - q_s) / q_s, q_s = p_s(</s>)
    q = lm.idata["posterior"]["p"].sel(token="</s>").values.ravel()[ppc["draws"]]
    expected = np.mean((1 - q) / q)
    se = math.sqrt(np.sum((1 - q) / q**2) / len(TEST)) / q.size
    assert np.mean(ppc["statistics"]["mean_sentence_length"]["replicated"]) == pytest.approx(expected, abs=4 * se)
    page = rep.render_html()
    assert 'alt="frequency of frequencies"' in page and "could not be drawn" not in page


# -- generation ------------------------------------------------------------------------------------
def test_generate_draws_from_the_held_draw_and_annotates_each_token(lm):
    p = lm._draws()
    conts = lm.generate("", n=3000, max_tokens=1, random_seed=3, stop_at_eos=False)
    first = np.array([c.tokens[0].id for c in conts])
    p_bar = p.mean(axis=0)
    keep = p_bar > 0  # the draw of each continuation is uniform over the posterior: first tokens follow p_bar
    assert np.all(p_bar[first] > 0)
    observed = np.bincount(first, minlength=p_bar.size)[keep]
    assert stats.chisquare(observed, p_bar[keep] * first.size).pvalue > 1e-3
    split = lm.context_entropy_split(np.zeros((1, 0), dtype=np.int64)).iloc[0]
    for c in conts[:50]:
        t = c.tokens[0]
        assert t.prob_draw == pytest.approx(p[c.draw, t.id]) and t.prob_predictive == pytest.approx(p_bar[t.id])
        assert t.entropy_bits == pytest.approx(split["total"] / LN2)
        assert t.epistemic_bits == pytest.approx(split["epistemic"] / LN2)
    again = lm.generate("the cat", n=4, max_tokens=10, random_seed=5)
    assert [c.text for c in again] == [c.text for c in lm.generate("the cat", n=4, max_tokens=10, random_seed=5)]


# -- files -------------------------------------------------------------------------------------------
def test_save_and_load_round_trip(lm, test_corpus, tmp_path):
    lm.save(tmp_path / "toy")
    loaded = blm.load(tmp_path / "toy")
    assert type(loaded) is UnigramDirichletLM and loaded.id == lm.id and loaded.options == lm.options
    np.testing.assert_array_equal(loaded.counts_, lm.counts_)
    before, after = lm.evaluate(test_corpus), loaded.evaluate(test_corpus)
    np.testing.assert_array_equal(after.cross_entropy_bits.values, before.cross_entropy_bits.values)
    assert after.predictive_perplexity == before.predictive_perplexity
    pd.testing.assert_frame_equal(loaded.score(TEST), lm.score(TEST))
    np.savez(tmp_path / "toy" / "arrays.npz", counts=np.zeros(3))  # a family's own check reaches the caller
    reseal(tmp_path / "toy")  # (a consistent directory: the manifest would refuse it first)
    with pytest.raises(ModelFileError, match="counts do not match"):
        blm.load(tmp_path / "toy")
