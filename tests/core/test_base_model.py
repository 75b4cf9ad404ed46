"""BayesianLM's shared machinery through DirichletLM: evaluation, scores, save and load."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

import bayeslm
from bayeslm import Corpus, DirichletLM
from bayeslm.core.storage import FORMAT_VERSION
from bayeslm.exceptions import (
    BayesLMError,
    ConfigError,
    CorpusError,
    DifferentModelError,
    ModelFileError,
    NotFittedError,
    VocabularyMismatchError,
)
from bayeslm.text.tokenize import CharTokenizer
from bayeslm.text.vocab import Vocabulary
from model_dirs import rewrite_attrs
from sampling import QUICK, SMALL

UNK, BOS, EOS = 0, 1, 2
TRAIN = [
    "the cat sat on the mat",
    "the dog sat on the log",
    "a cat ran",
    "the cat ran on the mat",
    "a dog sat",
    "the big dog ran on the log",
    "the cat sat",
    "a big cat sat on a mat",
]
# "zebra", "purple" and "moon" were never seen in training
TEST = ["the cat sat on the log", "a zebra ran", "the purple dog sat on the moon", "cat"]


@pytest.fixture(scope="module")
def lm():
    """Its own fit: hand-written sentences whose tokens, OOVs and scores the tests count."""
    model = DirichletLM(order=2, sampler_config={**SMALL, "random_seed": 21})
    model.fit(Corpus.from_texts(TRAIN))
    return model


@pytest.fixture(scope="module")
def saved(lm, tmp_path_factory) -> Path:
    return lm.save(tmp_path_factory.mktemp("saved") / "model")


def copy_of(saved: Path, tmp_path: Path) -> Path:
    """A copy without the manifest, as format 1 wrote it: what load checks beyond the manifest.

    (tests/core/test_storage.py: the manifest itself.)
    """
    target = tmp_path / "copy"
    shutil.copytree(saved, target)
    (target / "manifest.json").unlink()
    rewrite_attrs(target, manifest_file=None)
    return target


# ---------------------------------------------------------------------- evaluation
def test_counts_of_evaluation(lm):
    train_words = {w for s in TRAIN for w in s.split()}
    words = sum(len(s.split()) for s in TEST)
    oov = sum(w not in train_words for s in TEST for w in s.split())
    assert oov == 3
    ev = lm.evaluate(TEST)
    assert ev.tokens == words  # text tokens, as Corpus.n_tokens
    assert ev.sentences == len(TEST)
    assert ev.positions == words + len(TEST)  # one </s> per sentence, never <s>
    assert ev.oov == oov
    assert ev.oov_rate == pytest.approx(oov / words)


def test_predictive_log_prob_is_log_mean_of_draws(lm):
    tlp = lm.token_log_prob(TEST)
    chains, draws = lm.idata["posterior"].sizes["chain"], lm.idata["posterior"].sizes["draw"]
    n_pos = sum(len(s.split()) + 1 for s in TEST)
    assert tlp.shape == (chains, draws, n_pos)
    assert np.all(tlp.values < 0)
    flat = tlp.values.reshape(chains * draws, n_pos)
    expected = np.log(np.exp(flat).mean(axis=0))
    np.testing.assert_allclose(lm.predictive_log_prob(TEST), expected, rtol=1e-10)

    # each per-draw value is log p(token | context) of the dense next-token table
    ids = [[lm.vocab_.id(w) for w in s.split()] + [EOS] for s in TEST]
    contexts, tokens = [], []
    for sent in ids:
        prev = BOS
        for w in sent:
            contexts.append([prev])
            tokens.append(w)
            prev = w
    probs = lm.next_token_probs(np.array(contexts))
    np.testing.assert_allclose(flat, np.log(probs[:, np.arange(n_pos), tokens]), rtol=1e-10)


def test_evaluate_bits_and_perplexity(lm):
    import arviz as az

    tlp = lm.token_log_prob(TEST)
    ev = lm.evaluate(TEST)
    assert ev.cross_entropy_bits.dims == ("chain", "draw")
    np.testing.assert_allclose(ev.cross_entropy_bits.values, (-tlp.mean("position") / math.log(2)).values, rtol=1e-12)
    np.testing.assert_allclose(ev.perplexity.values, 2.0 ** ev.cross_entropy_bits.values, rtol=1e-12)
    predictive_bits = -lm.predictive_log_prob(TEST).mean() / math.log(2)
    assert ev.predictive_cross_entropy_bits == pytest.approx(predictive_bits, rel=1e-12)
    assert ev.predictive_perplexity == pytest.approx(2.0**predictive_bits, rel=1e-12)
    # Jensen: the mixture scores at least as well as the average draw
    assert ev.predictive_cross_entropy_bits <= float(ev.cross_entropy_bits.mean()) + 1e-12
    np.testing.assert_allclose(lm.perplexity(TEST).values, ev.perplexity.values)
    np.testing.assert_allclose(lm.cross_entropy(TEST, units="nats").values,
                               (-tlp.mean("position")).values, rtol=1e-12)

    d = ev.to_dict()
    assert d["schema"] == "bayeslm.evaluate/2"
    assert (d["tokens"], d["positions"]) == (ev.tokens, ev.positions) and "words" not in d
    assert d["model"] == {"family": "dirichlet", "order": 2, "id": lm.id}
    ce = d["cross_entropy_bits"]
    assert ce["mean"] == pytest.approx(float(ev.cross_entropy_bits.mean()))
    assert ce["hdi_prob"] == 0.94  # the shortest interval of the per-draw values, as ArviZ computes it
    assert [ce["hdi_low"], ce["hdi_high"]] == pytest.approx(az.hdi(ev.cross_entropy_bits.values.ravel(), hdi_prob=0.94),
                                                            rel=1e-12)
    pp = d["perplexity"]
    assert pp["hdi_low"] == pytest.approx(2 ** ce["hdi_low"], rel=1e-9)  # monotone transform
    assert pp["hdi_high"] == pytest.approx(2 ** ce["hdi_high"], rel=1e-9)
    json.dumps(d)  # plain JSON data
    narrow = lm.evaluate(TEST, hdi_prob=0.5).to_dict()["cross_entropy_bits"]
    assert narrow["hdi_prob"] == 0.5
    assert [narrow["hdi_low"], narrow["hdi_high"]] == pytest.approx(
        az.hdi(ev.cross_entropy_bits.values.ravel(), hdi_prob=0.5), rel=1e-12)
    assert ce["hdi_low"] <= narrow["hdi_low"] <= narrow["hdi_high"] <= ce["hdi_high"]
    assert "predictive perplexity" in str(ev)


def test_text_and_corpus_inputs_agree(lm):
    from_corpus = lm.predictive_log_prob(Corpus.from_texts(TEST))
    np.testing.assert_array_equal(lm.predictive_log_prob(TEST), from_corpus)
    np.testing.assert_array_equal(lm.predictive_log_prob("\n".join(TEST)), from_corpus)


def test_score_sums_per_sentence(lm):
    lp = lm.predictive_log_prob(TEST)
    frame = lm.score(TEST)
    assert list(frame.columns) == [
        "sentence", "text", "log_prob_nats", "log_prob_per_draw_mean_nats", "log_prob_hdi_low_nats",
        "log_prob_hdi_high_nats", "mean_entropy_nats", "mean_aleatoric_nats", "mean_epistemic_nats", "log10_prob",
        "tokens", "positions", "oov", "characters", "bytes", "bits_per_character", "bits_per_byte"]
    bounds = np.cumsum([0] + [len(s.split()) + 1 for s in TEST])
    expected = [lp[a:b].sum() for a, b in zip(bounds[:-1], bounds[1:])]
    np.testing.assert_allclose(frame["log_prob_nats"], expected, rtol=1e-12)
    np.testing.assert_allclose(frame["log10_prob"], np.array(expected) / math.log(10), rtol=1e-12)
    assert frame["tokens"].tolist() == [len(s.split()) for s in TEST]  # as Evaluation.tokens
    assert frame["positions"].tolist() == [len(s.split()) + 1 for s in TEST]  # and </s>
    assert frame["oov"].tolist() == [0, 1, 2, 0]
    assert frame["text"].tolist()[1] == "a <unk> ran"
    bits = lm.score(TEST, units="bits")
    np.testing.assert_allclose(bits["log_prob_bits"], np.array(expected) / math.log(2), rtol=1e-12)
    np.testing.assert_array_equal(bits["log10_prob"], frame["log10_prob"])
    with pytest.raises(ConfigError, match="units must be 'nats' or 'bits'"):
        lm.score(TEST, units="log10")


def brute_force_sentences(lm, texts, hdi_prob):
    """Per sentence from the full (draw, position) array: per-draw sums, their mean and HDI (arviz), nats."""
    import arviz as az

    draws = lm.token_log_prob(texts).values.reshape(lm.n_samples, -1)
    bounds = np.cumsum([0] + [len(s.split()) + 1 for s in texts])
    sums = [draws[:, a:b].sum(axis=1) for a, b in zip(bounds[:-1], bounds[1:])]
    return np.array([s.mean() for s in sums]), np.array([az.hdi(s, hdi_prob=hdi_prob) for s in sums])


def test_score_interval_over_draws_matches_a_brute_force_sum(lm):
    mean, interval = brute_force_sentences(lm, TEST, 0.8)
    frame = lm.score(TEST, hdi_prob=0.8)
    np.testing.assert_allclose(frame["log_prob_per_draw_mean_nats"], mean, rtol=1e-12)
    np.testing.assert_allclose(frame["log_prob_hdi_low_nats"], interval[:, 0], rtol=1e-12)
    np.testing.assert_allclose(frame["log_prob_hdi_high_nats"], interval[:, 1], rtol=1e-12)
    assert (frame["log_prob_hdi_low_nats"] < frame["log_prob_hdi_high_nats"]).all()
    # log of the mean is at least the mean of the log, position by position (Jensen)
    assert (frame["log_prob_nats"] >= frame["log_prob_per_draw_mean_nats"] - 1e-12).all()
    wider = lm.score(TEST, hdi_prob=0.99)
    assert (wider["log_prob_hdi_low_nats"] <= frame["log_prob_hdi_low_nats"]).all()
    assert (wider["log_prob_hdi_high_nats"] >= frame["log_prob_hdi_high_nats"]).all()


def test_score_streams_chunks_that_cut_sentences_in_any_order(lm, monkeypatch):
    """Per-draw sentence sums do not depend on how _log_prob_draws cuts or orders its chunks."""
    texts = TEST * 3
    mean, interval = brute_force_sentences(lm, texts, 0.94)
    stream = DirichletLM._log_prob_draws
    for chunk, backwards in ((3, False), (2, True), (1000, False)):
        def chunks(self, corpus, chunk=chunk, backwards=backwards):
            parts = list(stream(self, corpus, chunk=chunk))
            return iter(parts[::-1] if backwards else parts)

        monkeypatch.setattr(DirichletLM, "_log_prob_draws", chunks)
        frame = lm.score(texts)
        np.testing.assert_allclose(frame["log_prob_per_draw_mean_nats"], mean, rtol=1e-12)
        np.testing.assert_allclose(frame[["log_prob_hdi_low_nats", "log_prob_hdi_high_nats"]], interval, rtol=1e-12)


def test_score_entropy_split_is_the_mean_over_positions(lm):
    split = lm.entropy_split(TEST)
    frame = lm.score(TEST, units="bits")
    bounds = np.cumsum([0] + [len(s.split()) + 1 for s in TEST])
    for name, column in (("total", "mean_entropy_bits"), ("aleatoric", "mean_aleatoric_bits"),
                         ("epistemic", "mean_epistemic_bits")):
        expected = [split[name][a:b].mean() / math.log(2) for a, b in zip(bounds[:-1], bounds[1:])]
        np.testing.assert_allclose(frame[column], expected, rtol=1e-12)
    np.testing.assert_allclose(frame["mean_entropy_bits"], frame["mean_aleatoric_bits"] + frame["mean_epistemic_bits"],
                               rtol=1e-9)


def test_entropy_split_units(lm):
    nats, bits = lm.entropy_split(TEST), lm.entropy_split(TEST, units="bits")
    np.testing.assert_allclose(bits.to_numpy(), nats.to_numpy() / math.log(2), rtol=1e-15)
    with pytest.raises(ConfigError, match="units must be 'nats' or 'bits'"):
        lm.entropy_split(TEST, units="bit")


def test_per_token_table(lm):
    table = lm.per_token(TEST)
    n_pos = sum(len(s.split()) + 1 for s in TEST)
    assert len(table) == n_pos
    assert list(table.columns) == ["sentence", "index", "token", "oov", "log_prob_nats", "log10_prob",
                                   "entropy_nats", "aleatoric_nats", "epistemic_nats", "characters", "bytes"]
    expected_tokens = [w if w in lm.vocab_ else "<unk>" for s in TEST for w in s.split() + ["</s>"]]
    assert table["token"].tolist() == expected_tokens
    assert table["oov"].tolist() == [t == "<unk>" for t in expected_tokens]
    assert table["sentence"].tolist() == [i for i, s in enumerate(TEST) for _ in range(len(s.split()) + 1)]
    assert table["index"].tolist() == [j for s in TEST for j in range(len(s.split()) + 1)]
    np.testing.assert_allclose(table["log_prob_nats"], lm.predictive_log_prob(TEST), rtol=1e-12)
    split = lm.entropy_split(TEST)
    np.testing.assert_allclose(table["entropy_nats"], split["total"], rtol=1e-12)
    bits = lm.per_token(TEST, units="bits")
    np.testing.assert_allclose(bits["log_prob_bits"], table["log_prob_nats"] / math.log(2), rtol=1e-12)
    np.testing.assert_allclose(bits["entropy_bits"], split["total"] / math.log(2), rtol=1e-12)
    np.testing.assert_allclose(bits["aleatoric_bits"], split["aleatoric"] / math.log(2), rtol=1e-12)
    np.testing.assert_allclose(bits["epistemic_bits"], split["epistemic"] / math.log(2), rtol=1e-12)
    per_token_score = lm.score(TEST, per_token=True, units="bits")
    assert per_token_score.equals(bits)
    assert "entropy_nats" not in lm.per_token(TEST, entropies=False)


# ------------------------------------------------------------------- input errors
def test_not_fitted_errors():
    lm = DirichletLM(order=2)
    for call in (lambda: lm.evaluate(TEST), lambda: lm.predictive_log_prob(TEST), lambda: lm.score(TEST),
                 lambda: lm.save("never-written"), lambda: lm.vocabulary, lambda: lm.next_token_probs([[1]]),
                 lambda: lm.encode("a b")):
        with pytest.raises(NotFittedError, match="not fitted"):
            call()
    assert issubclass(NotFittedError, AttributeError) and issubclass(NotFittedError, ValueError)
    assert issubclass(NotFittedError, BayesLMError)
    assert not hasattr(lm, "vocabulary")  # an AttributeError, as scikit-learn users expect
    assert not Path("never-written").exists()
    assert "not fitted" in repr(lm)


def test_other_tokenizer_is_a_vocabulary_mismatch(lm):
    chars = Corpus.from_texts(TEST, tokenizer=CharTokenizer())
    with pytest.raises(VocabularyMismatchError, match=r"tokenised with CharTokenizer\(\) but the model uses WordTokenizer"):
        lm.evaluate(chars)
    with pytest.raises(VocabularyMismatchError, match=r"tokenised with CharTokenizer\(\) but the model uses WordTokenizer"):
        lm.predictive_log_prob(chars)
    fresh = DirichletLM(order=1)  # configured for words
    with pytest.raises(VocabularyMismatchError, match=r"training text was tokenised with CharTokenizer\(\), the model is configured for WordTokenizer"):
        fresh.fit(chars)
    assert not fresh.is_fitted_


def test_empty_corpus():
    with pytest.raises(CorpusError, match=r"no tokens \(all texts are empty\)"):
        Corpus.from_texts("")
    with pytest.raises(CorpusError, match=r"no tokens \(all texts are empty\)"):
        Corpus.from_texts(["", "   \n\t\n"])
    empty = Corpus(np.zeros(0, dtype=np.int32), np.zeros(1, dtype=np.int64), Vocabulary())
    with pytest.raises(CorpusError, match="empty"):
        DirichletLM(order=2, sampler_config=QUICK).fit(empty)
    with pytest.raises(ConfigError, match="Corpus"):
        DirichletLM(order=2).fit(["a list", "of strings"])


# ---------------------------------------------------------------------- save / load
def test_round_trip(lm, saved):
    assert sorted(p.name for p in saved.iterdir()) == ["arrays.npz", "manifest.json", "model.nc", "tokenizer.json",
                                                       "vocab.json"]
    for loaded in (bayeslm.load(saved), DirichletLM.load(saved), bayeslm.BayesianLM.load(saved)):
        assert type(loaded) is DirichletLM
        assert loaded.is_fitted_ and loaded.order == 2 and loaded.id == lm.id
        assert loaded.get_config() == lm.get_config()
        assert loaded.vocab_ == lm.vocab_
        np.testing.assert_array_equal(loaded.plugin_, lm.plugin_)
        assert loaded.idata["posterior"].equals(lm.idata["posterior"])
        np.testing.assert_array_equal(loaded.predictive_log_prob(TEST), lm.predictive_log_prob(TEST))
        np.testing.assert_array_equal(loaded.token_log_prob(TEST).values, lm.token_log_prob(TEST).values)
        np.testing.assert_array_equal(loaded.entropy_split(TEST).to_numpy(), lm.entropy_split(TEST).to_numpy())
        for k in (1, 2):
            np.testing.assert_array_equal(loaded.counts_[k].ngram_key, lm.counts_[k].ngram_key)
            np.testing.assert_array_equal(loaded.counts_[k].ngram_count, lm.counts_[k].ngram_count)


def test_model_nc_attrs(lm, saved):
    import arviz as az

    attrs = az.from_netcdf(saved / "model.nc")["posterior"].attrs
    assert attrs["model_type"] == "dirichlet"
    assert int(attrs["format_version"]) == FORMAT_VERSION
    assert attrs["id"] == lm.id and len(lm.id) == 16
    assert json.loads(attrs["config"]) == json.loads(json.dumps(lm.get_config()))
    assert json.loads(attrs["config"])["model"] == {"family": "dirichlet", "order": 2, "entropy_draws": 16, "spelling": 0,
                                                    "buckets": []}
    assert int(attrs["training_tokens"]) == sum(len(s.split()) for s in TRAIN)


def test_newer_format_version(saved, tmp_path):
    target = copy_of(saved, tmp_path)
    rewrite_attrs(target, format_version=FORMAT_VERSION + 1)
    with pytest.raises(DifferentModelError, match="newer"):
        bayeslm.load(target)


@pytest.mark.parametrize("changes, match", [
    ({"model_type": "transformer"}, "unknown model type"),
    ({"id": "0123456789abcdef"}, "id does not match"),
])
def test_other_model_or_altered_id(saved, tmp_path, changes, match):
    target = copy_of(saved, tmp_path)
    rewrite_attrs(target, **changes)
    with pytest.raises(DifferentModelError, match=match):
        bayeslm.load(target)


@pytest.mark.parametrize("drop, match", [
    ("model_type", r"model.nc: not written by bayeslm \(no model_type / format_version\)"),
    ("config", "model.nc: attribute 'config' is missing"),
], ids=["model_type", "config"])
def test_missing_attrs(saved, tmp_path, drop, match):
    target = copy_of(saved, tmp_path)
    rewrite_attrs(target, **{drop: None})
    with pytest.raises(ModelFileError, match=match):
        bayeslm.load(target)


def test_truncated_model_nc(saved, tmp_path):
    target = copy_of(saved, tmp_path)
    data = (target / "model.nc").read_bytes()
    (target / "model.nc").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="model.nc.*(corrupt|truncated)"):
        bayeslm.load(target)
    (target / "model.nc").write_bytes(b"not a netCDF file\n")
    with pytest.raises(ModelFileError, match="corrupt or truncated"):
        bayeslm.load(target)
    (target / "model.nc").unlink()
    with pytest.raises(ModelFileError, match="missing"):
        bayeslm.load(target)


def test_missing_or_corrupt_arrays(saved, tmp_path):
    target = copy_of(saved, tmp_path)
    (target / "arrays.npz").unlink()
    with pytest.raises(ModelFileError, match="n-gram counts"):
        bayeslm.load(target)
    data = (saved / "arrays.npz").read_bytes()
    (target / "arrays.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="arrays.npz"):
        bayeslm.load(target)
    np.savez(target / "arrays.npz", base_concentration=np.ones(2))  # counts missing
    with pytest.raises(ModelFileError, match="counts"):
        bayeslm.load(target)


def test_tampered_vocab(saved, tmp_path):
    target = copy_of(saved, tmp_path)
    vocab_path = target / "vocab.json"
    data = json.loads(vocab_path.read_text(encoding="utf-8"))
    # swapped tokens without a new fingerprint
    tokens = data["tokens"]
    tokens[3], tokens[4] = tokens[4], tokens[3]
    vocab_path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ModelFileError, match="fingerprint"):
        bayeslm.load(target)
    # a consistent vocabulary file of another model
    other = Vocabulary(tokens[3:])
    other.save(vocab_path)
    with pytest.raises(ModelFileError, match="vocab.json"):
        bayeslm.load(target)
    vocab_path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelFileError, match="vocab"):
        bayeslm.load(target)
    vocab_path.unlink()
    with pytest.raises(ModelFileError, match="vocab"):
        bayeslm.load(target)


def test_tampered_tokenizer(saved, tmp_path):
    target = copy_of(saved, tmp_path)
    (target / "tokenizer.json").write_text('{"kind": "sentencepiece"}', encoding="utf-8")
    with pytest.raises(ModelFileError, match="tokenizer.json: not a valid tokenizer"):
        bayeslm.load(target)
    (target / "tokenizer.json").write_text('{"kind": "char"}', encoding="utf-8")  # valid, not this model's
    with pytest.raises(ModelFileError, match="tokenizer.json: a 'char' tokenizer, but the model was configured"):
        bayeslm.load(target)
    (target / "tokenizer.json").unlink()
    with pytest.raises(ModelFileError, match="tokenizer.json: missing"):
        bayeslm.load(target)


def test_foreign_netcdf_and_non_directories(tmp_path):
    import arviz as az

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    az.from_dict(posterior={"x": np.zeros((1, 5))}).to_netcdf(foreign / "model.nc")
    with pytest.raises(ModelFileError, match="not written by bayeslm"):
        bayeslm.load(foreign)
    no_posterior = tmp_path / "no_posterior"
    no_posterior.mkdir()
    az.from_dict(observed_data={"y": np.zeros(3)}).to_netcdf(no_posterior / "model.nc")
    with pytest.raises(ModelFileError, match="posterior"):
        bayeslm.load(no_posterior)
    a_file = tmp_path / "model.txt"
    a_file.write_text("hello", encoding="utf-8")
    with pytest.raises(ModelFileError, match="not a model directory"):
        bayeslm.load(a_file)
    with pytest.raises(ModelFileError, match="not a model directory"):
        bayeslm.load(tmp_path / "does-not-exist")
    with pytest.raises(ModelFileError, match="missing"):
        bayeslm.load(tmp_path)  # a directory without model.nc


def test_save_over_existing_directory(lm, dirichlet_lm, tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "keep.txt").write_text("precious", encoding="utf-8")
    with pytest.raises(ConfigError, match="exists"):
        lm.save(target)
    with pytest.raises(ConfigError, match="not a bayeslm model directory .*keep.txt"):  # force: still not theirs
        lm.save(target, force=True)
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
    assert (target / "keep.txt").read_text(encoding="utf-8") == "precious"
    (target / "keep.txt").unlink()

    dirichlet_lm.save(target, force=True)  # an empty folder may be replaced (by the shared trigram)
    assert bayeslm.load(target).order == 3
    lm.save(target, force=True)  # and a model directory
    assert bayeslm.load(target).order == 2
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no temporary directories left


def test_failed_save_leaves_nothing(lm, tmp_path, monkeypatch):
    def broken():
        raise RuntimeError("disk full")

    monkeypatch.setattr(lm, "_family_arrays", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        lm.save(tmp_path / "model")
    assert list(tmp_path.iterdir()) == []
    # a failed forced save leaves the existing directory as it was
    monkeypatch.undo()
    lm.save(tmp_path / "model")
    before = {p.name: p.read_bytes() for p in (tmp_path / "model").iterdir()}
    monkeypatch.setattr(lm, "_family_arrays", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        lm.save(tmp_path / "model", force=True)
    assert {p.name: p.read_bytes() for p in (tmp_path / "model").iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


# --------------------------------------------------------------- bits per character
def test_bits_per_character_is_total_bits_over_the_characters_of_the_exact_text(lm):
    # these lines are lowercase and single-spaced: the word tokenizer's tokens spell them exactly
    lines = ["the cat sat on the log", "a zebra ran"]
    characters = sum(len(line) + 1 for line in lines)  # 22 + 1 and 11 + 1: each line and its newline
    assert characters == 35
    total_bits = -lm.predictive_log_prob(lines).sum() / math.log(2)
    ev = lm.evaluate(lines)
    assert (ev.characters, ev.bytes, ev.text) == (35, 35, "exact")
    assert ev.predictive_bits_per_character == pytest.approx(total_bits / 35, rel=1e-12)
    assert ev.predictive_bits_per_byte == pytest.approx(total_bits / 35, rel=1e-12)
    per_draw = -lm.token_log_prob(lines).sum("position") / math.log(2)
    np.testing.assert_allclose(ev.bits_per_character.values, per_draw.values / 35, rtol=1e-12)
    d = ev.to_dict()
    assert d["characters"] == 35 and d["text"] == "exact" and d["bits_per_character"]["mean"] > 0
    # "zebra" is <unk>: the closed vocabulary pays for <unk>, not for the spelling z-e-b-r-a
    assert ev.oov == 1 and ev.oov_priced is False and "spellings unpriced" in str(ev)
    assert lm.evaluate(lines[:1]).oov_priced is True


def test_bytes_count_utf8_and_the_sentence_table_divides_by_its_own_characters(lm):
    lines = ["the café sat", "a cat ran"]  # é: one character, two bytes
    frame = lm.score(lines, units="bits")
    assert frame["characters"].tolist() == [13, 10] and frame["bytes"].tolist() == [14, 10]
    np.testing.assert_allclose(frame["bits_per_character"], -frame["log_prob_bits"] / [13, 10], rtol=1e-12)
    np.testing.assert_allclose(frame["bits_per_byte"], -frame["log_prob_bits"] / [14, 10], rtol=1e-12)
    # per position: a token's characters with the space before it, the newline on </s>
    rows = lm.per_token(lines, entropies=False)
    assert rows["characters"].tolist() == [3, 5, 4, 1, 1, 4, 4, 1]
    assert rows["bytes"].tolist() == [3, 6, 4, 1, 1, 4, 4, 1]
    assert rows.groupby("sentence")["characters"].sum().tolist() == [13, 10]


def test_a_lowercasing_tokenizer_is_scored_on_its_normalised_text_and_says_so(lm):
    ev = lm.evaluate(["The Cat sat."])  # the word tokenizer reads "the cat sat ." (13 characters)
    assert ev.text == "lowercased (NFC), one space between tokens"
    assert ev.characters == len("the cat sat .") + 1  # counted on the text the model priced
    assert "normalised text: lowercased" in str(ev)
    assert lm.evaluate(["the cat sat ."]).text == "exact"


def test_a_character_model_prices_the_exact_text_one_position_per_character():
    train = Corpus.from_texts(["The Cat sat.", "A dog ran!"], tokenizer=CharTokenizer())
    model = DirichletLM(order=2, tokenizer="char", sampler_config={**QUICK, "random_seed": 3})
    model.fit(train)
    ev = model.evaluate(["The dog sat."])
    assert (ev.text, ev.characters, ev.positions) == ("exact", 13, 13)  # 12 characters and the newline
    assert ev.predictive_bits_per_character == pytest.approx(ev.predictive_cross_entropy_bits, rel=1e-12)
