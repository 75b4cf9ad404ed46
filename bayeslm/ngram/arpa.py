"""Export an interpolated n-gram model as an ARPA back-off file (KenLM, SRILM, ...).

The listed n-grams carry their full interpolated probabilities and the back-off weights
are computed by normalisation, which reproduces one interpolated model exactly; bayeslm's
``<s>`` padding is collapsed to KenLM's single ``<s>``. docs/arpa.md has the derivation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bayeslm.core.files import atomic_file
from bayeslm.core.protocol import ExportsArpa
from bayeslm.exceptions import BayesLMError

__all__ = ["write_arpa", "interpolation_of", "arpa_tables"]

#: an ARPA table of one order: (tokens (m, order), log10 probability (m,), log10 back-off weight (m,))
Table = tuple[np.ndarray, np.ndarray, np.ndarray]


def interpolation_of(model, sample: int | None = None) -> list[np.ndarray]:
    """P_k(w | u) at every seen n-gram of every order, aligned with ``model.counts_[k]``."""
    if not isinstance(model, ExportsArpa):
        raise BayesLMError(f"ARPA export needs an n-gram model; {type(model).__name__} has no interpolation")
    if model.open_vocabulary:
        raise BayesLMError("an ARPA file is a closed vocabulary (unknown words are <unk>): a model with a spelling "
                           "model cannot be exported; fit it with [model] spelling = 0")
    return model.interpolation(sample)


def _pad_left(rows: np.ndarray, width: int) -> np.ndarray:
    """Rows of tokens left-padded with 0 to ``width`` columns (for ``NgramCounts.context_ids``)."""
    out = np.zeros((rows.shape[0], width), dtype=np.int64)
    if rows.shape[1]:
        out[:, width - rows.shape[1]:] = rows
    return out


def _lower_probs(counts, probs: list[np.ndarray], k: int, bos: int) -> np.ndarray:
    """P_{k-1}(w | u') at every order-k n-gram (u, w): uniform without ``<s>`` below order 1."""
    oc = counts[k]
    if k == 1:
        return np.where(oc.ngram_token == bos, 0.0, 1.0 / (counts.vocab_size - 1))
    return probs[k - 2][counts[k - 1].lookup(oc.context_parent[oc.ngram_context], oc.ngram_token)]


def _listed_sums(counts, probs: list[np.ndarray], bos: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per order and context: the sum of the listed P_k, and of P_{k-1} for the same tokens."""
    here, below = [], []
    for k in range(1, counts.order + 1):
        oc = counts[k]
        here.append(np.bincount(oc.ngram_context, weights=probs[k - 1], minlength=oc.n_contexts))
        below.append(np.bincount(oc.ngram_context, weights=_lower_probs(counts, probs, k, bos), minlength=oc.n_contexts))
    return here, below


def _regular_tables(counts, probs, backoff, bos: int) -> dict[int, Table]:
    """Every token but ``<s>`` as a unigram, and the n-grams of orders 2..n without ``<s>``."""
    n, V = counts.order, counts.vocab_size
    width = max(n - 1, 1)

    def weight_of(rows: np.ndarray) -> np.ndarray:
        """log10 back-off weight of the regular (no <s>) contexts given as token rows."""
        out = np.zeros(rows.shape[0])
        L = rows.shape[1]
        if L + 1 > n:
            return out
        ids = counts.context_ids(_pad_left(rows, width))[L] if n > 1 else np.full(rows.shape[0], -1)
        ok = ids >= 0
        out[ok] = np.log10(backoff[L][ids[ok]])
        return out

    # unigrams: tokens never counted get the root's back-off share
    uni = counts[1]
    p1 = np.full(V, backoff[0][0] / (V - 1))
    p1[uni.ngram_token] = probs[0]
    tokens1 = np.array([w for w in range(V) if w != bos], dtype=np.int64)[:, None]
    tables = {1: (tokens1, np.log10(p1[tokens1[:, 0]]), weight_of(tokens1))}
    for k in range(2, n + 1):
        oc = counts[k]
        rows = np.concatenate([counts.context_tokens(k)[oc.ngram_context], oc.ngram_token[:, None]], axis=1)
        rows = rows.astype(np.int64)
        keep = rows[:, 0] != bos
        rows = rows[keep]
        tables[k] = (rows, np.log10(probs[k - 1][keep]), weight_of(rows))
    return tables


def _collapsed_weights(counts, probs, listed_here, bos: int) -> np.ndarray:
    """log10 back-off weight of every top context ``<s>^j x1..xm`` (j >= 1) once its ``<s>`` run
    is collapsed: (1 - sum of listed P_n) / (1 - sum of P_{m+1}(w | x1..xm) for those tokens)."""
    n = counts.order
    top, ctx, width = counts[n], counts.context_tokens(n), max(n - 1, 1)
    lead = _leading_bos(ctx, bos)
    starts = np.flatnonzero(lead > 0)
    weights = np.zeros(top.n_contexts)
    for j in np.unique(lead[starts]):
        cs = starts[lead[starts] == j]
        m = n - 1 - j
        sel = np.isin(top.ngram_context, cs)
        pair_ctx = top.ngram_context[sel]
        if m == 0:
            lower = probs[0][counts[1].lookup(np.zeros(pair_ctx.size, np.int64), top.ngram_token[sel])]
        else:
            low_ctx = counts.context_ids(_pad_left(ctx[pair_ctx][:, j:].astype(np.int64), width))[m]
            lower = probs[m][counts[m + 1].lookup(low_ctx, top.ngram_token[sel])]
        below = np.bincount(pair_ctx, weights=lower, minlength=top.n_contexts)[cs]
        with np.errstate(divide="ignore", invalid="ignore"):
            weights[cs] = np.log10((1.0 - listed_here[n - 1][cs]) / (1.0 - below))
    return weights


def _leading_bos(ctx: np.ndarray, bos: int) -> np.ndarray:
    """Length of each context row's leading run of ``<s>``."""
    return np.argmin(np.concatenate([ctx == bos, np.zeros((ctx.shape[0], 1), bool)], axis=1), axis=1)


def _sentence_start_tables(counts, probs, listed_here, bos: int) -> list[tuple[int, Table]]:
    """The top order's n-grams with ``<s>`` in the context, their ``<s>`` run collapsed to one
    (an entry of order m + 2 for m tokens after the run), and ``<s>`` itself as a unigram."""
    n = counts.order
    top, ctx = counts[n], counts.context_tokens(n)
    lead = _leading_bos(ctx, bos)
    coll_w = _collapsed_weights(counts, probs, listed_here, bos)
    ids = np.flatnonzero(lead[top.ngram_context] > 0)
    js = lead[top.ngram_context[ids]]
    parts = []
    for j in np.unique(js):
        pick = ids[js == j]
        m = n - 1 - j
        rows = np.concatenate([np.full((pick.size, 1), bos), ctx[top.ngram_context[pick]][:, j:],
                               top.ngram_token[pick, None]], axis=1).astype(np.int64)
        # weight of the entry as a context: the top context <s>^{j-1} x1..xm w, if seen
        full = np.concatenate([ctx[top.ngram_context[pick]][:, 1:], top.ngram_token[pick, None]], axis=1)
        nxt = counts.context_ids(full.astype(np.int64))[n - 1]
        w = np.where(nxt >= 0, coll_w[np.maximum(nxt, 0)], 0.0) if j > 1 else np.zeros(pick.size)
        parts.append((m + 2, (rows, np.log10(probs[n - 1][pick]), w)))
    all_bos = counts.context_ids(np.full((1, n - 1), bos, dtype=np.int64))[n - 1]
    bos_w = coll_w[all_bos[0]] if all_bos[0] >= 0 else 0.0
    parts.append((1, (np.array([[bos]]), np.array([-99.0]), np.array([bos_w]))))
    return parts


def arpa_tables(model, sample: int | None = None) -> dict[int, Table]:
    """The ARPA entries per order: ``{order: (tokens (m, order), log10 prob, log10 backoff)}``."""
    model._check_fitted("ARPA export")
    counts, bos = model.counts_, model.vocab_.bos_id
    probs = interpolation_of(model, sample)
    listed_here, listed_below = _listed_sums(counts, probs, bos)
    with np.errstate(divide="ignore", invalid="ignore"):
        backoff = [(1.0 - here) / (1.0 - below) for here, below in zip(listed_here, listed_below)]
    parts = {k: [table] for k, table in _regular_tables(counts, probs, backoff, bos).items()}
    if counts.order > 1:
        for k, table in _sentence_start_tables(counts, probs, listed_here, bos):
            parts[k].append(table)
    return {k: tuple(np.concatenate([p[i] for p in tables]) for i in range(3)) for k, tables in sorted(parts.items())}


def write_arpa(model, path: str | Path, *, sample: int | None = None) -> dict[int, int]:
    """Write ``model`` (a fitted n-gram LM) as an ARPA file; returns the n-gram count per order.

    Parameters
    ----------
    sample : int, optional
        Pitman-Yor only: export one retained posterior sample exactly instead of the mean model.
    """
    path = Path(path)
    tokens = list(model.vocabulary.tokens)
    bad = [t for t in tokens if (not t) or any(ch.isspace() for ch in t)]
    if bad:
        raise BayesLMError(f"ARPA files separate tokens by whitespace; the vocabulary has {len(bad)} token(s) that "
                           f"are empty or contain whitespace (e.g. {bad[0]!r}): use a word or BPE tokenizer")
    if sample is not None and not 0 <= int(sample) < model.n_samples:
        raise BayesLMError(f"--sample must be in 0..{model.n_samples - 1}, got {sample}")
    if not path.parent.exists():
        raise BayesLMError(f"{path}: directory {path.parent} does not exist")
    tables = arpa_tables(model, sample)
    words = np.asarray(tokens, dtype=object)
    sizes = {k: int(t[0].shape[0]) for k, t in sorted(tables.items())}
    top = max(sizes)
    with atomic_file(path) as fh:  # all or nothing, the usual file mode
        fh.write("\\data\\\n")
        for k, m in sizes.items():
            fh.write(f"ngram {k}={m}\n")
        for k in sizes:
            rows, lp, lb = tables[k]
            fh.write(f"\n\\{k}-grams:\n")
            text = words[rows[:, 0]]
            for j in range(1, rows.shape[1]):
                text = text + " " + words[rows[:, j]]
            if k == top:
                lines = [f"{p:.7f}\t{t}\n" for p, t in zip(lp.tolist(), text.tolist())]
            else:
                lines = [f"{p:.7f}\t{t}\t{b:.7f}\n" if b != 0.0 else f"{p:.7f}\t{t}\n"
                         for p, t, b in zip(lp.tolist(), text.tolist(), lb.tolist())]
            fh.writelines(lines)
        fh.write("\n\\end\\\n")
    return sizes
