"""Continuations: sampling matches its distribution, uncertainty figures, seeds, bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sampling import QUICK
from scipy import stats

import bayeslm as blm
from bayeslm.core.base import BayesianLM
from bayeslm.core.generation import format_terminal, generate, to_json, transform_probs
from bayeslm.exceptions import BayesLMError
from bayeslm.text.vocab import Vocabulary


class ExplicitDrawsLM(BayesianLM):
    """A unigram-like model whose posterior is a fixed list of next-token distributions.

    Every context gets the same draws, so the generator's figures can be computed by hand.
    """

    family = "test-explicit-draws"

    def __init__(self, draws: np.ndarray, tokens: list[str]):
        super().__init__(order=2)
        import arviz as az

        self.draws = np.asarray(draws, dtype=float)  # (S, V)
        self.vocab_, self.tokenizer_ = Vocabulary(tokens), self.tokenizer
        assert self.draws.shape[1] == len(self.vocab_)
        S = self.draws.shape[0]
        self.idata = az.from_dict(posterior={"x": np.zeros((1, S))})
        self.is_fitted_ = True

    def _fit(self, train, valid, sampler):
        raise NotImplementedError("the draws are given, not fitted")

    def next_token_probs(self, contexts, draws=None):
        m = np.atleast_2d(contexts).shape[0]
        chosen = self.draws if draws is None else self.draws[np.atleast_1d(draws)]
        return np.repeat(chosen[:, None, :], m, axis=1)

    def _log_prob_draws(self, corpus):
        contexts, tokens = corpus.context_windows(self.context_length)
        yield slice(0, tokens.size), np.log(self.draws[:, tokens])

    def predictive_log_prob(self, data):
        _, tokens = self.encode(data).context_windows(self.context_length)
        return np.log(self.draws.mean(axis=0)[tokens])

    def _family_arrays(self):
        return {"draws": self.draws}

    def _restore_family(self, arrays):
        self.draws = arrays["draws"]

    def context_entropy_split(self, contexts):
        m = np.atleast_2d(contexts).shape[0]
        split = blm.entropy_decomposition(self.draws[None], sample_axes=(0, 1), axis=-1)
        return pd.DataFrame({k: np.repeat(float(np.asarray(split[k])), m) for k in ("total", "aleatoric", "epistemic")})


def _h(p):
    p = np.asarray(p, float)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


TOKENS = ["a", "b", "c", "d"]  # ids 3..6 after <unk>, <s>, </s>


def _dist(*probs):
    """A distribution over the 7-token vocabulary with mass only on a, b, c, d."""
    return np.array([0.0, 0.0, 0.0, *probs])


@pytest.fixture(scope="module")
def demo_train():
    return blm.demo_corpus().split(0.5, random_seed=0)[0]


@pytest.fixture(scope="module")
def demo_lm(demo_train):
    """A bigram of half the demo corpus (its own fit: generation needs real text, with
    punctuation for stop strings and thousands of types)."""
    lm = blm.DirichletLM(order=2, min_count=3)
    lm.fit(demo_train, **QUICK, random_seed=3)
    return lm


# -- the transforms -----------------------------------------------------------------------------
def test_transforms_match_their_definitions():
    p = np.array([0.5, 0.2, 0.2, 0.1])
    t = transform_probs(p, temperature=0.5)
    np.testing.assert_allclose(t, p**2 / (p**2).sum())
    np.testing.assert_allclose(transform_probs(p, top_k=1), [1, 0, 0, 0])
    np.testing.assert_allclose(transform_probs(p, top_k=3), np.array([0.5, 0.2, 0.2, 0]) / 0.9)
    # nucleus: 0.5 < 0.6, 0.5 + 0.2 >= 0.6 -> the two most probable
    np.testing.assert_allclose(transform_probs(p, top_p=0.6), np.array([0.5, 0.2, 0, 0]) / 0.7)
    np.testing.assert_allclose(transform_probs(p, top_p=1.0), p)
    np.testing.assert_allclose(transform_probs(p, top_p=0.3), [1, 0, 0, 0])


@pytest.mark.parametrize("options", [{}, {"temperature": 0.7}, {"top_k": 2}, {"top_p": 0.75}])
def test_sampled_frequencies_match_the_held_draw(options):
    draws = np.array([_dist(0.6, 0.25, 0.1, 0.05), _dist(0.1, 0.2, 0.3, 0.4)])
    lm = ExplicitDrawsLM(draws, TOKENS)
    conts = generate(lm, "", n=4000, max_tokens=1, random_seed=11, stop_at_eos=False, **options)
    for s in (0, 1):
        ids = [c.tokens[0].id for c in conts if c.draw == s]
        expected = transform_probs(draws[s], **options)
        observed = np.bincount(ids, minlength=draws.shape[1])
        keep = expected > 0
        assert observed[~keep].sum() == 0
        chi2 = stats.chisquare(observed[keep], expected[keep] * observed.sum())
        assert chi2.pvalue > 1e-3, (s, observed, expected)


def test_predictive_mode_samples_the_mixture(demo_lm):
    context = np.array([[demo_lm.vocab_.id("the")]])
    conts = demo_lm.generate("the", n=3000, max_tokens=1, random_seed=5, mode="predictive", top_k=8, stop_at_eos=False)
    expected = transform_probs(demo_lm.predictive_probs(context)[0], top_k=8)
    observed = np.bincount([c.tokens[0].id for c in conts], minlength=expected.size)
    keep = expected > 0
    assert observed[~keep].sum() == 0
    assert stats.chisquare(observed[keep], expected[keep] * observed.sum()).pvalue > 1e-3


# -- uncertainty figures ---------------------------------------------------------------------------
def test_mutual_information_is_zero_when_draws_agree():
    same = _dist(0.4, 0.3, 0.2, 0.1)
    lm = ExplicitDrawsLM(np.stack([same, same, same]), TOKENS)
    (cont,) = generate(lm, "a", n=1, max_tokens=5, random_seed=0, stop_at_eos=False)
    for t in cont.tokens:
        assert abs(t.epistemic_bits) < 1e-12
        assert t.entropy_bits == pytest.approx(_h(same))
        assert t.prob_draw == pytest.approx(t.prob_predictive)


def test_two_draw_example_matches_hand_computation():
    d0, d1 = _dist(0.9, 0.1, 0, 0), _dist(0.1, 0.9, 0, 0)
    lm = ExplicitDrawsLM(np.stack([d0, d1]), TOKENS)
    (cont,) = generate(lm, "", n=1, max_tokens=3, random_seed=1, stop_at_eos=False)
    total = _h((d0 + d1) / 2)  # 1 bit
    aleatoric = (_h(d0) + _h(d1)) / 2
    assert total == pytest.approx(1.0)
    for t in cont.tokens:
        assert t.entropy_bits == pytest.approx(total)
        assert t.aleatoric_bits == pytest.approx(aleatoric)
        assert t.epistemic_bits == pytest.approx(total - aleatoric)
        assert t.prob_predictive == pytest.approx(0.5)
        assert t.prob_draw == pytest.approx([d0, d1][cont.draw][t.id])
    # threshold flags: above it everything is flagged, below nothing
    (flag,) = generate(lm, "", n=1, max_tokens=3, random_seed=1, stop_at_eos=False, mi_threshold_bits=0.1)
    (calm,) = generate(lm, "", n=1, max_tokens=3, random_seed=1, stop_at_eos=False, mi_threshold_bits=0.9)
    assert all(t.flagged for t in flag.tokens) and not any(t.flagged for t in calm.tokens)


def test_dirichlet_figures_agree_with_the_model(demo_lm, demo_train):
    conts = demo_lm.generate("the", n=2, max_tokens=6, random_seed=2, stop_at_eos=False)
    for c in conts:
        history = [demo_lm.vocab_.id("the")] + [t.id for t in c.tokens]
        for step, t in enumerate(c.tokens):
            ctx = np.array([[history[step]]])
            split = demo_lm.context_entropy_split(ctx).iloc[0]
            assert t.epistemic_bits == pytest.approx(split["epistemic"] / np.log(2))
            assert t.prob_predictive == pytest.approx(demo_lm.predictive_probs(ctx)[0, t.id])
            assert t.top[0][1] == pytest.approx(demo_lm.predictive_probs(ctx)[0].max())
        assert c.log_prob_bits == pytest.approx(sum(np.log2(t.prob_predictive) for t in c.tokens))
        assert c.log_prob_draw_bits == pytest.approx(sum(np.log2(t.prob_draw) for t in c.tokens))
        with pytest.warns(FutureWarning, match="use log_prob_bits"):
            assert c.log_prob_nats == pytest.approx(sum(np.log(t.prob_predictive) for t in c.tokens))
    # the stored flag threshold is the 90th percentile of training-position MI (no valid given;
    # read on a sample of the training sentences, so to within a little)
    threshold = conts[0].mi_threshold_bits
    mi_bits = demo_lm.entropy_split(demo_train)["epistemic"].to_numpy() / np.log(2)
    assert np.mean(mi_bits >= threshold) >= 0.09 and np.mean(mi_bits > threshold) <= 0.11


def test_held_draw_is_reused_when_a_context_recurs(demo_lm):
    rng = np.random.default_rng(0)
    ctx = np.array([[demo_lm.vocab_.id("the")]])
    p1 = demo_lm.sample_distribution(ctx, 0, rng)[0]
    p2 = demo_lm.sample_distribution(ctx, 0, rng)[0]
    assert p1.sum() == pytest.approx(1.0) and p1[demo_lm.vocab_.bos_id] == 0.0
    assert not np.allclose(p1, p2)  # a fresh Dirichlet draw each call...
    # ...but within a continuation the first draw is held: a repeated context gives equal prob_draw
    lm = demo_lm
    conts = lm.generate("", n=3, max_tokens=30, random_seed=4, stop_at_eos=False)
    for c in conts:
        seen = {}
        history = [lm.vocab_.bos_id] + [t.id for t in c.tokens]
        for step, t in enumerate(c.tokens):
            key = (history[step], t.id)
            if key in seen:
                assert t.prob_draw == seen[key]
            seen[key] = t.prob_draw


# -- reproducibility and options ---------------------------------------------------------------------
def test_same_seed_same_continuations_and_different_seeds_differ(demo_lm):
    a = [c.text for c in demo_lm.generate("the", n=4, max_tokens=15, random_seed=7)]
    b = [c.text for c in demo_lm.generate("the", n=4, max_tokens=15, random_seed=7)]
    c = [c.text for c in demo_lm.generate("the", n=4, max_tokens=15, random_seed=8)]
    assert a == b and a != c


def test_stops_and_unknown_prompt_words(demo_lm):
    for c in demo_lm.generate("", n=5, max_tokens=200, random_seed=1):
        assert c.stop_reason in ("eos", "max_tokens")
        if c.stop_reason == "eos":
            assert c.tokens[-1].token == "</s>" and "</s>" not in c.text
    (c,) = demo_lm.generate("the", n=1, max_tokens=1, random_seed=1, stop_at_eos=False)
    assert len(c.tokens) == 1 and c.stop_reason == "max_tokens"
    conts = demo_lm.generate("the", n=5, max_tokens=60, random_seed=1, stop=".", stop_at_eos=False)
    for c in conts:
        assert "." not in c.text
    assert any(c.stop_reason == "stop_string" for c in conts)
    (c,) = demo_lm.generate("the zzqxv", n=1, max_tokens=2, random_seed=1)
    assert c.unknown_prompt_tokens == ["zzqxv"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n": 0}, "n must be"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"temperature": 0}, "temperature"),
        ({"temperature": -1}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"top_k": 0}, "top_k"),
    ],
)
def test_bad_options_raise(demo_lm, kwargs, match):
    with pytest.raises(BayesLMError, match=match):
        demo_lm.generate("the", **{"n": 1, "max_tokens": 3, **kwargs})


def test_overlong_prompt_raises(demo_lm):
    with pytest.raises(BayesLMError, match="limit"):
        demo_lm.generate("the " * 10_001, n=1, max_tokens=1)


def test_outputs_for_people_and_programs(demo_lm):
    conts = demo_lm.generate("the", n=2, max_tokens=5, random_seed=3)
    data = json.loads(to_json(conts))
    assert data["schema"] == "bayeslm.generate/2" and len(data["continuations"]) == 2
    first = data["continuations"][0]
    assert first["schema"] == "bayeslm.continuation/2"
    assert first["log_prob_bits"] == pytest.approx(conts[0].log_prob_bits)
    assert first["log_prob_draw_bits"] == pytest.approx(conts[0].log_prob_draw_bits)
    assert '_nats"' not in to_json(conts)  # one unit: no key in nats
    tok = first["tokens"][0]
    assert {"token", "prob_draw", "prob_predictive", "entropy_bits", "aleatoric_bits", "epistemic_bits", "top", "flagged"} <= set(tok)
    plain = format_terminal(conts, color=False)
    assert "\x1b[" not in plain and conts[0].text in plain
    colored = format_terminal(conts, color=True)
    assert "\x1b[48;5;" in colored


def test_terminal_lines_say_their_units(demo_lm):
    """The header of every continuation: draw, log p in bits, mean entropy and MI in bits, flagged count, stop."""
    conts = demo_lm.generate("the", n=3, max_tokens=8, random_seed=5, mi_threshold_bits=0.5)
    plain = format_terminal(conts, color=False).splitlines()
    headers = [line for line in plain if line.startswith("[")]
    assert len(headers) == 3
    for i, (c, line) in enumerate(zip(conts, headers), start=1):
        flagged = sum(t.flagged for t in c.tokens)
        assert line == (f"[{i}] draw {c.draw}  log p {c.log_prob_bits:.2f} bits  "
                        f"mean H {c.mean_entropy_bits:.2f} bits  mean MI {c.mean_epistemic_bits:.3f} bits  "
                        f"{flagged} flagged  ({c.stop_reason})")
    unsure = [line for line in plain if line.startswith("    unsure (MI above 0.500 bits): ")]
    assert len(unsure) == sum(any(t.flagged for t in c.tokens) for c in conts) > 0
    assert "nats" not in "\n".join(plain)
    # colours: one shade per token from white to red at the threshold, underlined when flagged, and a legend
    colored = format_terminal(conts, color=True).splitlines()
    assert colored[-1] == ("colours: mutual information from white (0 bits) to red (at or above the flag threshold, "
                           "0.500 bits); underlined: above it (flagged)")
    tokens = [t for c in conts for t in c.tokens if t.token != "</s>"]
    shown = "\n".join(colored)
    assert shown.count("\x1b[48;5;") == len(tokens)
    assert shown.count("\x1b[4m") == sum(t.flagged for t in tokens)
    assert any(t.epistemic_bits >= 0.5 for t in tokens) and "\x1b[48;5;196m" in shown  # full red at the threshold
    (none,) = demo_lm.generate("the", n=1, max_tokens=3, random_seed=5, mi_threshold_bits=float("inf"))
    assert format_terminal([none], color=True).splitlines()[-1].endswith("1 bit; the model stores no flag threshold)")


def test_cli_generate(demo_lm, tmp_path, capsys):
    from bayeslm.cli import main

    demo_lm.save(tmp_path / "m")
    assert main(["generate", str(tmp_path / "m"), "--prompt", "the", "--n", "2", "--max-tokens", "4", "--seed", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["continuations"]) == 2
    assert main(["generate", str(tmp_path / "m"), "--prompt", "the", "--n", "2", "--seed", "1", "--no-color"]) == 0
    assert "\x1b[" not in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", str(tmp_path / "m"), "--n", "0"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("bayeslm: error: argument --n: must be")
