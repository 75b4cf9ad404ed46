"""The posterior predictive checks section: does the model reproduce the text's statistics?

Available for a model with the ``SamplesSentences`` ability; the unseen-n-gram share also
needs its ``training_counts`` (:mod:`bayeslm.stats.ppc` says what each statistic is).
"""

from __future__ import annotations

from bayeslm.core.protocol import SamplesSentences
from bayeslm.stats.ppc import posterior_predictive_check
from bayeslm.text.corpus import Corpus

__all__ = ["FLAG_TWO_SIDED_BELOW", "predictive_checks_section"]

#: a statistic whose two-sided Bayesian p-value is below this is flagged
FLAG_TWO_SIDED_BELOW = 0.05


def predictive_checks_section(model, test: Corpus, train: Corpus | None, replicates: int, random_seed) -> dict:
    """Replicate corpora against the training text (if given) or the held-out text.

    ``test`` and ``train`` are in the model's vocabulary. Returns ``{"available": False,
    "reason": ...}`` for a model that cannot sample sentences.
    """
    if not isinstance(model, SamplesSentences):
        return {"available": False,
                "reason": f"{type(model).__name__} cannot draw replicate corpora (it has no SamplesSentences ability)"}
    if not model.can_sample_sentences:
        return {"available": False, "reason": f"{type(model).__name__} cannot draw replicate corpora (a part of it "
                                              "has no SamplesSentences ability)"}
    observed, which = (train, "train") if train is not None else (test, "test")
    check = posterior_predictive_check(model, observed, test=test, observed_corpus=which, replicates=replicates,
                                       random_seed=random_seed, training_counts=model.training_counts)
    out = {"available": True, **check.to_dict()}
    flagged = [name for name, s in out["statistics"].items()
               if s["p_value_two_sided"] is not None and s["p_value_two_sided"] < FLAG_TWO_SIDED_BELOW]
    out["flag_two_sided_below"] = FLAG_TWO_SIDED_BELOW
    out["flagged"] = flagged
    return out
