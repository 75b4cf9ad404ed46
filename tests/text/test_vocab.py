import json
from collections import Counter

import numpy as np
import pytest

from bayeslm.exceptions import ConfigError, ModelFileError
from bayeslm.text.vocab import BOS, EOS, UNK, Vocabulary


def expected_order(counts, min_count=1, max_size=None):
    """Regular tokens as the specification orders them: count desc, then alphabetical."""
    kept = sorted((t for t, c in counts.items() if c >= min_count and t not in (UNK, BOS, EOS)),
                  key=lambda t: (-counts[t], t))
    if max_size is not None:
        kept = kept[: max_size - 3]
    return kept


def random_counts(seed, n=40):
    rng = np.random.default_rng(seed)
    letters = list("abcdefghij")
    words = {"".join(rng.choice(letters, size=int(rng.integers(1, 4)))) for _ in range(n)}
    # small counts so that ties are frequent
    return {w: int(rng.integers(1, 5)) for w in sorted(words)}


def test_specials_first():
    v = Vocabulary(["b", "a"])
    assert v.tokens[:3] == [UNK, BOS, EOS]
    assert (v.unk_id, v.bos_id, v.eos_id) == (0, 1, 2)
    assert v.id(UNK) == 0 and v.id(BOS) == 1 and v.id(EOS) == 2
    assert v.tokens[3:] == ["b", "a"]
    assert len(v) == 5
    # specials passed as regular tokens are not repeated
    assert Vocabulary([EOS, "x", UNK]).tokens == [UNK, BOS, EOS, "x"]


def test_duplicate_tokens_rejected():
    with pytest.raises(ConfigError, match="cannot list the same token twice"):
        Vocabulary(["a", "b", "a"])


@pytest.mark.parametrize("seed", range(4))
def test_build_orders_by_count_then_alphabet(seed):
    counts = random_counts(seed)
    v = Vocabulary.build(counts)
    assert v.tokens == [UNK, BOS, EOS] + expected_order(counts)
    regular = v.tokens[3:]
    for a, b in zip(regular, regular[1:]):
        assert counts[a] > counts[b] or (counts[a] == counts[b] and a < b)


def test_build_is_independent_of_insertion_order():
    counts = random_counts(7)
    reversed_counts = dict(reversed(list(counts.items())))
    assert Vocabulary.build(counts) == Vocabulary.build(reversed_counts)
    assert Vocabulary.build(counts).fingerprint == Vocabulary.build(reversed_counts).fingerprint


def test_build_ties_example():
    counts = Counter("the cat the dog a cat a bird the".split())
    v = Vocabulary.build(counts)
    assert v.tokens[3:] == ["the", "a", "cat", "bird", "dog"]


@pytest.mark.parametrize("min_count", [1, 2, 3, 4])
def test_min_count(min_count):
    counts = random_counts(3)
    v = Vocabulary.build(counts, min_count=min_count)
    assert set(v.tokens[3:]) == {t for t, c in counts.items() if c >= min_count}
    assert v.tokens[3:] == expected_order(counts, min_count)


@pytest.mark.parametrize("max_size", [4, 5, 10, 1000])
def test_max_size(max_size):
    counts = random_counts(5)
    v = Vocabulary.build(counts, max_size=max_size)
    assert len(v) == min(max_size, len(counts) + 3)
    assert v.tokens[3:] == expected_order(counts, 1, max_size)


def test_build_ignores_special_counts():
    v = Vocabulary.build({UNK: 100, BOS: 50, EOS: 50, "x": 1})
    assert v.tokens == [UNK, BOS, EOS, "x"]


def test_build_bad_limits():
    with pytest.raises(ConfigError, match="tokenizer.min_count must be at least 1, got 0"):
        Vocabulary.build({"a": 1}, min_count=0)
    with pytest.raises(ConfigError, match="tokenizer.max_size must be at least 4, got 3"):
        Vocabulary.build({"a": 1}, max_size=3)


def test_encode_decode():
    v = Vocabulary(["the", "cat", "sat"])
    ids = v.encode(["the", "dog", "cat", BOS, EOS, UNK, "sat"])
    assert ids.dtype == np.int32
    assert ids.tolist() == [3, 0, 4, 0, 0, 0, 5]
    assert v.decode(ids) == ["the", UNK, "cat", UNK, UNK, UNK, "sat"]
    assert v.encode([]).tolist() == []
    assert v.id("dog") == v.unk_id
    assert "cat" in v and "dog" not in v


def test_remap_from():
    a = Vocabulary(["x", "y", "z"])
    b = Vocabulary(["z", "w", "x"])
    m = b.remap_from(a)
    for i, tok in enumerate(a.tokens):
        assert b.tokens[m[i]] == (tok if tok in b else UNK)


def test_equality_and_fingerprint():
    a, b, c = Vocabulary(["x", "y"]), Vocabulary(["x", "y"]), Vocabulary(["y", "x"])
    assert a == b and hash(a) == hash(b) and a.fingerprint == b.fingerprint
    assert a != c and a.fingerprint != c.fingerprint


def test_save_load_round_trip(tmp_path):
    v = Vocabulary.build(Counter("ein café und noch ein café bitte".split()))
    path = tmp_path / "vocab.json"
    v.save(path)
    loaded = Vocabulary.load(path)
    assert loaded == v
    assert loaded.tokens == v.tokens
    assert loaded.index == {t: i for i, t in enumerate(v.tokens)}
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["tokens"] == v.tokens
    # no temporary files left behind
    assert [p.name for p in tmp_path.iterdir()] == ["vocab.json"]


def _tamper(tmp_path, change):
    v = Vocabulary(["alpha", "beta", "gamma"])
    path = tmp_path / "vocab.json"
    v.save(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda d: d["tokens"].__setitem__(3, "ALPHA"), r"fingerprint does not match its tokens \(file altered\?\)"),
        (lambda d: d["tokens"].append("delta"), r"fingerprint does not match its tokens \(file altered\?\)"),
        (lambda d: d["tokens"].reverse(), "tokens must be a list starting with <unk>, <s>, </s>"),  # specials not in front
        (lambda d: d["tokens"].append("beta"), "invalid vocabulary file: a vocabulary cannot list the same token twice"),
        (lambda d: d["tokens"].append(5), "tokens must all be strings"),
        (lambda d: d.__setitem__("tokens", "alpha beta"), "tokens must be a list starting with <unk>"),
        (lambda d: d.__setitem__("format", "something-else"), r"not a bayeslm vocabulary \(missing or wrong 'format'\)"),
        (lambda d: d.pop("format"), r"not a bayeslm vocabulary \(missing or wrong 'format'\)"),
    ],
    ids=["changed", "added", "reordered", "duplicate", "non-string", "not-list", "wrong-format", "no-format"],
)
def test_tampered_file_raises(tmp_path, change, match):
    path = _tamper(tmp_path, change)
    with pytest.raises(ModelFileError, match=match):
        Vocabulary.load(path)


def test_invalid_json_raises(tmp_path):
    path = tmp_path / "vocab.json"
    Vocabulary(["a"]).save(path)
    path.write_text(path.read_text(encoding="utf-8")[:-5], encoding="utf-8")
    with pytest.raises(ModelFileError, match="corrupt"):
        Vocabulary.load(path)
    path.write_bytes(b"\xff\xfe{}")
    with pytest.raises(ModelFileError, match=r"vocab.json: corrupt vocabulary file \('utf-8' codec can't decode"):
        Vocabulary.load(path)
    path.write_text("[1, 2, 3]", encoding="utf-8")
    with pytest.raises(ModelFileError, match="format"):
        Vocabulary.load(path)


def test_missing_file_raises(tmp_path):
    with pytest.raises(ModelFileError, match="no vocabulary"):
        Vocabulary.load(tmp_path / "absent.json")
