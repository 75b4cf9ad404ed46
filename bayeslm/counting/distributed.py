"""Counting n-grams on a Dask cluster: partitions counted on the workers, merged exactly.

Needs the ``dask`` extra (``pip install 'bayeslm[dask]'``). The result equals
:func:`bayeslm.count` in memory, array for array; only the counting is spread out, and
posterior inference then runs on the merged counts. The stages (tokenise, vocabulary, count,
merge by ranges of the newest context token, assemble) are described in docs/dask.md.
"""

from __future__ import annotations

import math
import os
import tempfile
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

import numpy as np

from bayeslm.counting.keys import newest_context_token, packed_keys, run_starts, without_oldest_context_token
from bayeslm.counting.ngram_counts import NgramCounts
from bayeslm.exceptions import BayesLMError, ConfigError, CorpusError
from bayeslm.text.corpus import Corpus, resolve_paths, sentence_lines
from bayeslm.text.tokenize import Tokenizer, WordTokenizer
from bayeslm.text.vocab import Vocabulary, vocabulary_order

__all__ = ["DaskCounts", "count_corpus", "count_files", "dask_client", "require_dask"]

INSTALL_HINT = "pip install 'bayeslm[dask]'"
DEFAULT_BLOCKSIZE = 4 * 2**20  # bytes of text per partition (a file is cut at line breaks); small enough to balance 2 workers
SAMPLE_SENTENCES = 2000  # sentences of the first partition kept for fit's in-sample checks
_SPLIT_EVERY = 8  # fan-in of the tree reductions


def require_dask():
    """The ``distributed`` module, or a one-line :class:`BayesLMError` naming the extra."""
    try:
        import dask  # noqa: F401
        import distributed
    except ImportError as err:
        raise BayesLMError(
            f"counting on Dask needs the optional packages dask and distributed "
            f"({err.name or 'one of them'} is not installed): {INSTALL_HINT}"
        ) from None
    return distributed


@contextmanager
def dask_client(scheduler: str | None = None, *, n_workers: int | None = None, threads_per_worker: int = 1,
                memory_limit: str | int | None = "auto", processes: bool = True):
    """A ``distributed.Client``: connected to ``scheduler`` (an address), else on a new LocalCluster.

    The local cluster has ``n_workers`` processes (default: one per CPU) of
    ``threads_per_worker`` threads, each limited to ``memory_limit`` (beyond which it
    spills to disk). Client and cluster are closed on exit.
    """
    distributed = require_dask()
    if scheduler:
        try:
            client = distributed.Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as err:
            raise BayesLMError(f"cannot reach the Dask scheduler at {scheduler} ({err})") from None
        try:
            yield client
        finally:
            client.close()
        return
    cluster = distributed.LocalCluster(
        n_workers=n_workers or os.cpu_count() or 1, threads_per_worker=threads_per_worker,
        memory_limit=memory_limit, processes=processes, dashboard_address=None,
    )
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def _as_client(client):
    distributed = require_dask()
    if isinstance(client, distributed.Client):
        return client
    raise ConfigError(f"client must be a distributed.Client, got {type(client).__name__} "
                      "(bayeslm.counting.distributed.dask_client() makes one)")


def _check_packable(order: int, V: int) -> None:
    if int(V) ** int(order) > 2**63:  # keys run up to V ** order - 1
        raise ConfigError(
            f"order {order} with a vocabulary of {V} types does not fit the 63-bit keys of Dask counting "
            f"({order} x log2({V}) = {order * math.log2(V):.1f} bits); count this order in memory (client=None)"
        )


# -- partitions ------------------------------------------------------------------------
@dataclass
class _Part:
    """One partition after tokenising (lives on a worker).

    ``ids`` int32 (n_tokens,) are codes into ``types`` (object, (n_types,)) or, when
    ``types`` is None, vocabulary ids already; ``offsets`` int64 (n_sentences + 1,).
    """

    ids: np.ndarray
    offsets: np.ndarray
    types: np.ndarray | None = None
    type_counts: np.ndarray | None = None  # int64 (n_types,)
    n_lines: int = 0


class _SizedVocab:
    """What :meth:`Corpus.padded` needs of a vocabulary: its size and the marker ids."""

    unk_id, bos_id, eos_id = Vocabulary.unk_id, Vocabulary.bos_id, Vocabulary.eos_id

    def __init__(self, size: int):
        self.size = int(size)

    def __len__(self) -> int:
        return self.size


def _tokenise_block(data: bytes, name: str, start: int, tokenizer: Tokenizer) -> _Part:
    """Lines of one block of a file -> codes into its local types (same rules as Corpus.from_paths)."""
    import pandas as pd

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise CorpusError(f"{name}: invalid UTF-8 at byte offset {start + err.start}") from None
    lines = sentence_lines(text)
    token_lists = [toks for toks in tokenizer.tokenize_lines(lines) if toks]
    lengths = np.fromiter((len(t) for t in token_lists), dtype=np.int64, count=len(token_lists))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    flat = np.empty(int(offsets[-1]), dtype=object)
    flat[:] = list(chain.from_iterable(token_lists))
    codes, types = pd.factorize(flat, use_na_sentinel=False)
    types = np.asarray(types, dtype=object)
    return _Part(codes.astype(np.int32), offsets, types, np.bincount(codes, minlength=types.size).astype(np.int64),
                 n_lines=len(lines))


def _part_summary(part: _Part) -> tuple[int, int, int, int]:
    """(lines, sentences, tokens, longest sentence) of a partition."""
    lengths = np.diff(part.offsets)
    return part.n_lines, int(lengths.size), int(part.ids.size), int(lengths.max()) if lengths.size else 0


def _type_counts(part: _Part) -> tuple[np.ndarray, np.ndarray]:
    return part.types, part.type_counts


def _merge_type_counts(*inputs) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Merge partitions' (or merges') types: (distinct types object (m,), summed counts int64 (m,),
    per input the int64 codes of its types among the distinct ones)."""
    import pandas as pd

    types = np.concatenate([t[0] for t in inputs])
    codes, uniques = pd.factorize(types, use_na_sentinel=False)
    counts = np.bincount(codes, weights=np.concatenate([t[1] for t in inputs]), minlength=len(uniques))
    cuts = np.cumsum([len(t[0]) for t in inputs])[:-1]
    return np.asarray(uniques, dtype=object), counts.astype(np.int64), np.split(codes.astype(np.int64), cuts)


def _types_and_counts(merged) -> tuple[np.ndarray, np.ndarray]:
    return merged[0], merged[1]


def _plan_vocabulary(merged, min_count: int, max_size: int | None):
    """On the root merge's worker: (vocabulary order of its types, id of each type, kept counts)."""
    types, counts, _ = merged
    order = vocabulary_order(types, counts, min_count, max_size)
    ids = np.full(types.size, Vocabulary.unk_id, dtype=np.int32)  # literal <s>, </s>, rare types: <unk>
    ids[order] = np.arange(3, order.size + 3, dtype=np.int32)
    return order, ids, counts[order]


def _plan_item(plan, i: int):
    return plan[i]


def _vocabulary_tokens(merged, plan) -> np.ndarray:
    """The vocabulary's regular tokens in id order (object (V - 3,))."""
    return merged[0][plan[0]]


def _child_ids(merged, ids: np.ndarray, i: int) -> np.ndarray:
    """Vocabulary ids of input ``i``'s types, given the ids of the merge's distinct types."""
    return ids[merged[2][i]]


def build_vocabulary(types: np.ndarray, counts: np.ndarray, min_count: int = 1, max_size: int | None = None) -> Vocabulary:
    """``Vocabulary.build(dict(zip(types, counts)), min_count, max_size)``, sorted with numpy.

    ``types`` object (m,) distinct token strings, ``counts`` int (m,). Types sort by
    descending count, ties by the strings' code points (Python's ``<``), as in ``build``.
    """
    types = np.asarray(types, dtype=object)
    order = vocabulary_order(types, np.asarray(counts, dtype=np.int64), min_count, max_size)
    return Vocabulary(types[order].tolist())


def _global_ids(part: _Part, mapping: np.ndarray | None) -> np.ndarray:
    """The partition's tokens as vocabulary ids; ``mapping`` int32 (n_types,) gives each local type's id."""
    return part.ids if mapping is None else mapping[part.ids]


def _count_part(part: _Part, mapping, order: int, V: int, bounds: np.ndarray):
    """Distinct highest-order keys of one partition and their counts, cut into ranges.

    Returns a tuple of ``len(bounds) + 1`` pairs ``(keys int64 (m,), counts int64 (m,))``,
    keys sorted; range ``r`` holds the keys whose newest context token is in
    ``[bounds[r - 1], bounds[r])``. At order 1 the single pair is (tokens, counts).
    """
    ids = _global_ids(part, mapping)
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64))
    if ids.size == 0 and part.offsets.size <= 1:
        return tuple(empty for _ in range(bounds.size + 1))
    stream, targets = Corpus(ids, part.offsets, _SizedVocab(V)).padded(order)
    if order == 1:
        counts = np.bincount(stream[targets], minlength=V)
        keys = np.flatnonzero(counts).astype(np.int64)
        return ((keys, counts[keys].astype(np.int32)),)
    keys, counts = np.unique(packed_keys(stream, targets, order, V), return_counts=True)
    del stream, targets
    cuts = np.searchsorted(newest_context_token(keys, order, V), bounds)
    edges = np.concatenate([[0], cuts, [keys.size]])
    counts = counts.astype(np.int32)  # a partition has fewer than 2 ** 31 events
    return tuple((keys[a:b], counts[a:b]) for a, b in zip(edges[:-1], edges[1:]))


def _piece(pieces: tuple, r: int):
    """Range ``r`` of a partition's counts, copied so the partition's arrays can be freed."""
    keys, counts = pieces[r]
    return keys.copy(), counts.copy()


def _sample_part(part: _Part, mapping, n_sentences: int):
    """(ids, offsets) of the first ``n_sentences`` sentences and of the longest one, as vocabulary ids."""
    ids = _global_ids(part, mapping)
    lengths = np.diff(part.offsets)
    m = min(n_sentences, lengths.size)
    first = (ids[: part.offsets[m]], part.offsets[: m + 1])
    if lengths.size == 0:
        return first, (ids[:0], np.zeros(1, np.int64))
    i = int(np.argmax(lengths))
    return first, (ids[part.offsets[i] : part.offsets[i + 1]], np.array([0, lengths[i]], np.int64))


# -- merge -----------------------------------------------------------------------------
def _sum_runs(keys: np.ndarray, counts: np.ndarray):
    """Sort keys and add the counts of equal keys: (unique keys, summed counts, run lengths)."""
    perm = np.argsort(keys, kind="stable")
    keys, counts = keys[perm], counts[perm].astype(np.int64)
    starts = np.flatnonzero(run_starts(keys))
    if starts.size == 0:
        return keys, counts, np.zeros(0, np.int64)
    return keys[starts], np.add.reduceat(counts, starts), np.diff(np.append(starts, keys.size))


def _reduce_range(order: int, V: int, *pieces) -> dict:
    """Merge one range's pieces and derive every order 2..n of the range.

    Returns packed arrays per order k: ``key{k}`` (sorted n-gram keys, digits newest
    context token first), ``count{k}``, ``ctx{k}`` (sorted distinct packed contexts),
    ``cont{k}`` for k < n (N1+ of each n-gram), ``uni`` (token, count, N1+ of the
    unigrams ending the range's bigrams) and ``coc{k}`` (count-of-counts of the merged counts).
    """
    keys = np.concatenate([p[0] for p in pieces]) if pieces else np.zeros(0, np.int64)
    counts = np.concatenate([p[1] for p in pieces]) if pieces else np.zeros(0, np.int64)
    if order == 1:
        tok, cnt, _ = _sum_runs(keys, counts)
        return {"uni": (tok, cnt, np.zeros(tok.size, np.int64)), "coc1": np.bincount(cnt)}
    del pieces
    K, C, _ = _sum_runs(keys, counts)
    del keys, counts
    out: dict = {}
    for k in range(order, 1, -1):
        ctx = K // V
        first = run_starts(ctx)
        small = C.size == 0 or C.max() < 2**31  # kept as int32 where it fits (int64 when assembled)
        out[f"key{k}"], out[f"count{k}"], out[f"ctx{k}"] = K, C.astype(np.int32) if small else C, ctx[first]
        out[f"coc{k}"] = np.bincount(C)
        del ctx, first
        if k > 2:  # drop the oldest context token (the second-lowest digit)
            K, C, out[f"cont{k - 1}"] = _sum_runs(without_oldest_context_token(K, V), C)
        else:  # unigrams ending the range's bigrams: dense bincounts over the vocabulary
            tok = K % V
            cont = np.bincount(tok, minlength=V)
            present = np.flatnonzero(cont)
            cnt = np.bincount(tok, weights=C, minlength=V)[present].astype(np.int64)
            out["uni"] = (present, cnt, cont[present].astype(np.int64))
    return out


def _range_sizes(result: dict, order: int) -> dict[int, tuple[int, int]]:
    return {k: (int(result[f"ctx{k}"].size), int(result[f"key{k}"].size)) for k in range(2, order + 1)}


def _range_coc(result: dict, order: int) -> dict[int, np.ndarray]:
    return {k: result[f"coc{k}"] for k in range(1 if order == 1 else 2, order + 1)}


def _sum_unigrams(V: int, *parts) -> np.ndarray:
    """Dense (3, V) int64: row 0 unused marker, row 1 counts, row 2 continuation counts."""
    total = np.zeros((3, V), dtype=np.int64)
    for part in parts:
        if isinstance(part, np.ndarray):
            total += part
        else:
            tok, cnt, cont = part["uni"]
            total[1, tok] += cnt
            total[2, tok] += cont
    return total


def _range_array(result: dict, name: str, k: int, V: int, ctx_offset: int, parent_offset: int) -> np.ndarray:
    """One array of order k for one range, with context ids numbered from ``ctx_offset``.

    ``name`` is ``context_key``, ``ngram_key``, ``ngram_count`` or ``continuation``;
    ``parent_offset`` is the number of order ``k - 1`` contexts in the ranges before.
    """
    if name == "ngram_count":
        return result[f"count{k}"].astype(np.int64)
    if name == "continuation":
        return result[f"cont{k}"].astype(np.int64)
    ctx = result[f"ctx{k}"]
    if name == "ngram_key":
        K = result[f"key{k}"]
        return (ctx_offset - 1 + np.cumsum(run_starts(K // V))) * V + K % V  # contexts numbered in key order
    if k == 2:  # parent: the order-1 context (id 0); oldest token: w[t-1]
        return ctx.copy()
    parent = parent_offset + np.searchsorted(result[f"ctx{k - 1}"], ctx // V)
    return parent * V + ctx % V


def _tree_reduce(client, func, futures: list, *args):
    """Reduce futures with ``func(*args, *group)`` in groups of ``_SPLIT_EVERY`` until one is left."""
    while True:  # at least one round, so a single input goes through func too
        futures = [client.submit(func, *args, *futures[i : i + _SPLIT_EVERY], pure=False)
                   for i in range(0, len(futures), _SPLIT_EVERY)]
        if len(futures) == 1:
            return futures[0]


def _show(futures, progress: bool, label: str):
    if progress and futures:
        from distributed import progress as dprogress

        print(f"{label}:", flush=True)
        dprogress(futures, notebook=False)
        print(flush=True)


# -- results ---------------------------------------------------------------------------
@dataclass
class DaskCounts:
    """What :func:`count_files` returns.

    ``counts`` is the merged :class:`NgramCounts` (None when written to ``path``);
    ``count_of_counts[k]`` int64 array, ``[c]`` = number of order-k n-grams seen exactly
    ``c`` times (computed on the merged counts); ``sample`` holds up to
    ``SAMPLE_SENTENCES`` sentences of the first partition plus the longest sentence, in
    vocabulary ids (fit uses it for its in-sample checks).
    """

    vocab: Vocabulary
    order: int
    counts: NgramCounts | None
    path: Path | None
    n_tokens: int
    n_sentences: int
    longest_sentence: int
    n_partitions: int
    n_ranges: int
    count_of_counts: dict[int, np.ndarray] = field(repr=False)
    sample: Corpus | None = field(default=None, repr=False)
    tokenizer: Tokenizer | None = field(default=None, repr=False)
    timings: dict[str, float] = field(default_factory=dict, repr=False)  # seconds per stage (client side)


class _MemorySink:
    """Collects the arrays of an :class:`NgramCounts` in memory."""

    prefetch = True

    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}

    def scalar(self, name, value):
        self.arrays[name] = np.array(value)

    def array(self, name, total, dtype, pieces):
        out = np.empty(total, dtype=dtype)
        at = 0
        for piece in pieces:
            out[at : at + piece.size] = piece
            at += piece.size
        self.arrays[name] = out


class _NpzSink:
    """Streams arrays into an uncompressed ``.npz`` (np.load / NgramCounts.load read it)."""

    prefetch = False

    def __init__(self, path: Path):
        self.path = path
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        self.tmp = Path(tmp)
        self.zip = zipfile.ZipFile(self.tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True)

    def scalar(self, name, value):
        self.array(name, None, np.asarray(value).dtype, [np.asarray(value)])

    def array(self, name, total, dtype, pieces):
        dtype = np.dtype(dtype)
        shape = () if total is None else (int(total),)
        with self.zip.open(f"{name}.npy", "w", force_zip64=True) as fp:
            np.lib.format.write_array_header_2_0(fp, {"descr": np.lib.format.dtype_to_descr(dtype),
                                                     "fortran_order": False, "shape": shape})
            for piece in pieces:
                fp.write(np.ascontiguousarray(piece, dtype=dtype).tobytes())

    def close(self, ok: bool):
        self.zip.close()
        if ok:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


def _assemble(client, ranges: list, order: int, V: int, unigram_future, sink) -> dict[int, np.ndarray]:
    """Number contexts across ranges and hand every array, range by range, to ``sink``."""
    sizes = client.gather([client.submit(_range_sizes, r, order, pure=False) for r in ranges]) if order > 1 else []
    cocs = client.gather([client.submit(_range_coc, r, order, pure=False) for r in ranges])
    uni = unigram_future.result()
    sink.scalar("vocab_size", V)
    sink.scalar("order", order)
    present = np.flatnonzero(uni[1]).astype(np.int64)
    sink.array("o1_context_key", 1, np.int64, [np.zeros(1, np.int64)])
    sink.array("o1_ngram_key", present.size, np.int64, [present])
    sink.array("o1_ngram_count", present.size, np.int64, [uni[1][present]])
    if order > 1:
        sink.array("o1_continuation", present.size, np.int64, [uni[2][present]])
    coc = {1: np.bincount(uni[1][present])}
    del uni
    ctx_offsets = {k: np.concatenate([[0], np.cumsum([s[k][0] for s in sizes])]) for k in range(2, order + 1)}
    ngram_totals = {k: int(sum(s[k][1] for s in sizes)) for k in range(2, order + 1)}

    def submit(name, k):
        return [client.submit(_range_array, res, name, k, V, int(ctx_offsets[k][i]),
                              int(ctx_offsets[k - 1][i]) if k > 2 else 0, pure=False)
                for i, res in enumerate(ranges)]

    names = [(name, k) for k in range(2, order + 1)
             for name in ("context_key", "ngram_key", "ngram_count", "continuation")[: 4 if k < order else 3]]
    # held in memory anyway: compute every piece at once and fetch each array's ranges in parallel
    submitted = {key: submit(*key) for key in names} if sink.prefetch else {}

    def pieces(name, k):
        if sink.prefetch:
            yield from client.gather(submitted.pop((name, k)))
            return
        for fut in submit(name, k):  # streaming: one range of one array at a time
            yield fut.result()
            fut.release()

    for k in range(2, order + 1):
        sink.array(f"o{k}_context_key", int(ctx_offsets[k][-1]), np.int64, pieces("context_key", k))
        sink.array(f"o{k}_ngram_key", ngram_totals[k], np.int64, pieces("ngram_key", k))
        sink.array(f"o{k}_ngram_count", ngram_totals[k], np.int64, pieces("ngram_count", k))
        if k < order:
            sink.array(f"o{k}_continuation", ngram_totals[k], np.int64, pieces("continuation", k))
        per_range = [c[k] for c in cocs]
        width = max((c.size for c in per_range), default=1)
        coc[k] = sum((np.pad(c, (0, width - c.size)) for c in per_range), np.zeros(width, np.int64))
    return coc


def _range_bounds(weights: np.ndarray, n_ranges: int) -> np.ndarray:
    """Token ids where ranges 1..R-1 start, balancing ``weights`` (events per newest context token)."""
    cum = np.cumsum(weights)
    if n_ranges <= 1 or cum[-1] == 0:
        return np.zeros(0, np.int64)
    cuts = np.searchsorted(cum, cum[-1] * np.arange(1, n_ranges) / n_ranges, side="right")
    return np.unique(np.clip(cuts, 1, weights.size - 1)).astype(np.int64)


def _default_ranges(client, n_events: int) -> int:
    threads = sum(client.nthreads().values()) or 1
    return int(max(2 * threads, min(256, math.ceil(n_events / 2_000_000))))


class _Clock:
    """Adds the seconds since the last call to ``timings[stage]`` (when timings is a dict)."""

    def __init__(self, timings: dict | None):
        import time

        self.timings, self.now, self.last = timings, time.perf_counter, time.perf_counter()

    def __call__(self, stage: str) -> None:
        if self.timings is not None:
            now = self.now()
            self.timings[stage] = self.timings.get(stage, 0.0) + now - self.last
            self.last = now


def distributed_wait(futures) -> None:
    from distributed import wait

    wait(futures)


def _count_parts(client, parts: list, order: int, mappings: list, V: int, weights: np.ndarray, n_events: int,
                 out, progress: bool, n_ranges: int | None, timings: dict | None = None):
    """Steps 3-5 on partitions already on the workers: (NgramCounts or None, count-of-counts, n_ranges).

    Consumes ``parts`` and ``mappings`` (lists of futures, emptied) so the workers can
    free every partition as soon as it is counted.
    """
    clock = _Clock(timings)
    n_ranges = 1 if order == 1 else int(n_ranges or _default_ranges(client, n_events))
    bounds = _range_bounds(weights, n_ranges)
    n_ranges = bounds.size + 1
    counted = [client.submit(_count_part, p, m, order, V, bounds, pure=False) for p, m in zip(parts, mappings)]
    parts.clear()  # consumed: the workers free each partition once it is counted
    mappings.clear()
    _show(counted, progress, f"counting {len(parts)} partitions")
    if timings is not None:
        distributed_wait(counted)
        clock("count partitions")
    ranges = []
    for r in range(n_ranges):
        pieces = [client.submit(_piece, c, r, pure=False) for c in counted]
        ranges.append(client.submit(_reduce_range, order, V, *pieces, pure=False))
        del pieces
    del counted
    _show(ranges, progress, f"merging {n_ranges} ranges")
    if timings is not None:
        distributed_wait(ranges)
        clock("merge ranges")
    unigram = _tree_reduce(client, _sum_unigrams, ranges, V)
    sink = _MemorySink() if out is None else _NpzSink(Path(out))
    ok = False
    try:
        coc = _assemble(client, ranges, order, V, unigram, sink)
        ok = True
    finally:
        if out is not None:
            sink.close(ok)
    clock("assemble")
    counts = NgramCounts.from_arrays(sink.arrays) if out is None else None
    clock("NgramCounts")
    return counts, coc, n_ranges


# -- entry points ----------------------------------------------------------------------
def count_corpus(corpus: Corpus, order: int, client, progress: bool = False, n_partitions: int | None = None,
                 n_ranges: int | None = None) -> NgramCounts:
    """:func:`bayeslm.count` of an in-memory corpus, counted on a Dask cluster (same arrays).

    The corpus is cut into ``n_partitions`` runs of sentences (default: two per worker
    thread) that are scattered to the workers.
    """
    client = _as_client(client)
    order, V = int(order), len(corpus.vocab)
    _check_packable(order, V)
    threads = sum(client.nthreads().values()) or 1
    n_parts = max(1, min(int(n_partitions or 2 * threads), corpus.n_sentences))
    cuts = np.linspace(0, corpus.n_sentences, n_parts + 1).round().astype(np.int64)
    offsets = corpus.offsets
    parts = [_Part(corpus.ids[offsets[a] : offsets[b]], offsets[a : b + 1] - offsets[a]) for a, b in zip(cuts[:-1], cuts[1:])]
    futures = client.scatter(parts)
    del parts
    weights = np.bincount(corpus.ids, minlength=V).astype(np.float64)
    weights[corpus.vocab.bos_id] += corpus.n_sentences
    counts, _, _ = _count_parts(client, futures, order, [None] * len(futures), V, weights,
                                corpus.n_tokens + corpus.n_sentences,
                                None, progress, n_ranges)
    return counts


def _read_block(path: str, offset: int, length: int) -> tuple[bytes, int]:
    """The lines of a file that start in bytes ``[offset, offset + length)``, and where they start."""
    with open(path, "rb") as handle:
        if offset:
            handle.seek(offset - 1)
            handle.readline()  # to the first line start at or after offset
        start = handle.tell()
        if start >= offset + length:
            return b"", start
        data = handle.read(offset + length - 1 - start) + handle.readline()
    return data, start


def _read_tokenise(path: str, offset: int, length: int, tokenizer: Tokenizer) -> _Part:
    try:
        data, start = _read_block(path, offset, length)
    except OSError as err:
        raise CorpusError(f"{path}: cannot read ({err.strerror})") from None
    return _tokenise_block(data, path, start, tokenizer)


def _blocks(paths: list[Path], blocksize: int) -> list[tuple[Path, int, int]]:
    """(file, offset, length) of every partition: each file in blocks of ``blocksize`` bytes."""
    blocksize = max(int(blocksize), 1)
    out = []
    for path in paths:
        size = path.stat().st_size
        out.extend((path, off, min(blocksize, size - off)) for off in range(0, size, blocksize))
        if size == 0:
            out.append((path, 0, 0))
    return out


class _LazyVocabulary:
    """Builds the :class:`Vocabulary` from a future of its tokens in a thread (while the workers count)."""

    def __init__(self, tokens_future):
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(max_workers=1)
        self._result = self._pool.submit(lambda: Vocabulary(tokens_future.result().tolist()))

    def result(self) -> Vocabulary:
        try:
            return self._result.result()
        finally:
            self._pool.shutdown(wait=False)


def count_files(paths, order: int, client, *, tokenizer: Tokenizer | None = None, min_count: int = 1,
                max_size: int | None = None, out: str | Path | None = None, blocksize: int = DEFAULT_BLOCKSIZE,
                n_ranges: int | None = None, progress: bool = False, sample: bool = True) -> DaskCounts:
    """Vocabulary and n-gram counts of text files, tokenised and counted on a Dask cluster.

    The same as ``count(Corpus.from_paths(paths, tokenizer), order)`` (with the vocabulary
    rebuilt by ``Vocabulary.build(type counts, min_count, max_size)`` as a model does),
    without reading the corpus into one process.

    Parameters
    ----------
    paths : files, directories (``*.txt``) or glob patterns, as :meth:`Corpus.from_paths`.
    order : int
    client : distributed.Client
    tokenizer : Tokenizer, default WordTokenizer; a BPE tokenizer must be trained already.
    min_count, max_size : vocabulary options (types rarer than ``min_count`` count as ``<unk>``).
    out : path, optional
        Write the counts to this ``.npz`` (``NgramCounts.load`` reads it) instead of
        returning them; the client then holds one range of one array at a time.
    blocksize : int
        Bytes of text per partition; files are cut at line breaks.
    n_ranges : int, optional
        Merge ranges (default: ``max(2 x worker threads, events / 2 million)``).
    """
    client = _as_client(client)
    tokenizer = tokenizer if tokenizer is not None else WordTokenizer()
    order = _check_count_files_options(tokenizer, order, out)
    timings: dict[str, float] = {}
    clock = _Clock(timings)
    files = resolve_paths(paths)
    blocks = _blocks(files, blocksize)
    parts, tree = _tokenise_partitions(client, blocks, tokenizer)
    _show(parts, progress, f"tokenising {len(parts)} partitions of {len(files)} files")
    summaries = client.gather([client.submit(_part_summary, p, pure=False) for p in parts])
    clock("read and tokenise")
    n_sentences, n_tokens = _corpus_size(files, blocks, summaries)
    plan, V, weights = _vocabulary_plan(client, tree[-1][0], min_count, max_size, order, n_tokens, n_sentences)
    clock("vocabulary")
    mappings, vocab_tokens = _vocabulary_ids_down(client, tree, plan)
    del tree, plan
    vocab = _LazyVocabulary(vocab_tokens)
    samples = None
    if sample:
        longest = int(np.argmax([s[3] for s in summaries]))
        samples = (client.submit(_sample_part, parts[0], mappings[0], SAMPLE_SENTENCES, pure=False),
                   client.submit(_sample_part, parts[longest], mappings[longest], 1, pure=False))
    counts, coc, n_ranges = _count_parts(client, parts, order, mappings, V, weights, n_tokens + n_sentences,
                                         out, progress, n_ranges, timings)
    vocab = vocab.result()
    sample_corpus = None if samples is None else _sample_corpus(client.gather(list(samples)), vocab, tokenizer, files)
    return DaskCounts(vocab=vocab, order=order, counts=counts, path=None if out is None else Path(out),
                      n_tokens=n_tokens, n_sentences=n_sentences, longest_sentence=max(s[3] for s in summaries),
                      n_partitions=len(blocks), n_ranges=n_ranges, count_of_counts=coc, sample=sample_corpus,
                      tokenizer=tokenizer, timings=timings)


def _check_count_files_options(tokenizer: Tokenizer, order, out) -> int:
    """The order as an int, after refusing an untrained tokenizer, an order below 1 or a missing ``out`` directory."""
    if not tokenizer.is_trained:
        raise ConfigError("the BPE tokenizer is not trained: train it on a sample of the text before counting on Dask")
    order = int(order)
    if order < 1:
        raise CorpusError(f"order must be at least 1, got {order}")
    if out is not None and not Path(out).parent.exists():
        raise BayesLMError(f"{out}: directory {Path(out).parent} does not exist")
    return order


def _tokenise_partitions(client, blocks: list, tokenizer: Tokenizer) -> tuple[list, list[list]]:
    """Futures of the tokenised partitions and the tree merging their type counts (step 1 and 2).

    ``tree[0]`` holds one type-count future per partition, ``tree[d]`` the merges of
    groups of ``_SPLIT_EVERY`` nodes of ``tree[d - 1]``; ``tree[-1][0]`` is the root. The
    merges start as soon as their partitions are tokenised.
    """
    parts = [client.submit(_read_tokenise, str(path), off, length, tokenizer, pure=False)
             for path, off, length in blocks]
    tree = [[client.submit(_type_counts, p, pure=False) for p in parts]]
    while len(tree[-1]) > 1 or len(tree) == 1:
        below = tree[-1]
        tree.append([client.submit(_merge_type_counts, *below[i : i + _SPLIT_EVERY], pure=False)
                     for i in range(0, len(below), _SPLIT_EVERY)])
    return parts, tree


def _corpus_size(files: list[Path], blocks: list, summaries: list) -> tuple[int, int]:
    """(sentences, tokens) of the corpus from its partitions' summaries; an empty file or corpus is an error."""
    lines_per_file: dict[Path, int] = {}
    for (path, _, _), summary in zip(blocks, summaries):
        lines_per_file[path] = lines_per_file.get(path, 0) + summary[0]
    for path in files:
        if lines_per_file.get(path, 0) == 0:
            raise CorpusError(f"{path}: file is empty (no non-blank lines)")
    n_sentences = sum(s[1] for s in summaries)
    n_tokens = sum(s[2] for s in summaries)
    if n_tokens == 0:
        raise CorpusError(f"the corpus has no tokens ({', '.join(map(str, files))})")
    return n_sentences, n_tokens


def _vocabulary_plan(client, root, min_count: int, max_size: int | None, order: int, n_tokens: int,
                     n_sentences: int) -> tuple:
    """The future of the vocabulary plan, the vocabulary size V and float64 (V,) events per newest context token.

    The root merge's worker orders the vocabulary; the client needs only its size and
    counts to start counting (the weights balance the merge ranges), and fetches the
    token strings while the workers count.
    """
    plan = client.submit(_plan_vocabulary, root, min_count, max_size, pure=False)
    kept = client.submit(_plan_item, plan, 2, pure=False).result().astype(np.float64)
    V = kept.size + 3
    _check_packable(order, V)
    weights = np.zeros(V, dtype=np.float64)
    weights[3:] = kept
    weights[Vocabulary.unk_id] = max(n_tokens - kept.sum(), 0)
    weights[Vocabulary.bos_id] = n_sentences
    return plan, V, weights


def _vocabulary_ids_down(client, tree: list[list], plan) -> tuple[list, object]:
    """Futures of every partition's local-type -> vocabulary id mapping, and of the vocabulary's tokens.

    The ids of the root's distinct types go down the merge tree to the partitions (strings never travel back).
    """
    level = [client.submit(_plan_item, plan, 1, pure=False)]
    vocab_tokens = client.submit(_vocabulary_tokens, tree[-1][0], plan, pure=False)
    for depth in range(len(tree) - 1, 0, -1):  # from the root's merge down to the partitions
        level = [client.submit(_child_ids, node, level[j], i, pure=False)
                 for j, node in enumerate(tree[depth]) for i in range(len(tree[depth - 1][j * _SPLIT_EVERY:][:_SPLIT_EVERY]))]
    return level, vocab_tokens


def _sample_corpus(samples, vocab: Vocabulary, tokenizer: Tokenizer, files: list[Path]) -> Corpus:
    """The first partition's first sentences and the longest sentence, as one :class:`Corpus`."""
    ((ids, offs), _), (_, (lids, loffs)) = samples
    return Corpus(np.concatenate([ids, lids]), np.concatenate([offs, loffs[1:] + offs[-1]]), vocab, tokenizer,
                  sources=files)
