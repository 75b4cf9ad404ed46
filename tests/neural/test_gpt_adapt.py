"""``GPTLM.adapt``: the session's tiny GPT adapted to a little domain text (bayeslm/neural/adapt.py,
docs/domain.md "GPT"): the protocol's answers, files, and bad input."""

from __future__ import annotations

import copy

import numpy as np
import pytest

pytest.importorskip("torch")

import bayeslm as blm
from bayeslm.core.protocol import AdaptedToDomain
from bayeslm.exceptions import BayesLMError, ConfigError, CorpusError, VocabularyMismatchError
from sampling import GPT_DRAWS

DOMAIN = ["the red fox ran to the log", "a red fox sat on the mat", "the fox ran on the log", "a big red fox sat"] * 4
TEST = ["the red fox sat on the log", "a fox ran to the mat"]


@pytest.fixture(scope="module")
def adapted(gpt_lm):
    return gpt_lm.adapt(gpt_lm.encode(DOMAIN), random_seed=1, **GPT_DRAWS)


@pytest.fixture(scope="module")
def finetuned(gpt_lm):
    return gpt_lm.adapt(gpt_lm.encode(DOMAIN), head="map", random_seed=1)


def test_the_adapted_gpt_keeps_the_general_body_and_predicts_the_domain_better(gpt_lm, adapted, finetuned):
    assert isinstance(adapted, AdaptedToDomain) and not isinstance(finetuned, AdaptedToDomain)
    assert adapted.body_ is gpt_lm.body_ and adapted.vocab_ is gpt_lm.vocab_
    assert adapted.n_samples == GPT_DRAWS["draws"] and finetuned.n_samples == 1
    general = -gpt_lm.predictive_log_prob(TEST).mean()
    assert -adapted.predictive_log_prob(TEST).mean() < general  # 'red fox' is domain text
    assert -finetuned.predictive_log_prob(TEST).mean() < general
    assert adapted.general_["id"] == gpt_lm.id and adapted.id != gpt_lm.id


def test_the_adapted_gpt_answers_the_protocol(adapted):
    evaluation = adapted.evaluate(TEST)
    assert np.isfinite(evaluation.predictive_perplexity)
    scores = adapted.score(TEST)
    np.testing.assert_allclose(scores["log_prob_nats"].sum(), adapted.predictive_log_prob(TEST).sum(), rtol=1e-9)
    split = adapted.entropy_split(TEST)
    assert (split["epistemic"] >= 0).all() and len(split) == len(adapted.predictive_log_prob(TEST))
    assert len(adapted.generate("the", n=2, max_tokens=10, random_seed=0)) == 2
    [row] = adapted.departure()
    assert row["order"] == adapted.order and 0 < row["hdi_low"] <= row["mean"] <= row["hdi_high"] and row["meaning"]
    sources = adapted.uncertainty_sources(TEST)
    assert len(sources) == len(split) and sources["domain_share"].between(0, 1).all()
    assert set(sources["source"]) <= {"domain text", "general model"} and (sources["logit_variance"] > 0).all()


def test_more_domain_text_moves_the_posterior_spread_onto_the_domain(gpt_lm, adapted):
    """With the power fixed at 1 the domain share of every position grows with the domain text."""
    small = gpt_lm.adapt(gpt_lm.encode(DOMAIN[:2]), options={"power": 1.0}, random_seed=1, **GPT_DRAWS)
    large = gpt_lm.adapt(gpt_lm.encode(DOMAIN * 8), options={"power": 1.0}, random_seed=1, **GPT_DRAWS)
    assert np.all(small.uncertainty_sources(TEST)["domain_share"].to_numpy()
                  < large.uncertainty_sources(TEST)["domain_share"].to_numpy())
    assert {row["mean"] for row in small.departure()} == {1.0}


@pytest.mark.parametrize("which", ["adapted", "finetuned"])
def test_save_and_load_give_the_same_model(which, request, tmp_path):
    model = request.getfixturevalue(which)
    back = blm.load(model.save(tmp_path / which))
    assert type(back) is type(model) and back.id == model.id
    np.testing.assert_array_equal(back.predictive_log_prob(TEST), model.predictive_log_prob(TEST))
    if which == "adapted":
        assert back.departure() == model.departure() and back.general_ == model.general_
        np.testing.assert_array_equal(back.uncertainty_sources(TEST)["domain_share"],
                                      model.uncertainty_sources(TEST)["domain_share"])


def test_a_saved_general_gpt_adapts_as_the_fitted_one(gpt_lm, gpt_dir, adapted):
    """The general directory keeps the last layer's Laplace posterior: adapting the loaded model gives the same draws."""
    loaded = blm.load(gpt_dir)
    again = loaded.adapt(loaded.encode(DOMAIN), random_seed=1, **GPT_DRAWS)
    np.testing.assert_allclose(again.bll_.theta_draws(), adapted.bll_.theta_draws(), rtol=1e-6, atol=1e-9)


def test_bad_input_is_refused_in_one_line(gpt_lm, adapted):
    words = blm.Corpus.from_lines(DOMAIN, tokenizer=blm.WordTokenizer())
    with pytest.raises(VocabularyMismatchError, match="tokenised with"):
        gpt_lm.adapt(words)
    with pytest.raises(CorpusError, match="no tokens"):
        gpt_lm.adapt(gpt_lm.encode([""]))
    with pytest.raises(ConfigError, match="head must be"):
        gpt_lm.adapt(gpt_lm.encode(DOMAIN), head="sgd")
    with pytest.raises(ConfigError, match="takes only power and fit_positions"):
        gpt_lm.adapt(gpt_lm.encode(DOMAIN), options={"n_layer": 2})
    with pytest.raises(BayesLMError, match="not adapted again"):
        adapted.adapt(gpt_lm.encode(DOMAIN))
    without = copy.copy(gpt_lm)  # a GPT whose last layer was fitted without a Laplace posterior
    without.laplace_posterior_ = None
    with pytest.raises(BayesLMError, match="keeps no Laplace posterior"):
        without.adapt(gpt_lm.encode(DOMAIN))


def test_a_directory_without_its_body_or_its_share_matrices_is_refused(adapted, tmp_path):
    from bayeslm.exceptions import ModelFileError

    loaded = blm.load(adapted.save(tmp_path / "adapted"))
    arrays = loaded._family_arrays()
    for missing, message in (("body_config", "no GPT body"), ("domain_share.total", "domain-share matrices")):
        with pytest.raises(ModelFileError, match=message):
            loaded._restore_family({k: v for k, v in arrays.items() if k != missing})
