"""Counting on Dask (bayeslm.distributed): the same arrays as counting in memory."""

from __future__ import annotations

import contextlib
import functools
import io
import sys

import corpora
import numpy as np
import pytest
from sampling import QUICK

pytest.importorskip("dask", reason="counting on Dask needs the dask extra: pip install 'bayeslm[dask]'")
distributed = pytest.importorskip("distributed", reason="counting on Dask needs the dask extra: pip install 'bayeslm[dask]'")

import bayeslm  # noqa: E402
from bayeslm.cli import main  # noqa: E402
from bayeslm.counting import distributed as bd  # noqa: E402
from bayeslm.counting.counts import NgramCounts, count  # noqa: E402
from bayeslm.exceptions import BayesLMError, ConfigError, CorpusError  # noqa: E402
from bayeslm.text.corpus import Corpus  # noqa: E402
from bayeslm.text.tokenize import WhitespaceTokenizer  # noqa: E402
from bayeslm.text.vocab import Vocabulary  # noqa: E402

VOCAB = Vocabulary([f"w{i}" for i in range(12)])  # 15 tokens with the specials
WORDS = ["the", "cat", "sat", "on", "mat", "dog", "ran", "a", "é", "naïve", "don't", "42", "!", ",", "<s>", "</s>",
         "<unk>", "zebra", "Ω"]


random_corpus = functools.partial(corpora.random_corpus, vocab=VOCAB, n_sentences=300)


def random_lines(seed, n_lines):
    """Text lines of random words (Zipf-ish), with blank and white-space-only lines."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, len(WORDS) + 1)
    lines = []
    for _ in range(n_lines):
        r = rng.random()
        if r < 0.05:
            lines.append("")
        elif r < 0.08:
            lines.append("   \t ")
        else:
            lines.append(" ".join(rng.choice(WORDS, size=rng.integers(1, 14), p=p / p.sum())))
    return lines


def assert_same(a: NgramCounts, b: NgramCounts):
    """Every array of every order equal, with the same dtype."""
    A, B = a.to_arrays(), b.to_arrays()
    assert sorted(A) == sorted(B)
    for name in A:
        assert A[name].dtype == B[name].dtype, name
        np.testing.assert_array_equal(A[name], B[name], err_msg=name)


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as c:
            yield c


@pytest.fixture(scope="module")
def text_dir(tmp_path_factory):
    """Three files: LF, CRLF with trailing blank lines, and a large one cut into many blocks."""
    root = tmp_path_factory.mktemp("dask-text")
    (root / "a.txt").write_text("\n".join(random_lines(1, 150)) + "\n", encoding="utf-8")
    (root / "b.txt").write_bytes(("\r\n".join(random_lines(2, 120)) + "\r\n\r\n  \r\n").encode("utf-8"))
    (root / "c.txt").write_text("\n".join(random_lines(3, 900)), encoding="utf-8")  # no final newline
    return root


# -- in-memory corpus -------------------------------------------------------------------
@pytest.mark.parametrize("order", [1, 2, 3, 4])
@pytest.mark.parametrize("n_partitions, n_ranges", [(1, 1), (3, 2), (7, 40)])
def test_count_with_client_equals_count_in_memory(client, order, n_partitions, n_ranges):
    corpus = random_corpus(10 * order + n_partitions)
    expected = count(corpus, order)
    got = bd.count_corpus(corpus, order, client, n_partitions=n_partitions, n_ranges=n_ranges)
    assert_same(expected, got)
    assert got.n_events == corpus.n_tokens + corpus.n_sentences


def test_count_dispatches_to_dask(client):
    corpus = random_corpus(99, n_sentences=500)
    assert_same(count(corpus, 3), count(corpus, 3, client=client))


def test_demo_corpus_slice(client):
    """Real text, a few thousand types: counts, continuation counts and count-of-counts agree."""
    corpus = bayeslm.demo_corpus().select(np.arange(1500))
    expected, got = count(corpus, 3), count(corpus, 3, client=client)
    assert_same(expected, got)
    for k in (1, 2, 3):
        np.testing.assert_array_equal(expected[k].count_of_counts(), got[k].count_of_counts())


# -- text files -------------------------------------------------------------------------
@pytest.mark.parametrize("order, blocksize, min_count, max_size", [(1, 10**6, 1, None), (3, 700, 1, None),
                                                                   (3, 1500, 2, None), (4, 333, 1, 9)])
def test_count_files_equals_from_paths(client, text_dir, order, blocksize, min_count, max_size):
    corpus = Corpus.from_paths(text_dir)
    vocab = Vocabulary.build(corpus.type_counts(), min_count, max_size)
    expected = count(corpus.with_vocabulary(vocab), order)
    got = bd.count_files(text_dir, order, client, min_count=min_count, max_size=max_size, blocksize=blocksize)
    assert got.vocab == vocab
    assert_same(expected, got.counts)
    assert (got.n_tokens, got.n_sentences) == (corpus.n_tokens, corpus.n_sentences)
    assert got.longest_sentence == int(corpus.sentence_lengths.max())
    assert got.n_partitions > (3 if blocksize < 2000 else 2)  # the large file was cut into blocks
    for k in range(1, order + 1):  # computed after the merge, per range, and summed
        np.testing.assert_array_equal(got.count_of_counts[k], expected[k].count_of_counts())
    assert got.sample.vocab == vocab and got.sample.n_sentences <= bd.SAMPLE_SENTENCES + 1
    assert int(got.sample.sentence_lengths.max()) == got.longest_sentence


def test_count_files_other_tokenizer(client, text_dir):
    tok = WhitespaceTokenizer()
    corpus = Corpus.from_paths(text_dir, tokenizer=tok)
    got = bd.count_files(text_dir, 2, client, tokenizer=tok, blocksize=900)
    assert got.vocab == corpus.vocab
    assert_same(count(corpus, 2), got.counts)


def test_count_files_streams_to_npz(client, text_dir, tmp_path):
    out = tmp_path / "counts.npz"
    got = bd.count_files(text_dir, 3, client, out=out, blocksize=800)
    assert got.counts is None and got.path == out
    corpus = Corpus.from_paths(text_dir)
    assert_same(count(corpus, 3), NgramCounts.load(out))
    assert not list(tmp_path.glob(".counts.npz.*"))  # the temporary file was renamed


@pytest.mark.parametrize("blocksize", [1, 5, 64, 10**6])
def test_blocks_cover_every_line_once(tmp_path, blocksize):
    data = "\n".join(random_lines(5, 40)).encode("utf-8") + b"\n\nlast line without newline"
    path = tmp_path / "t.txt"
    path.write_bytes(data)
    blocks = bd._blocks([path], blocksize)
    pieces = [bd._read_block(str(p), off, length) for p, off, length in blocks]
    assert b"".join(d for d, _ in pieces) == data
    for (_, off, length), (d, start) in zip(blocks, pieces):
        if d:  # a block that holds lines starts at a line start inside its byte range
            assert start == 0 or data[start - 1 : start] == b"\n"
            assert off <= start < off + length


def test_build_vocabulary_is_vocabulary_build():
    rng = np.random.default_rng(4)
    types = np.array(sorted({"".join(rng.choice(list("abÅé<>/s"), rng.integers(1, 5))) for _ in range(3000)})
                     + ["<s>", "</s>", "<unk>"], dtype=object)
    rng.shuffle(types)
    counts = rng.integers(1, 6, size=types.size)  # many ties: broken by the strings
    for min_count, max_size in [(1, None), (2, None), (1, 100), (4, 10)]:
        expected = Vocabulary.build(dict(zip(types.tolist(), counts.tolist())), min_count, max_size)
        assert bd.build_vocabulary(types, counts, min_count, max_size) == expected


# -- errors -----------------------------------------------------------------------------
def test_errors(client, tmp_path):
    (tmp_path / "empty.txt").write_text("\n  \n", encoding="utf-8")
    with pytest.raises(CorpusError, match="empty.txt: file is empty"):
        bd.count_files(tmp_path / "empty.txt", 2, client)
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine line\nsecond \xff line\n")
    with pytest.raises(CorpusError, match=r"bad.txt: invalid UTF-8 at byte offset 17"):
        bd.count_files(bad, 2, client, blocksize=4)
    with pytest.raises(CorpusError, match="no such file"):
        bd.count_files(tmp_path / "missing.txt", 2, client)
    with pytest.raises(ConfigError, match="63-bit"):
        count(random_corpus(1, vocab=Vocabulary([f"w{i}" for i in range(70000)])), 4, client=client)
    with pytest.raises(ConfigError, match="distributed.Client"):
        count(random_corpus(1), 2, client="not a client")


def test_missing_dask_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(BayesLMError, match=r"pip install 'bayeslm\[dask\]'") as err:
        count(random_corpus(1), 2, client=object())
    assert "\n" not in str(err.value)
    with pytest.raises(SystemExit) as exc, contextlib.redirect_stderr(io.StringIO()) as stderr:
        main(["fit", "dirichlet-bigram", "--train", "x.txt", "--out", "never", "--dask"])
    assert exc.value.code == 2
    assert stderr.getvalue().count("\n") == 1 and "pip install 'bayeslm[dask]'" in stderr.getvalue()


# -- fitting ----------------------------------------------------------------------------


def test_fit_from_files_on_dask_matches_fit_in_memory(client, text_dir):
    def model():
        return bayeslm.PitmanYorLM(order=3, inference="ikn", discount=0.6, strength=0.5, min_count=2,
                                   sampler_config={**QUICK, "random_seed": 3})

    local, remote = model(), model()
    local.fit(Corpus.from_paths(text_dir))
    remote.fit(text_dir, client=client)
    assert remote.vocab_ == local.vocab_
    assert_same(local.counts_, remote.counts_)
    attrs_l, attrs_r = local.idata["posterior"].attrs, remote.idata["posterior"].attrs
    assert attrs_r["training_tokens"] == attrs_l["training_tokens"]
    assert attrs_r["training_sentences"] == attrs_l["training_sentences"]
    assert attrs_r["data_fingerprint"] == attrs_l["data_fingerprint"]  # the same data, counted elsewhere
    test = Corpus.from_lines(["the cat sat on the mat", "a dog ran"])
    np.testing.assert_allclose(remote.predictive_log_prob(test), local.predictive_log_prob(test))


def test_fit_refuses_client_for_families_without_counts(client):
    with pytest.raises(ConfigError, match="cannot count on Dask"):
        bayeslm.GPTLM(block_size=8, n_layer=1, n_embd=8, n_head=2).fit(random_corpus(1), client=client)


def test_cli_fit_on_a_scheduler(client, text_dir, tmp_path):
    config = tmp_path / "tiny.toml"
    config.write_text('[model]\nfamily = "pitman-yor"\norder = 2\ninference = "ikn"\ndiscount = 0.5\nstrength = 1.0\n'
                      "[tokenizer]\nmin_count = 2\n[sampler]\ndraws = 10\ntune = 5\nchains = 1\n", encoding="utf-8")
    out = tmp_path / "model"
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["fit", str(config), "--train", str(text_dir / "a.txt"), str(text_dir / "c.txt"), "--out", str(out),
                     "--scheduler", client.scheduler.address, "--quiet", "--seed", "1"])
    assert code == 0
    corpus = Corpus.from_paths([text_dir / "a.txt", text_dir / "c.txt"])
    model = bayeslm.load(out)
    assert model.vocab_ == Vocabulary.build(corpus.type_counts(), 2)
    assert_same(model.counts_, count(corpus.with_vocabulary(model.vocab_), 2))
    assert f"on {corpus.n_tokens} tokens" in buffer.getvalue()


def test_progress_display(client, text_dir, capsys):
    bd.count_files(text_dir, 2, client, blocksize=2000, progress=True)
    shown = capsys.readouterr().out
    for stage in ("tokenising", "counting", "merging"):
        assert stage in shown
    assert "100% Completed" in shown
