import functools
from collections import Counter, defaultdict

import corpora
import numpy as np
import pytest

from bayeslm.counting.counts import NgramCounts, count
from bayeslm.counting.ngram_counts import OrderCounts
from bayeslm.exceptions import CorpusError, ModelFileError
from bayeslm.text.corpus import Corpus
from bayeslm.text.tokenize import WhitespaceTokenizer
from bayeslm.text.vocab import Vocabulary

MAX_ORDER = 4
VOCAB = Vocabulary([f"w{i}" for i in range(12)])  # 15 tokens with the specials


random_corpus = functools.partial(corpora.random_corpus, vocab=VOCAB, n_sentences=200)


def naive_counts(corpus, order):
    """Counter of n-gram tuples for every k = 1..order, padded with order - 1 <s>."""
    bos, eos = corpus.vocab.bos_id, corpus.vocab.eos_id
    grams = {k: Counter() for k in range(1, order + 1)}
    for i in range(len(corpus)):
        padded = [bos] * (order - 1) + [int(t) for t in corpus[i]] + [eos]
        for t in range(order - 1, len(padded)):
            for k in range(1, order + 1):
                grams[k][tuple(padded[t - k + 1 : t + 1])] += 1
    return grams


def as_dict(counts, k):
    """The counts of order k as {(tokens...): count} via the public accessors."""
    rows = counts.ngram_tokens(k)
    assert rows.shape == (counts[k].n_ngrams, k)
    return {tuple(int(x) for x in row): int(c) for row, c in zip(rows, counts[k].ngram_count)}


def context_matrix(contexts, width, filler=3):
    """Rows of order - 1 tokens whose last len(u) columns are the context u."""
    m = np.full((len(contexts), width), filler, dtype=np.int64)
    for r, u in enumerate(contexts):
        if u:
            m[r, width - len(u) :] = u
    return m


@pytest.fixture(scope="module")
def corpus():
    return random_corpus(0)


@pytest.fixture(scope="module")
def naive(corpus):
    return naive_counts(corpus, MAX_ORDER)


@pytest.fixture(scope="module")
def counted(corpus):
    return {n: count(corpus, n) for n in range(1, MAX_ORDER + 1)}


def test_random_corpus_is_interesting(corpus):
    assert 0 in corpus.sentence_lengths  # empty sentences occur
    assert np.any(corpus.ids == VOCAB.unk_id)
    assert len(corpus.vocab) == 15


@pytest.mark.parametrize("n", range(1, MAX_ORDER + 1))
def test_ngram_counts_match_naive(corpus, counted, n):
    naive = naive_counts(corpus, n)
    c = counted[n]
    assert c.order == n and c.vocab_size == 15
    assert c.n_events == corpus.n_tokens + corpus.n_sentences
    for k in range(1, n + 1):
        assert as_dict(c, k) == dict(naive[k])
        assert int(c[k].ngram_count.sum()) == sum(naive[k].values())
        # sorted by (context, token), no duplicates
        assert np.all(np.diff(c[k].ngram_key) > 0)


@pytest.mark.parametrize("n", range(1, MAX_ORDER + 1))
def test_lower_orders_do_not_depend_on_highest_order(counted, n):
    top = counted[MAX_ORDER]
    for k in range(1, n + 1):
        assert np.array_equal(counted[n][k].ngram_key, top[k].ngram_key)
        assert np.array_equal(counted[n][k].ngram_count, top[k].ngram_count)
        assert np.array_equal(counted[n][k].context_key, top[k].context_key)


@pytest.mark.parametrize("k", range(1, MAX_ORDER + 1))
def test_context_statistics_match_naive(counted, naive, k):
    c = counted[MAX_ORDER]
    oc = c[k]
    total, types = defaultdict(int), defaultdict(int)
    for gram, cnt in naive[k].items():
        total[gram[:-1]] += cnt
        types[gram[:-1]] += 1
    ctx_tokens = c.context_tokens(k)
    assert ctx_tokens.shape == (oc.n_contexts, k - 1)
    got_contexts = [tuple(int(x) for x in row) for row in ctx_tokens]
    assert sorted(got_contexts) == sorted(total)
    for cid, u in enumerate(got_contexts):
        assert oc.context_total[cid] == total[u]
        assert oc.context_types[cid] == types[u]
        # CSR run of this context holds exactly its n-grams
        run = slice(oc.context_start[cid], oc.context_start[cid + 1])
        assert np.all(oc.ngram_context[run] == cid)
        assert {int(w) for w in oc.ngram_token[run]} == {g[-1] for g in naive[k] if g[:-1] == u}


@pytest.mark.parametrize("k", range(1, MAX_ORDER + 1))
def test_count_of_counts_match_naive(counted, naive, k):
    coc = counted[MAX_ORDER][k].count_of_counts()
    expected = Counter(naive[k].values())
    assert coc[0] == 0
    assert len(coc) == max(expected) + 1
    for c in range(1, len(coc)):
        assert coc[c] == expected.get(c, 0)


@pytest.mark.parametrize("k", range(1, MAX_ORDER))
def test_continuation_counts_match_naive(counted, naive, k):
    c = counted[MAX_ORDER]
    left = defaultdict(set)
    for gram in naive[k + 1]:
        left[gram[1:]].add(gram[0])
    got = {
        tuple(int(x) for x in row): int(v) for row, v in zip(c.ngram_tokens(k), c[k].continuation)
    }
    assert set(got) == set(naive[k])
    for gram in naive[k]:
        assert got[gram] == len(left[gram]), gram
    # padding <s> counts as a left context: (<s> ... , w) grams have the single extension <s>
    bos = VOCAB.bos_id
    if k >= 2:
        for gram, value in got.items():
            if gram[0] == bos:
                assert value == 1


def test_highest_order_has_no_continuation(counted):
    for n, c in counted.items():
        assert c[n].continuation is None
        for k in range(1, n):
            assert c[k].continuation is not None


def test_context_ids_lookup(counted, naive):
    c = counted[MAX_ORDER]
    width = MAX_ORDER - 1
    for k in range(1, MAX_ORDER + 1):
        grams = list(naive[k])
        contexts = [g[:-1] for g in grams]
        ids = c.context_ids(context_matrix(contexts, width))
        assert len(ids) == MAX_ORDER
        cid = ids[k - 1]
        assert np.all(cid >= 0)
        # the id names the right context
        ctx_tokens = c.context_tokens(k)
        for u, i in zip(contexts, cid):
            assert tuple(int(x) for x in ctx_tokens[i]) == u
        # and counts_of finds the counts of every seen n-gram
        tokens = np.array([g[-1] for g in grams])
        assert c[k].counts_of(cid, tokens).tolist() == [naive[k][g] for g in grams]


def test_context_ids_unseen_and_counts_of_unseen(counted, naive):
    c = counted[MAX_ORDER]
    width = MAX_ORDER - 1
    rng = np.random.default_rng(5)
    seen = {k: {g[:-1] for g in naive[k]} for k in range(1, MAX_ORDER + 1)}
    rows = rng.integers(0, 15, size=(400, width))
    rows[:10, -1] = VOCAB.eos_id  # </s> is never a context
    ids = c.context_ids(rows)
    n_unseen = 0
    for k in range(2, MAX_ORDER + 1):
        for row, i in zip(rows, ids[k - 1]):
            u = tuple(int(x) for x in row[width - (k - 1) :])
            if u in seen[k]:
                assert i >= 0 and tuple(int(x) for x in c.context_tokens(k)[i]) == u
            else:
                assert i == -1
                n_unseen += 1
    assert n_unseen > 0
    assert np.all(ids[0] == 0)  # the empty context of order 1
    # counts_of: 0 for unseen pairs, and for unseen (-1) contexts
    for k in range(1, MAX_ORDER + 1):
        tokens = rng.integers(0, 15, size=rows.shape[0])
        got = c[k].counts_of(ids[k - 1], tokens)
        for row, tok, value in zip(rows, tokens, got):
            gram = tuple(int(x) for x in row[width - (k - 1) :]) + (int(tok),)
            assert value == naive[k].get(gram, 0)
        assert np.all(c[k].counts_of(np.full(5, -1), np.arange(5)) == 0)
        assert np.all(c[k].lookup(np.full(5, -1), np.arange(5)) == -1)


def _assert_same(a, b):
    assert a.order == b.order and a.vocab_size == b.vocab_size
    for oa, ob in zip(a.orders, b.orders):
        assert np.array_equal(oa.context_key, ob.context_key)
        assert np.array_equal(oa.ngram_key, ob.ngram_key)
        assert np.array_equal(oa.ngram_count, ob.ngram_count)
        if oa.continuation is None:
            assert ob.continuation is None
        else:
            assert np.array_equal(oa.continuation, ob.continuation)


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_merge_equals_count_of_concatenation(n):
    a, b = random_corpus(1, n_sentences=60), random_corpus(2, n_sentences=45, max_len=7)
    merged = count(a, n).merge(count(b, n))
    _assert_same(merged, count(a.concat(b), n))
    # and against the naive count of both corpora
    na, nb = naive_counts(a, n), naive_counts(b, n)
    for k in range(1, n + 1):
        assert as_dict(merged, k) == dict(na[k] + nb[k])


def test_merge_rejects_mismatch(corpus):
    with pytest.raises(CorpusError, match="cannot merge counts of order 3 / vocabulary 15 into order 2 / vocabulary 15"):
        count(corpus, 2).merge(count(corpus, 3))
    other_vocab = Vocabulary([f"w{i}" for i in range(13)])
    with pytest.raises(CorpusError, match="cannot merge counts of order 2 / vocabulary 16 into order 2 / vocabulary 15"):
        count(corpus, 2).merge(count(random_corpus(1, vocab=other_vocab), 2))


def test_save_load_round_trip(tmp_path, counted):
    c = counted[3]
    path = tmp_path / "counts.npz"
    c.save(path)
    with np.load(path, allow_pickle=False) as data:
        assert int(data["order"]) == 3 and int(data["vocab_size"]) == 15
    loaded = NgramCounts.load(path)
    _assert_same(loaded, c)
    for k in range(1, 4):
        assert np.array_equal(loaded[k].context_total, c[k].context_total)
        assert np.array_equal(loaded.context_tokens(k), c.context_tokens(k))


def test_load_corrupt_files(tmp_path, counted):
    path = tmp_path / "counts.npz"
    counted[3].save(path)
    good = path.read_bytes()

    path.write_bytes(good[: len(good) // 2])  # truncated
    with pytest.raises(ModelFileError, match=r"counts.npz: corrupt counts file \(File is not a zip file\)"):
        NgramCounts.load(path)

    path.write_bytes(b"this is not an npz file at all")
    with pytest.raises(ModelFileError, match=r"counts.npz: corrupt counts file \(.*pickled"):
        NgramCounts.load(path)

    path.write_bytes(b"")
    with pytest.raises(ModelFileError, match=r"counts.npz: corrupt counts file \(No data left in file\)"):
        NgramCounts.load(path)

    with pytest.raises(ModelFileError, match="no counts file"):
        NgramCounts.load(tmp_path / "absent.npz")

    # a valid npz missing arrays, or with inconsistent ones
    arrays = counted[3].to_arrays()
    del arrays["o2_ngram_count"]
    np.savez(path, **arrays)
    with pytest.raises(ModelFileError, match="corrupt"):
        NgramCounts.load(path)
    arrays = counted[3].to_arrays()
    arrays["o2_ngram_key"] = arrays["o2_ngram_key"][::-1].copy()
    np.savez(path, **arrays)
    with pytest.raises(ModelFileError, match="corrupt"):
        NgramCounts.load(path)


def test_corrupt_member_data(tmp_path, counted):
    """Damaged compressed bytes inside an intact zip directory are also a ModelFileError."""
    path = tmp_path / "counts.npz"
    counted[3].save(path)
    data = bytearray(path.read_bytes())
    start = data.index(b"o1_ngram_key.npy") + len("o1_ngram_key.npy") + 20
    for i in range(start, start + 40):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=r"counts.npz: corrupt counts file \(Error -3 while decompressing"):
        NgramCounts.load(path)


def test_bad_order_and_empty_corpus(corpus):
    for order in (0, -1):
        with pytest.raises(CorpusError, match="order"):
            count(corpus, order)
    empty = Corpus(np.zeros(0, np.int32), [0, 0, 0], VOCAB)
    with pytest.raises(CorpusError, match="empty"):
        count(empty, 2)


def test_getitem_bounds(counted):
    with pytest.raises(IndexError, match=r"order 3 not in 1\.\.2"):
        counted[2][3]
    with pytest.raises(IndexError, match=r"order 0 not in 1\.\.2"):
        counted[2][0]


def test_small_example_by_hand():
    """A corpus small enough to check against an explicit count."""
    c = Corpus.from_texts("a b\na")
    a, b = c.vocab.id("a"), c.vocab.id("b")
    s, e = c.vocab.bos_id, c.vocab.eos_id
    counts = count(c, 2)
    assert as_dict(counts, 1) == {(a,): 2, (b,): 1, (e,): 2}
    assert as_dict(counts, 2) == {(s, a): 2, (a, b): 1, (b, e): 1, (a, e): 1}
    cont = {tuple(int(x) for x in r): int(v) for r, v in zip(counts.ngram_tokens(1), counts[1].continuation)}
    assert cont == {(a,): 1, (b,): 1, (e,): 2}


def test_unpackable_orders_fall_back_to_hierarchical_sorting(monkeypatch):
    """Orders whose packed keys would overflow int64 take the two-sort path: same counts."""
    import bayeslm.counting.counts as counts_module

    rng = np.random.default_rng(5)
    lines = [" ".join(f"t{int(x)}" for x in rng.integers(0, 12, rng.integers(1, 9))) for _ in range(150)]
    corpus = Corpus.from_texts(lines, tokenizer=WhitespaceTokenizer())
    packed = counts_module.count(corpus, 4)
    monkeypatch.setattr(counts_module, "_PACK_BITS", 0)
    fallback = counts_module.count(corpus, 4)
    for k in range(1, 5):
        for name in ("context_key", "ngram_key", "ngram_count"):
            np.testing.assert_array_equal(getattr(packed[k], name), getattr(fallback[k], name))
        if k < 4:
            np.testing.assert_array_equal(packed[k].continuation, fallback[k].continuation)


@pytest.mark.parametrize("bound", [50, 2**60])
def test_sort_with_packed_index_is_a_stable_argsort(bound):
    """Both paths of ``_argsort_with_keys`` (index packed in the low bits, or argsort) agree
    with numpy's stable argsort, ties included."""
    from bayeslm.counting.counts import _argsort_with_keys

    key = np.random.default_rng(1).integers(0, min(bound, 50), 5000).astype(np.int64) * (bound // 50)
    perm, sorted_key = _argsort_with_keys(key, bound)
    np.testing.assert_array_equal(perm, np.argsort(key, kind="stable"))
    np.testing.assert_array_equal(sorted_key, np.sort(key))


@pytest.mark.parametrize("spread", [1, 997], ids=["dense-table", "hash-table"])
def test_key_lookups_find_every_stored_key_and_nothing_else(spread):
    """Keys filling a small range are read from a dense table, others from a hash table: either
    finds each stored key's index and -1 for any other query (negative, between keys, past the end)."""
    rng = np.random.default_rng(3)
    V = 7
    keys = np.unique(rng.integers(0, 300, 200)) * spread
    order = OrderCounts(order=2, vocab_size=V, context_key=np.arange(int(keys[-1]) // V + 1),
                        ngram_key=keys, ngram_count=np.ones(keys.size, dtype=np.int64))
    queries = np.concatenate([keys, rng.integers(-50, int(keys[-1]) + 50, 500), [-1, keys[-1] + 1, 10**12]])
    expected = [int(np.flatnonzero(keys == q)[0]) if q in set(keys.tolist()) else -1 for q in queries.tolist()]
    assert order.index_of_ngram(queries).tolist() == expected
    contexts, tokens = np.divmod(queries, V)
    contexts[queries < 0] = -1
    assert order.lookup(contexts, tokens).tolist() == expected
