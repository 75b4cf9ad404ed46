"""Issue 18, the configuration cases: one line, exit status 2, and nothing read or sampled first.

``bayeslm fit`` with a bad ``--set`` used to print tracebacks (``sampler.draws=abc``,
``model.order=abc``, a prior's ``sigma=abc``), some after sampling had started, or to accept
the value (``sampler.target_accept=2`` gave R-hat 2.7e7 and exit 0). Every case here must
fail before the training text is read and before PyMC samples (both patched to fail the
test), with one line naming the setting, its rule and the value.
"""

from __future__ import annotations

import pytest

from bayeslm.text.corpus import Corpus
from cli_support import fails


@pytest.fixture
def nothing_read_or_sampled(monkeypatch):
    """Reading text or sampling fails the test: the configuration error must come first."""
    import pymc as pm

    def sample(*args, **kwargs):
        raise AssertionError("pm.sample ran before the configuration was checked")

    def from_paths(*args, **kwargs):
        raise AssertionError("the training text was read before the configuration was checked")

    monkeypatch.setattr(pm, "sample", sample)
    monkeypatch.setattr(Corpus, "from_paths", from_paths)


def fit_with(cli_files, tmp_path, *extra):
    return ["fit", cli_files["config"], "--train", cli_files["train"], "--out", tmp_path / "m", "--quiet", *extra]


@pytest.mark.parametrize("override, message", [
    ("sampler.draws=abc", "sampler.draws must be a whole number >= 1 (got 'abc')"),
    ("sampler.draws=0", "sampler.draws must be a whole number >= 1 (got 0)"),
    ("sampler.draws=-5", "sampler.draws must be a whole number >= 1 (got -5)"),
    ("sampler.draws=2.0", "sampler.draws must be a whole number >= 1 (got 2.0)"),
    ("sampler.chains=0", "sampler.chains must be a whole number >= 1 (got 0)"),
    ("sampler.tune=-1", "sampler.tune must be a whole number >= 0 (got -1)"),
    ("sampler.target_accept=2", "sampler.target_accept must be a number in (0, 1) (got 2)"),
    ("sampler.target_accept=nan", "sampler.target_accept must be a number in (0, 1) (got nan)"),
    ("sampler.random_seed=-1", "sampler.random_seed must be a whole number in 0..4294967295 or none (got -1)"),
    ("sampler.cores=0", "sampler.cores must be a whole number >= 1 or none (got 0)"),
    ("sampler.progressbar=1", "sampler.progressbar must be true or false (got 1)"),
    ("sampler.nuts_sampler=fast", "sampler.nuts_sampler must be one of 'pymc', 'nutpie', 'numpyro', 'blackjax' "
                                  "(got 'fast')"),
    ("model.order=abc", "model.order must be a whole number in 1..10 (got 'abc')"),
    ("model.order=50", "model.order must be a whole number in 1..10 (got 50)"),
    ("model.entropy_draws=0", "model.entropy_draws must be a whole number >= 1 (got 0)"),
    ("model.buckets=[2, 5]", "model.buckets must be 'auto' or increasing whole numbers >= 3 (got [2, 5])"),
    ("tokenizer.min_count=abc", "tokenizer.min_count must be a whole number >= 1 (got 'abc')"),
    ("tokenizer.max_size=2", "tokenizer.max_size must be a whole number >= 4 or none (got 2)"),
    ("tokenizer.kind=words", "tokenizer.kind must be one of 'word', 'whitespace', 'char', 'bpe' (got 'words')"),
    ("prior.concentration.kwargs.sigma=abc", "prior.concentration.kwargs.sigma must be a finite number (got 'abc')"),
    ("prior.concentration.kwargs.sigma=-1", "prior.concentration: LogNormal(mu=2, sigma=-1) is not a valid "
                                            "distribution: it needs sigma > 0"),
    ("prior.concentration.kwargs.sgima=1", "prior.concentration.kwargs: LogNormal has no parameter sgima; its "
                                           "parameters: mu, sigma, tau"),
    ("prior.concentration.dist=Gama", "prior.concentration.dist must be a PyMC distribution (got 'Gama'); "
                                      "did you mean 'Gamma'?"),
])
def test_a_bad_setting_is_one_line_before_any_work(cli_files, tmp_path, capsys, nothing_read_or_sampled,
                                                   override, message):
    line = fails(capsys, fit_with(cli_files, tmp_path, "--set", override), message)
    assert line.startswith(f"bayeslm: error: {message}")
    assert not (tmp_path / "m").exists()


def test_a_bad_seed_is_the_parsers_error(cli_files, tmp_path, capsys, nothing_read_or_sampled):
    fails(capsys, fit_with(cli_files, tmp_path, "--seed", "-1"), "argument --seed: must be a whole number in 0..")


def test_a_bad_gpt_setting_is_one_line_before_any_work(cli_files, tmp_path, capsys, nothing_read_or_sampled):
    base = ["fit", "gpt-char-bll", "--train", cli_files["train"], "--out", tmp_path / "m", "--quiet"]
    fails(capsys, [*base, "--set", "model.n_head=3"],
          "model.n_embd must be a multiple of n_head (got 128): n_head is 3")
    fails(capsys, [*base, "--set", "model.method=magic"], "model.method must be one of 'laplace'")
    fails(capsys, [*base, "--set", "model.order=5"], "model.order must be block_size + 1 = 65 (got 5)")
