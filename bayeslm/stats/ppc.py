"""Posterior predictive checks on corpus statistics that matter for language.

Replicate corpora drawn from a model that samples sentences (``SamplesSentences``, one
posterior draw per replicate) are compared with the observed text on the frequency of
frequencies, type-token growth, sentence lengths, the ``<unk>`` share and the share of
n-grams unseen in training, each with a Bayesian p-value (docs/report.md). numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bayeslm.exceptions import ConfigError
from bayeslm.text.corpus import Corpus

__all__ = [
    "STATISTICS",
    "count_of_counts",
    "type_token_curve",
    "type_token_checkpoints",
    "sentence_length_edges",
    "sentence_length_histogram",
    "unseen_ngram_share",
    "bayesian_p_value",
    "corpus_statistics",
    "PosteriorPredictiveCheck",
    "posterior_predictive_check",
]

#: scalar statistics, name -> description (units in the description)
STATISTICS = {
    "types": "distinct token types (model vocabulary, </s> excluded)",
    "hapax_types": "types that occur exactly once",
    "mean_sentence_length": "mean tokens per sentence (</s> excluded)",
    "sd_sentence_length": "standard deviation of tokens per sentence",
    "unk_share": "share of tokens that are <unk>",
    "unseen_ngram_share": "share of held-out-sized scored positions (</s> included) whose full n-gram never occurs in training",
}
COC_MAX = 50  # count-of-counts curve for counts 1..COC_MAX
N_CHECKPOINTS = 40  # points of the type-token curve
N_LENGTH_BINS = 50


def count_of_counts(ids, vocab_size: int, *, max_count: int = COC_MAX, exclude=()) -> np.ndarray:
    """``coc[c - 1]`` = number of token types occurring exactly ``c`` times, for c = 1..max_count.

    Parameters
    ----------
    ids : int array
        Token ids (a corpus' ``ids``: no sentence markers).
    vocab_size : int
    max_count : int
        Length of the curve; types seen more often are not counted here.
    exclude : iterable of int
        Ids left out (e.g. ``</s>``).
    """
    freq = np.bincount(np.asarray(ids, dtype=np.int64), minlength=vocab_size)
    if len(exclude):
        freq[np.asarray(list(exclude), dtype=np.int64)] = 0
    coc = np.bincount(freq, minlength=max_count + 1)
    return coc[1 : max_count + 1].astype(np.int64)


def type_token_checkpoints(n_tokens: int, n_points: int = N_CHECKPOINTS) -> np.ndarray:
    """Geometric grid of token counts 1..n_tokens (distinct integers) for the growth curve."""
    if n_tokens < 1:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.round(np.geomspace(1, n_tokens, n_points)).astype(np.int64))


def type_token_curve(ids, checkpoints) -> np.ndarray:
    """Distinct types among the first ``t`` tokens, for each ``t`` in ``checkpoints``.

    A checkpoint past the end of ``ids`` gives NaN.
    """
    ids = np.asarray(ids, dtype=np.int64)
    checkpoints = np.asarray(checkpoints, dtype=np.int64)
    _, first = np.unique(ids, return_index=True)
    first.sort()
    out = np.searchsorted(first, checkpoints, side="left").astype(float)  # first occurrences before t
    out[checkpoints > ids.size] = np.nan
    return out


def sentence_length_edges(lengths, n_bins: int = N_LENGTH_BINS) -> np.ndarray:
    """Bin edges for sentence lengths: integer-width bins from 1 to the longest observed.

    The last bin also holds every longer sentence (see :func:`sentence_length_histogram`).
    """
    longest = int(np.max(lengths)) if len(lengths) else 1
    width = max(1, int(np.ceil(longest / n_bins)))
    return np.arange(1, longest + width + 1, width, dtype=np.int64)


def sentence_length_histogram(lengths, edges) -> np.ndarray:
    """Sentences per bin ``[edges[i], edges[i + 1])``; longer ones fall in the last bin."""
    edges = np.asarray(edges)
    clipped = np.clip(np.asarray(lengths), edges[0], edges[-1] - 1)
    return np.histogram(clipped, bins=edges)[0].astype(np.int64)


def unseen_ngram_share(counts, corpus: Corpus, order: int | None = None) -> float:
    """Share of scored positions (tokens and each ``</s>``) whose n-gram is absent from ``counts``.

    The n-gram of a position is its ``order - 1`` context tokens (``<s>``-padded) and the
    token; ``counts`` is the training :class:`~bayeslm.counting.counts.NgramCounts` and
    ``corpus`` is in the same vocabulary.
    """
    order = counts.order if order is None else int(order)
    stream, targets = corpus.padded(order)
    if targets.size == 0:
        return float("nan")
    ctx_tokens = np.stack([stream[targets - (order - 1) + j] for j in range(order - 1)], axis=1) if order > 1 \
        else np.zeros((targets.size, 0), dtype=np.int64)
    if order == counts.order:
        ctx = counts.context_ids(ctx_tokens)[order - 1]
    else:  # context ids of a lower order: pad the context on the left
        pad = np.zeros((targets.size, counts.order - order), dtype=np.int64)
        ctx = counts.context_ids(np.concatenate([pad, ctx_tokens], axis=1))[order - 1]
    seen = counts[order].lookup(ctx, stream[targets]) >= 0
    return float(1.0 - seen.mean())


def bayesian_p_value(replicated, observed) -> tuple[float, float]:
    """``(p, two_sided)``: p = share of replicates with statistic >= observed; 2 min(p, 1 - p)."""
    rep = np.asarray(replicated, dtype=float)
    rep = rep[np.isfinite(rep)]
    if rep.size == 0 or not np.isfinite(observed):
        return float("nan"), float("nan")
    p = float(np.mean(rep >= observed))
    return p, float(2 * min(p, 1 - p))


def corpus_statistics(corpus: Corpus, *, checkpoints, length_edges, counts=None, novelty: Corpus | None = None,
                      order: int | None = None) -> dict:
    """Every statistic of one corpus (observed or replicated).

    ``novelty`` is the corpus whose unseen-n-gram share is measured against ``counts``
    (the held-out text, or a held-out-sized part of a replicate); without ``counts`` that
    statistic is NaN.
    """
    vocab = corpus.vocab
    lengths = corpus.sentence_lengths
    ids = corpus.ids
    coc = count_of_counts(ids, len(vocab), exclude=(vocab.bos_id, vocab.eos_id), max_count=COC_MAX)
    freq = np.bincount(ids, minlength=len(vocab))
    freq[[vocab.bos_id, vocab.eos_id]] = 0
    scalars = {
        "types": float(np.count_nonzero(freq)),
        "hapax_types": float(coc[0]),
        "mean_sentence_length": float(lengths.mean()) if lengths.size else float("nan"),
        "sd_sentence_length": float(lengths.std()) if lengths.size else float("nan"),
        "unk_share": float(np.mean(ids == vocab.unk_id)) if ids.size else float("nan"),
        "unseen_ngram_share": unseen_ngram_share(counts, novelty, order) if counts is not None and novelty is not None else float("nan"),
    }
    return {
        "scalars": scalars,
        "count_of_counts": coc,
        "type_token": type_token_curve(ids, checkpoints),
        "sentence_length": sentence_length_histogram(lengths, length_edges),
    }


@dataclass
class PosteriorPredictiveCheck:
    """Observed statistics, their replicates and Bayesian p-values (see :func:`posterior_predictive_check`)."""

    observed_corpus: str  # "train" or "test"
    observed_sentences: int
    observed_tokens: int
    replicate_sentences: int
    novelty_sentences: int
    draws: np.ndarray  # flattened posterior sample used per replicate
    seeds: np.ndarray
    observed: dict  # corpus_statistics of the observed text
    replicated: list  # corpus_statistics per replicate
    checkpoints: np.ndarray
    length_edges: np.ndarray
    replicate_tokens: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def scalar(self, name: str) -> np.ndarray:
        """Replicated values of one scalar statistic, shape (replicates,)."""
        return np.array([r["scalars"][name] for r in self.replicated], dtype=float)

    def curve(self, name: str) -> np.ndarray:
        """Replicated curves of one statistic, shape (replicates, points)."""
        return np.stack([np.asarray(r[name], dtype=float) for r in self.replicated])

    def p_values(self) -> dict:
        out = {}
        for name in STATISTICS:
            p, two = bayesian_p_value(self.scalar(name), self.observed["scalars"][name])
            out[name] = (p, two)
        return out

    def to_dict(self) -> dict:
        stats = {}
        pv = self.p_values()
        for name, description in STATISTICS.items():
            rep = self.scalar(name)
            obs = self.observed["scalars"][name]
            finite = rep[np.isfinite(rep)]
            stats[name] = {
                "description": description,
                "observed": obs,
                "replicated": rep.tolist(),
                "replicated_mean": float(finite.mean()) if finite.size else None,
                "replicated_sd": float(finite.std(ddof=1)) if finite.size > 1 else None,
                "replicated_q025": float(np.quantile(finite, 0.025)) if finite.size else None,
                "replicated_q975": float(np.quantile(finite, 0.975)) if finite.size else None,
                "p_value": pv[name][0],
                "p_value_two_sided": pv[name][1],
            }
        return {
            "observed_corpus": self.observed_corpus,
            "observed_sentences": self.observed_sentences,
            "observed_tokens": self.observed_tokens,
            "replicates": len(self.replicated),
            "replicate_sentences": self.replicate_sentences,
            "replicate_tokens": [int(t) for t in self.replicate_tokens],
            "novelty_sentences": self.novelty_sentences,
            "draws": [int(d) for d in self.draws],
            "seeds": [int(s) for s in self.seeds],
            "statistics": stats,
            "count_of_counts": {
                "count": list(range(1, COC_MAX + 1)),
                "observed": [int(v) for v in self.observed["count_of_counts"]],
                "replicated": [[int(v) for v in r["count_of_counts"]] for r in self.replicated],
            },
            "type_token": {
                "tokens": [int(t) for t in self.checkpoints],
                "observed": self.observed["type_token"].tolist(),
                "replicated": [r["type_token"].tolist() for r in self.replicated],
            },
            "sentence_length": {
                "bin_edges": [int(e) for e in self.length_edges],
                "observed": [int(v) for v in self.observed["sentence_length"]],
                "replicated": [[int(v) for v in r["sentence_length"]] for r in self.replicated],
            },
        }


def posterior_predictive_check(model, observed: Corpus, *, test: Corpus | None = None, observed_corpus: str = "test",
                               replicates: int = 20, random_seed=0, training_counts=None) -> PosteriorPredictiveCheck:
    """Draw ``replicates`` corpora of the observed size from ``model`` and compare statistics.

    Parameters
    ----------
    model : BayesianLM
        A fitted model with the ``SamplesSentences`` ability
        (``sample_sentences(n, random_seed=, draw=)``) and ``n_samples``.
    observed : Corpus
        The text the replicates are compared with, in the model's vocabulary: the training
        text (``observed_corpus="train"``) or the held-out text (``"test"``). Each replicate
        has as many sentences.
    test : Corpus, optional
        Held-out text in the model's vocabulary, for the unseen-n-gram share; its
        replicated value is measured on the first ``test.n_sentences`` sentences of each
        replicate (or on a separate test-sized replicate if the replicate is shorter).
        Needs ``training_counts``; NaN without them.
    replicates : int
        Number of replicate corpora (one evenly spaced posterior draw each).
    random_seed : int
        Seeds of the replicates derive from it (``numpy.random.SeedSequence``).
    training_counts : NgramCounts, optional
        The n-gram counts of the training text (``model.training_counts``), at the
        model's order: the reference of the unseen-n-gram share.
    """
    if int(replicates) < 1:
        raise ConfigError(f"replicates must be at least 1, got {replicates}")
    replicates = int(replicates)
    counts = training_counts
    novelty_obs = test if test is not None else (observed if observed_corpus == "test" else None)
    checkpoints = type_token_checkpoints(observed.n_tokens)
    edges = sentence_length_edges(observed.sentence_lengths)
    obs_stats = corpus_statistics(observed, checkpoints=checkpoints, length_edges=edges, counts=counts,
                                  novelty=novelty_obs)
    n_samples = int(model.n_samples)
    draws = np.linspace(0, n_samples - 1, replicates).round().astype(np.int64)
    seeds = np.random.SeedSequence(random_seed).generate_state(replicates).astype(np.int64)
    n_rep = observed.n_sentences
    n_nov = novelty_obs.n_sentences if novelty_obs is not None else 0
    rep_stats, rep_tokens = [], []
    for draw, seed in zip(draws, seeds):
        rep = model.sample_sentences(n_rep, random_seed=int(seed), draw=int(draw))
        if novelty_obs is None:
            novelty = None
        elif n_nov == n_rep:
            novelty = rep
        elif n_nov < n_rep:  # sentences of a replicate are independent: its first n_nov form one
            novelty = rep.select(np.arange(n_nov))
        else:
            novelty = model.sample_sentences(n_nov, random_seed=int(seed) + 1, draw=int(draw))
        rep_stats.append(corpus_statistics(rep, checkpoints=checkpoints, length_edges=edges, counts=counts,
                                           novelty=novelty))
        rep_tokens.append(rep.n_tokens)
    return PosteriorPredictiveCheck(
        observed_corpus=observed_corpus,
        observed_sentences=observed.n_sentences,
        observed_tokens=observed.n_tokens,
        replicate_sentences=n_rep,
        novelty_sentences=n_nov,
        draws=draws,
        seeds=seeds,
        observed=obs_stats,
        replicated=rep_stats,
        checkpoints=checkpoints,
        length_edges=edges,
        replicate_tokens=np.asarray(rep_tokens, dtype=np.int64),
    )
