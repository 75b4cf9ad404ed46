"""Domain adaptation of the Dirichlet LM (bayeslm/ngram/adapt.py, docs/domain.md).

The adapted model's answers are compared with a dense computation written from the
model's definition (the general predictive as the base of every order's domain Dirichlet),
not from the weighted back-off levels the implementation collapses it into; its limits
(concentrations to infinity: the general model) and its recovery of simulated domains.
"""

from __future__ import annotations

import numpy as np
import pytest
from corpora import markov_sentences
from sampling import QUICK, RECOVERY

import bayeslm as blm
from bayeslm.exceptions import BayesLMError, ConfigError, CorpusError, VocabularyMismatchError
from bayeslm.ngram.adapt import AdaptedDirichletLM
from bayeslm.ngram.dirichlet import dirichlet_multinomial_evidence
from bayeslm.stats.entropy import dirichlet_expected_entropy

DOMAIN_WORDS = ["the", "cat", "dog", "sat", "ran", "on", "mat", "log", "big", "red", "fox", "hen"]


@pytest.fixture(scope="module")
def general():
    """A Dirichlet trigram of one Markov chain's text (its own fit: the domain below is another chain's)."""
    lm = blm.DirichletLM(order=3, sampler_config={**QUICK, "random_seed": 5})
    lm.fit(blm.Corpus.from_texts(markov_sentences(1, 400)))
    return lm


@pytest.fixture(scope="module")
def domain_text():
    """Text of another chain, with two words the general text never had (read as <unk>)."""
    return markov_sentences(2, 120, words=DOMAIN_WORDS)


@pytest.fixture(scope="module")
def adapted(general, domain_text):
    return general.adapt(general.encode(domain_text[:100]), random_seed=7)


# -- a dense reference from the definition ----------------------------------------------------------
def _dense_counts(counts, k: int, V: int) -> dict[tuple, np.ndarray]:
    """Order k's counts as {context tokens: count vector}."""
    out = {}
    for ctx, row in zip(map(tuple, counts.context_tokens(k)), range(counts[k].n_contexts)):
        vec = np.zeros(V)
        sl = slice(counts[k].context_start[row], counts[k].context_start[row + 1])
        vec[counts[k].ngram_token[sl]] = counts[k].ngram_count[sl]
        out[ctx] = vec
    return out


def _reference(general, adapted, context: tuple, lam_top: np.ndarray, prior: bool = False, lam=None) -> np.ndarray:
    """p(. | context) per draw of the domain's top power ``lam_top``, shape (draws, V); with ``prior``
    the parameters of the top order's prior Dirichlet instead. ``lam``: the lower orders' powers (default
    the model's modes).

    The general posterior Dirichlet at u is Dirichlet(c_G(u) + a_k P_{k-1}(. | u')) (a_k the general
    model's mode), total T = c_G(u) + a_k, mean Q_k; the domain's posterior is
    Dirichlet(lam_k T Q_k + c_D(u)). A context the general text lacks has Q_k = P_{k-1} and T the
    general concentration there; one neither text has passes P_{k-1} through.
    """
    V, n = len(general.vocab_), general.order
    uniform = np.full(V, 1.0 / (V - 1))
    uniform[general.vocab_.bos_id] = 0.0
    lower = uniform
    for k in range(1, n + 1):
        u = context[len(context) - (k - 1):] if k > 1 else ()
        c_g = _dense_counts(general.counts_, k, V).get(u, np.zeros(V))
        c_d = _dense_counts(adapted.counts_, k, V).get(u)
        total, a = c_g.sum(), general.plugin_[k - 1]
        q = (c_g + a * lower) / (total + a)
        power = (adapted.plugin_ if lam is None else lam)[k - 1] if k < n else lam_top[:, None]
        if prior and k == n:
            return power * (total + a) * q
        lower = q if c_d is None else (c_d + power * (total + a) * q) / (c_d.sum() + power * (total + a))
    return np.broadcast_to(lower, (lam_top.size, V))


def _contexts(adapted, texts) -> np.ndarray:
    contexts, _ = adapted.encode(texts).context_windows(adapted.context_length)
    return np.unique(contexts, axis=0)


def test_the_predictive_and_every_draw_follow_the_definition(general, adapted, domain_text):
    contexts = _contexts(adapted, domain_text[100:])
    lam_top = adapted.idata["posterior"]["power"].sel(order=3).values.ravel()
    per_draw = adapted.next_token_probs(contexts)
    predictive = adapted.predictive_probs(contexts)
    for i, context in enumerate(map(tuple, contexts)):
        reference = _reference(general, adapted, context, lam_top)
        np.testing.assert_allclose(per_draw[:, i], reference, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(predictive[i], reference.mean(axis=0), rtol=1e-10, atol=1e-14)


def test_scores_entropies_and_sampled_tokens_agree_with_the_dense_distributions(adapted, domain_text):
    test = adapted.encode(domain_text[100:])
    contexts, tokens = test.context_windows(adapted.context_length)
    dense = adapted.predictive_probs(contexts)
    np.testing.assert_allclose(adapted.predictive_log_prob(test), np.log(dense[np.arange(tokens.size), tokens]),
                               rtol=1e-10)
    per_draw = adapted.token_log_prob(test).values.reshape(adapted.n_samples, -1)
    dense_draws = adapted.next_token_probs(contexts)[:, np.arange(tokens.size), tokens]
    np.testing.assert_allclose(per_draw, np.log(dense_draws), rtol=1e-10)

    split = adapted.context_entropy_split(contexts)
    total = -(dense * np.log(np.where(dense > 0, dense, 1))).sum(axis=1)
    np.testing.assert_allclose(split["total"], total, rtol=1e-7)
    draws = np.linspace(0, adapted.n_samples - 1, int(adapted.options["entropy_draws"])).round().astype(int)
    A = adapted.dirichlet_parameters(contexts, draws=list(draws))
    A = np.delete(A, adapted.vocab_.bos_id, axis=2)
    np.testing.assert_allclose(split["aleatoric"], dirichlet_expected_entropy(A).mean(axis=0), rtol=1e-7)

    rng = np.random.default_rng(0)
    context = contexts[:1].repeat(20000, axis=0)
    sampled = adapted._next_tokens(context, 3, rng)
    expected = adapted.next_token_probs(contexts[:1], draws=[3])[0, 0]
    frequency = np.bincount(sampled, minlength=expected.size) / sampled.size
    assert np.abs(frequency - expected).max() < 0.015


def test_infinite_powers_give_back_the_general_model(general, domain_text, tmp_path):
    """lam -> infinity: the general model at its concentrations' modes (the plug-in the adapted
    model's prior uses), and within the top concentration's posterior spread of its predictive."""
    adapted = general.adapt(general.encode(domain_text[:100]), random_seed=7)
    adapted.idata["posterior"]["power"][:] = 1e20
    adapted.plugin_ = np.full(3, 1e20)
    adapted._draws_cache = adapted._mixture_cache = None
    at_modes = blm.load(general.save(tmp_path / "general"))
    at_modes.idata["posterior"]["concentration"][:] = general.plugin_
    test = domain_text[100:]
    np.testing.assert_allclose(adapted.predictive_log_prob(test), at_modes.predictive_log_prob(test), rtol=1e-9)
    contexts = _contexts(adapted, test)
    np.testing.assert_allclose(adapted.predictive_probs(contexts), at_modes.predictive_probs(contexts), atol=1e-11)
    np.testing.assert_allclose(adapted.context_entropy_split(contexts)["total"],
                               at_modes.context_entropy_split(contexts)["total"], rtol=1e-8)
    np.testing.assert_allclose(adapted.predictive_log_prob(test), general.predictive_log_prob(test), rtol=0.02)


def test_the_general_model_is_unchanged_and_the_domain_text_helps(general, adapted, domain_text):
    assert general.family == "dirichlet" and adapted.family == "dirichlet-adapted"
    assert adapted.general_["id"] == general.id
    assert adapted.idata["posterior"]["power"].dims == ("chain", "draw", "order")
    assert "concentration" not in adapted.idata["posterior"] and adapted.diagnostic_var_names == ["power"]
    test = domain_text[100:]
    assert adapted.evaluate(test).predictive_perplexity < general.evaluate(test).predictive_perplexity


def test_the_adapted_model_saves_and_loads_without_the_general_model(adapted, domain_text, tmp_path):
    adapted.save(tmp_path / "adapted")
    loaded = blm.load(tmp_path / "adapted")
    assert isinstance(loaded, AdaptedDirichletLM) and loaded.id == adapted.id
    test = domain_text[100:]
    np.testing.assert_array_equal(loaded.predictive_log_prob(test), adapted.predictive_log_prob(test))
    np.testing.assert_array_equal(loaded.entropy_split(test), adapted.entropy_split(test))
    assert loaded.general_ == adapted.general_
    with pytest.raises(blm.DifferentModelError, match="not a 'dirichlet' model"):
        blm.DirichletLM.load(tmp_path / "adapted")


def test_the_evidence_of_the_domain_counts_follows_the_definition(general, adapted):
    """Without validation text, order k's evidence is the Dirichlet-multinomial probability of the
    domain's counts under the prior Dirichlet(lam_k T_k(u) Q_k(. | u)) of every domain context u."""
    V, bos = len(general.vocab_), general.vocab_.bos_id  # <s> is never predicted: no Dirichlet coordinate
    lam = np.array([0.01, 0.3, 4.0])
    reference = [sum(dirichlet_multinomial_evidence(np.delete(counts, bos)[None, :],
                                                    np.delete(_reference(general, adapted, u, np.array([x]), True), bos, 1))
                     for u, counts in _dense_counts(adapted.counts_, 3, V).items()) for x in lam]
    np.testing.assert_allclose(adapted.log_evidence(3, lam), reference, rtol=1e-10)


def test_with_validation_text_its_predictive_is_the_evidence(general, domain_text, tmp_path):
    """With domain validation text, order k's evidence is the log predictive probability of its
    positions under the whole model (written from the definition) as a function of lam_k, the other
    powers at their modes; the directory keeps it."""
    valid = general.encode(domain_text[100:])
    adapted = general.adapt(general.encode(domain_text[:100]), valid=valid, random_seed=7)
    contexts, tokens = valid.context_windows(2)
    values = np.array([0.01, 0.3, 4.0])
    for k in (1, 2, 3):
        held_out = []
        for x in values:
            lam = adapted.plugin_.copy()
            lam[k - 1] = x
            held_out.append(sum(np.log(_reference(general, adapted, tuple(c), lam[2:], lam=lam)[0, t])
                                for c, t in zip(contexts, tokens)))
        np.testing.assert_allclose(adapted.log_evidence(k, values), held_out, rtol=1e-10)
    adapted.save(tmp_path / "adapted")
    loaded = blm.load(tmp_path / "adapted")
    np.testing.assert_array_equal(loaded.log_evidence(3, values), adapted.log_evidence(3, values))


class _Rising:
    """An evidence that rises with a past any range."""

    def logp(self, a):
        return 1e3 * np.log(np.atleast_1d(a))


def test_tiny_powers_are_found_and_a_mode_beyond_the_range_is_its_edge(general, adapted, domain_text):
    """Validation text the domain text holds wants the domain's counts nearly alone (a top power far
    below 1, beyond the Dirichlet LM's range of concentrations); a mode past the range is its edge."""
    domain = general.encode(domain_text[:100])
    tight = general.adapt(domain, valid=domain, random_seed=7)
    assert tight.plugin_[2] < np.exp(blm.DirichletLM.MODE_GRID[0])
    assert np.isfinite(tight.evaluate(domain_text[100:]).predictive_perplexity)
    assert adapted._mode(_Rising(), adapted._prior_logp()) == pytest.approx(np.exp(AdaptedDirichletLM.MODE_GRID[1]))


def test_bad_domain_input_is_refused(general, adapted):
    with pytest.raises(CorpusError, match="no tokens"):
        general.adapt(blm.Corpus.from_texts(["", " "]))
    chars = blm.Corpus.from_texts(["the cat sat"], tokenizer=blm.CharTokenizer())
    with pytest.raises(VocabularyMismatchError, match="domain text was tokenised"):
        general.adapt(chars)
    with pytest.raises(ConfigError, match="as a Corpus"):
        general.adapt(["the cat sat"])
    with pytest.raises(BayesLMError, match="not adapted again"):
        adapted.adapt(general.encode(["the cat"]))
    with pytest.raises(BayesLMError, match="ARPA export"):
        adapted.interpolation()
    with pytest.raises(BayesLMError, match="not fitted alone"):
        AdaptedDirichletLM(order=2).fit(blm.Corpus.from_texts(["the cat"]))
    with pytest.raises(blm.NotFittedError):
        blm.DirichletLM(order=2).adapt(general.encode(["the cat"]))


# -- recovery of a simulated domain --------------------------------------------------------------------
def _simulated_domain(general, lam_true: tuple[float, float], n_sentences: int, seed: int):
    """A bigram domain drawn from the adapted model's prior at powers ``lam_true``: (Corpus, truth).

    p_D(.) ~ Dirichlet(lam_1 (c_G + a_1 / V')), p_D(. | u) ~ Dirichlet(lam_2 (c_G(u) + a_2 p_D(.))) with
    the general model's modes a_k; ``truth[u]`` is p_D(. | u), shape (V, V).
    """
    rng = np.random.default_rng(seed)
    V, bos, eos = len(general.vocab_), general.vocab_.bos_id, general.vocab_.eos_id
    uniform = np.full(V, 1.0 / (V - 1))
    uniform[bos] = 0.0
    c1 = _dense_counts(general.counts_, 1, V)[()]
    p1 = rng.dirichlet(np.maximum(lam_true[0] * (c1 + general.plugin_[0] * uniform), 1e-300))
    truth = np.zeros((V, V))
    bigram = _dense_counts(general.counts_, 2, V)
    for u in range(V):
        c_g = bigram.get((u,), np.zeros(V))
        truth[u] = rng.dirichlet(np.maximum(lam_true[1] * (c_g + general.plugin_[1] * p1), 1e-300))
        truth[u, bos] = 0.0
        truth[u] /= truth[u].sum()
    ids, lengths = [], []
    for _ in range(n_sentences):
        prev, sentence = bos, []
        while (prev := int(rng.choice(V, p=truth[prev]))) != eos:
            sentence.append(prev)
        ids += sentence
        lengths.append(len(sentence))
    corpus = blm.Corpus(np.asarray(ids, dtype=np.int32), np.concatenate([[0], np.cumsum(lengths)]), general.vocab_,
                        general.tokenizer_)
    return corpus, truth


@pytest.fixture(scope="module")
def bigram_general():
    """A Dirichlet bigram of a 30-word chain's text (its own fit: the simulation needs a bigram)."""
    words = [f"w{i}" for i in range(30)]
    lm = blm.DirichletLM(order=2, sampler_config={**QUICK, "random_seed": 2})
    lm.fit(blm.Corpus.from_texts(markov_sentences(3, 2000, words=words)))
    return lm


def test_adapted_predictive_converges_to_the_domain_and_recovers_its_concentration(bigram_general):
    """The excess held-out log loss over the truth's (the expected KL divergence) shrinks to ~0, and the
    top order's power is recovered (the unigram's is not identified: the domain's unigram
    frequencies follow the bigram rows drawn around it, as in the Dirichlet LM)."""
    lam_true = (0.05, 0.02)
    domain, truth = _simulated_domain(bigram_general, lam_true, 8000, seed=11)
    test = domain.select(np.arange(6000, 8000))
    contexts, tokens = test.context_windows(1)
    truth_loss = -np.log(truth[contexts[:, 0], tokens]).mean()
    excess, intervals = [], []
    for size in (100, 1000, 6000):
        adapted = bigram_general.adapt(domain.select(np.arange(size)), **{**RECOVERY, "random_seed": 1})
        excess.append(float(-adapted.predictive_log_prob(test).mean() - truth_loss))
        lam2 = adapted.idata["posterior"]["power"].sel(order=2).values.ravel()
        intervals.append(np.quantile(lam2, [0.005, 0.995]))
    assert excess[0] > excess[1] > excess[2] > 0
    assert excess[2] < 0.002 and excess[2] < 0.1 * excess[0]
    low, high = intervals[-1]
    assert low < lam_true[1] < high and high / low < 3


# -- drawing the powers without PyMC ------------------------------------------------------------------
def test_a_directory_holding_the_powers_as_concentration_loads_and_scores_the_same(adapted, domain_text, tmp_path):
    """Directories adapted before the powers were named ``power`` hold them as ``concentration``."""
    import copy

    old = copy.deepcopy(adapted)
    old.idata.posterior = old.idata.posterior.rename({"power": "concentration"})
    old.save(tmp_path / "old")
    loaded = blm.load(tmp_path / "old")
    assert loaded.draws_var == "concentration" and loaded.diagnostic_var_names == ["concentration"]
    test = domain_text[100:]
    np.testing.assert_array_equal(loaded.predictive_log_prob(test), adapted.predictive_log_prob(test))
    assert loaded.departure() == adapted.departure()


@pytest.mark.parametrize("dist, params", [("LogNormal", {"mu": 2.0, "sigma": 3.0}), ("Gamma", {"alpha": 2.0, "beta": 0.5}),
                                          ("Exponential", {"lam": 1.5}), ("HalfNormal", {"sigma": 2.0})])
def test_closed_form_priors_equal_pymc(dist, params):
    import pymc as pm

    prior = blm.Prior(dist, **params)
    x = np.array([1e-3, 0.2, 1.0, 7.5, 40.0])
    expected = pm.logp(getattr(pm, dist).dist(**params), x).eval()
    np.testing.assert_allclose(prior.numpy_logp()(x), expected, rtol=1e-7, atol=1e-7)  # PyMC's log(2 pi) is rounded
    assert prior.numpy_logp()(np.array([-1.0, 0.0]))[0] == -np.inf


def test_priors_without_a_closed_form_have_none():
    assert blm.Prior("Weibull", alpha=2.0, beta=1.0).numpy_logp() is None
    assert blm.Prior("LogNormal", mu=0.0, tau=1.0).numpy_logp() is None  # another parametrisation
    assert blm.Prior("LogNormal", mu=0.0, sigma=-1.0).numpy_logp() is None  # invalid: PyMC's check says why


def test_grid_draws_follow_the_density():
    """Draws of a skewed density (log of a Gamma(3, 2) variable, in t) against its exact quantiles."""
    from scipy import stats

    from bayeslm.ngram.adapt import grid_draws

    log_density = lambda t: 3 * t - 2 * np.exp(t)  # t = log x, x ~ Gamma(3, rate 2), Jacobian included
    t = grid_draws(log_density, np.log(1.5), 40_000, np.random.default_rng(0))
    q = np.array([0.05, 0.25, 0.5, 0.75, 0.95])
    np.testing.assert_allclose(np.quantile(np.exp(t), q), stats.gamma(3, scale=0.5).ppf(q), rtol=0.02)
    assert stats.kstest(np.exp(t), stats.gamma(3, scale=0.5).cdf).pvalue > 1e-3


def test_the_powers_draws_are_their_posterior(general, domain_text):
    """Each power's draws against its posterior written from the evidence and the prior (quadrature
    on a grid, other powers at their modes): mean and 90% interval, within Monte Carlo error."""
    adapted = general.adapt(general.encode(domain_text[:100]), random_seed=3, draws=2000)
    prior = adapted.model_config["concentration"].numpy_logp()
    assert adapted.idata["posterior"].attrs["inference_method"] == "exact" and "sample_stats" not in adapted.idata.groups()
    for k in (1, 2, 3):
        draws = adapted.idata["posterior"]["power"].sel(order=k).values.ravel()
        t = np.linspace(np.log(draws.min()) - 2, np.log(draws.max()) + 2, 4001)
        log_post = adapted.log_evidence(k, np.exp(t)) + prior(np.exp(t)) + t
        weight = np.exp(log_post - log_post.max())
        cdf = np.cumsum(weight) / weight.sum()
        mean = np.sum(np.exp(t) * weight) / weight.sum()
        sd = np.sqrt(np.sum((np.exp(t) - mean) ** 2 * weight) / weight.sum())
        assert abs(draws.mean() - mean) < 4 * sd / np.sqrt(draws.size)
        for q in (0.05, 0.5, 0.95):  # the share of draws below each posterior quantile, within 4 binomial sds
            below = np.mean(draws < np.exp(np.interp(q, cdf, t)))
            assert abs(below - q) < 4 * np.sqrt(q * (1 - q) / draws.size)


# -- how far the domain departs, and where the uncertainty comes from --------------------------------
def test_departure_states_each_power_with_its_interval(adapted):
    rows = adapted.departure()
    assert [r["order"] for r in rows] == [1, 2, 3]
    for r in rows:
        draws = adapted.idata["posterior"]["power"].sel(order=r["order"]).values
        assert r["mean"] == pytest.approx(draws.mean()) and r["hdi_low"] <= r["mean"] <= r["hdi_high"]
        assert r["meaning"]


def test_uncertainty_sources_split_the_concentration_at_each_context(general, adapted, domain_text):
    """At a position whose trigram context either text saw, the domain's share of the Dirichlet's
    total is c_D(u) / (c_D(u) + lam_3 (c_G(u) + a_3)), averaged over lam_3's draws (counts from the texts)."""
    test = domain_text[100:]
    table = adapted.uncertainty_sources(test)
    contexts, _ = adapted.encode(test).context_windows(2)
    domain_ctx = _dense_counts(adapted.counts_, 3, len(general.vocab_))
    general_ctx = _dense_counts(general.counts_, 3, len(general.vocab_))
    lam = adapted.idata["posterior"]["power"].sel(order=3).values.ravel()
    a3 = general.plugin_[2]
    checked = 0
    for row, context in zip(table.itertuples(), map(tuple, contexts)):
        if context not in domain_ctx and context not in general_ctx:
            assert row.order < 3
            continue
        c_d = domain_ctx[context].sum() if context in domain_ctx else 0.0
        c_g = general_ctx[context].sum() if context in general_ctx else 0.0
        assert row.order == 3 and row.domain_count == c_d
        assert row.domain_share == pytest.approx(np.mean(c_d / (c_d + lam * (c_g + a3))), rel=1e-12)
        assert row.source == ("domain text" if row.domain_share >= 0.5 else "general model")
        checked += 1
    assert checked > 50


def test_the_report_of_an_adapted_model_shows_its_departure(general, adapted, domain_text):
    """The report's departure section: the powers as departure() states them, and the held-out
    positions split by source, their counts adding up and matching uncertainty_sources."""
    from bayeslm.report import report

    test = domain_text[100:]
    result = report(adapted, test, replicates=2)
    section = result.data["departure"]
    assert section["orders"] == adapted.departure()
    table = adapted.uncertainty_sources(test)
    counts = {g["source"]: g["positions"] for g in section["sources"]}
    assert counts == {"domain text": int((table["source"] == "domain text").sum()),
                      "general model": int((table["source"] == "general model").sum())}
    assert sum(g["positions"] for g in section["by_order"]) == len(table)
    assert 'id="departure"' in result.render_html() and "Departure from the general model" in result.render_html()
    assert report(general, test, replicates=2).data["departure"] is None
