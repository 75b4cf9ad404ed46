"""bayeslm: Bayesian language models with uncertainty, built on PyMC and ArviZ.

Importing bayeslm never imports torch; PyMC is imported when a model is fitted.
``TinyGPT`` and its training helpers (``bayeslm.transformer``) load on first use.
"""

from bayeslm.version import __version__

from bayeslm.core.base import BayesianLM, Evaluation, load
from bayeslm.core.priors import Prior
from bayeslm.counting.counts import NgramCounts, count
from bayeslm.exceptions import (
    BayesLMError,
    ConfigError,
    CorpusError,
    DifferentModelError,
    ModelFileError,
    NotFittedError,
    VocabularyMismatchError,
)
from bayeslm.mixture.model import MixtureLM
from bayeslm.neural.gpt import GPTLM  # imports torch only inside its methods
from bayeslm.neural.adapt import AdaptedGPTLM, FineTunedGPTLM
from bayeslm.neural.last_layer import BayesianLastLayer
from bayeslm.ngram.adapt import AdaptedDirichletLM
from bayeslm.ngram.pitman_yor.adapt import AdaptedPitmanYorLM
from bayeslm.ngram.dirichlet import DirichletLM
from bayeslm.ngram.pitman_yor.model import PitmanYorLM
from bayeslm.report import (  # report.py imports matplotlib / ArviZ only when it draws
    Report,
    report,
)
from bayeslm.stats.entropy import (
    cross_entropy,
    dirichlet_expected_entropy,
    entropy,
    entropy_decomposition,
    perplexity,
    predictive_log_prob,
    to_bits,
    to_nats,
)
from bayeslm.text.corpus import Corpus, demo_corpus
from bayeslm.text.tokenize import (
    BPETokenizer,
    CharTokenizer,
    WhitespaceTokenizer,
    WordTokenizer,
    make_tokenizer,
)
from bayeslm.text.vocab import Vocabulary

__all__ = [
    "__version__",
    "AdaptedDirichletLM",
    "AdaptedGPTLM",
    "AdaptedPitmanYorLM",
    "BayesianLM",
    "BayesianLastLayer",
    "BPETokenizer",
    "CharTokenizer",
    "ConfigError",
    "Corpus",
    "CorpusError",
    "BayesLMError",
    "DifferentModelError",
    "DirichletLM",
    "FineTunedGPTLM",
    "MixtureLM",
    "Evaluation",
    "GPTConfig",
    "GPTLM",
    "ModelFileError",
    "NgramCounts",
    "NotFittedError",
    "PitmanYorLM",
    "Prior",
    "Report",
    "TinyGPT",
    "TrainConfig",
    "VocabularyMismatchError",
    "Vocabulary",
    "WhitespaceTokenizer",
    "WordTokenizer",
    "count",
    "cross_entropy",
    "demo_corpus",
    "dirichlet_expected_entropy",
    "entropy",
    "entropy_decomposition",
    "load",
    "make_tokenizer",
    "perplexity",
    "predictive_log_prob",
    "report",
    "to_bits",
    "to_nats",
    "train_gpt",
]

# the modules of these names import torch: loaded on first use
_LAZY = {"TinyGPT": "bayeslm.neural.transformer", "GPTConfig": "bayeslm.neural.transformer",
         "TrainConfig": "bayeslm.neural.training", "train_gpt": "bayeslm.neural.training"}


def __getattr__(name):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'bayeslm' has no attribute {name!r}")
