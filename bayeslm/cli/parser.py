"""The argument parser of ``bayeslm``, with the documented limits of every number it takes.

A usage error is one line (``bayeslm: error: argument --n: must be ...``) with exit
status 2, like every other error of the command line.
"""

from __future__ import annotations

import argparse
import math

from bayeslm.cli import commands
from bayeslm.stats.intervals import HDI_PROB

__all__ = ["build_parser", "PROG", "MAX_CONTINUATIONS", "MAX_GENERATED_TOKENS", "MAX_SEED", "MAX_REPLICATES",
           "MAX_DEMO_DRAWS", "MAX_PASSAGE_TOKENS"]

PROG = "bayeslm"
MAX_CONTINUATIONS = 100  # generate --n
MAX_GENERATED_TOKENS = 2000  # generate --max-tokens: 100 x 2,000 tokens take minutes, not hours
MAX_SEED = 2**32 - 1
MAX_REPLICATES = 1000  # report --replicates
MAX_PASSAGE_TOKENS = 10_000  # report --passage-tokens
MAX_DEMO_DRAWS = 100_000  # demo --draws


class _Parser(argparse.ArgumentParser):
    """argparse with its errors on one line (no usage block), exit status 2."""

    def error(self, message):
        self.exit(2, f"{PROG}: error: {message} (see '{self.prog} --help')\n")


def int_in(low: int, high: int):
    """argparse type: a whole number in ``low..high``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be a whole number in {low}..{high}, got {text!r}")
        return value
    return parse


def float_in(low: float, high: float, *, low_open: bool = False, high_open: bool = False):
    """argparse type: a finite number in the interval (``low_open``/``high_open``: ends excluded)."""
    shown = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        inside = (low < value if low_open else low <= value) and (value < high if high_open else value <= high)
        if not (math.isfinite(value) and inside):
            raise argparse.ArgumentTypeError(f"must be a number in {shown}, got {text!r}")
        return value
    return parse


SEED = int_in(0, MAX_SEED)
HDI = float_in(0.0, 1.0, low_open=True, high_open=True)


def build_parser() -> argparse.ArgumentParser:
    from bayeslm.version import __version__
    parser = _Parser(prog=PROG, description="Bayesian language models with uncertainty.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_fit(sub)

    p = sub.add_parser("evaluate", help="perplexity and bits per token on held-out text")
    p.add_argument("model", help="model directory")
    p.add_argument("--test", nargs="+", required=True, metavar="PATH")
    p.add_argument("--hdi-prob", type=HDI, default=HDI_PROB, help="credible mass of the intervals, in (0, 1)")
    p.add_argument("--per-token", metavar="FILE.csv", help="write one row per scored position")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=commands.cmd_evaluate)

    p = sub.add_parser("score", help="log probability of sentences read from standard input (UTF-8)")
    p.add_argument("model")
    p.add_argument("--per-token", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=commands.cmd_score)

    p = sub.add_parser("tokenize", help="print the token stream exactly as the model sees it")
    p.add_argument("model")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--unk", default=None, metavar="TOKEN", help="print unknown tokens as TOKEN (e.g. <oov> for KenLM)")
    p.set_defaults(func=commands.cmd_tokenize)

    p = sub.add_parser("demo", help="fit and evaluate a model on the built-in demo corpus")
    p.add_argument("--order", type=int_in(1, commands.MAX_NGRAM_ORDER), default=3)
    p.add_argument("--draws", type=int_in(1, MAX_DEMO_DRAWS), default=1000, help="draws and tuning steps per chain")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--out", help="also save the model directory here")
    p.add_argument("--force", action="store_true", help="replace an existing model directory (or empty folder)")
    p.set_defaults(func=commands.cmd_demo)

    _add_generate(sub)
    _add_report(sub)

    p = sub.add_parser("export", help="write an n-gram model as an ARPA back-off file (KenLM, SRILM)")
    p.add_argument("model", help="model directory (dirichlet or pitman-yor)")
    p.add_argument("--arpa", required=True, metavar="FILE", help="ARPA file to write")
    p.add_argument("--sample", type=int_in(0, 10**9), default=None, metavar="I",
                   help="pitman-yor: export retained posterior sample I exactly (default: the mean model)")
    p.set_defaults(func=commands.cmd_export)

    p = sub.add_parser("models", help="list the named configurations")
    p.set_defaults(func=commands.cmd_models)
    return parser


def _add_fit(sub) -> None:
    p = sub.add_parser("fit", help="fit a named configuration (models/) or a TOML file")
    p.add_argument("config", help="a name from 'bayeslm models' or a path to a TOML file")
    p.add_argument("--train", nargs="+", required=True, metavar="PATH", help="files, directories (*.txt) or quoted globs")
    p.add_argument("--valid", nargs="+", metavar="PATH", help="validation text, for settings the config leaves open")
    p.add_argument("--out", required=True, help="model directory to write")
    p.add_argument("--seed", type=SEED, help="random seed of the sampler")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override a config value")
    p.add_argument("--force", action="store_true", help="replace an existing model directory (or empty folder)")
    p.add_argument("--keep-partial", action="store_true",
                   help="on Ctrl-C or SIGTERM while sampling, save the draws so far (the model is marked partial)")
    p.add_argument("--quiet", action="store_true", help="print nothing but the result (no progress, logs, warnings)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--dask", action="store_true",
                   help="n-gram models: read and count --train on a local Dask cluster (pip install 'bayeslm[dask]')")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="count on the dask.distributed cluster at ADDRESS (implies --dask)")
    p.set_defaults(func=commands.cmd_fit)


def _add_generate(sub) -> None:
    p = sub.add_parser("generate", help="sample continuations of a prompt, each token annotated with its uncertainty")
    p.add_argument("model")
    p.add_argument("--prompt", default="", help="text to continue (empty: start a sentence)")
    p.add_argument("--n", type=int_in(1, MAX_CONTINUATIONS), default=5,
                   help=f"number of continuations (1..{MAX_CONTINUATIONS})")
    p.add_argument("--max-tokens", type=int_in(1, MAX_GENERATED_TOKENS), default=40,
                   help=f"most tokens per continuation (1..{MAX_GENERATED_TOKENS})")
    p.add_argument("--seed", type=SEED, default=None)
    p.add_argument("--temperature", type=float_in(0.0, 1e6, low_open=True), default=1.0)
    p.add_argument("--top-k", type=int_in(1, 10**9), default=None)
    p.add_argument("--top-p", type=float_in(0.0, 1.0, low_open=True), default=None)
    p.add_argument("--stop", default=None, help="stop string")
    p.add_argument("--predictive", action="store_true", help="sample the posterior predictive at every step")
    p.add_argument("--mi-threshold", type=float_in(0.0, 1e6), default=None, metavar="BITS",
                   help="flag tokens with more mutual information")
    p.add_argument("--no-color", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=commands.cmd_generate)


def _add_report(sub) -> None:
    p = sub.add_parser("report", help="HTML page and JSON of diagnostics, predictive checks, entropy and comparison")
    p.add_argument("model", help="model directory")
    p.add_argument("--test", nargs="+", required=True, metavar="PATH", help="held-out text")
    p.add_argument("--out", required=True, metavar="FILE.html", help="the page; the JSON goes beside it (same stem, .json)")
    p.add_argument("--compare", nargs="+", metavar="DIR", help="other model directories, ranked on the same tokens")
    p.add_argument("--train", nargs="+", metavar="PATH",
                   help="training text: posterior predictive checks against it (default: against the held-out text)")
    p.add_argument("--replicates", type=int_in(1, MAX_REPLICATES), default=20,
                   help="replicate corpora for the predictive checks")
    p.add_argument("--hdi-prob", type=HDI, default=HDI_PROB)
    p.add_argument("--seed", type=SEED, default=0, help="seed of the replicate corpora")
    p.add_argument("--passage-tokens", type=int_in(1, MAX_PASSAGE_TOKENS), default=60,
                   help="positions shown along the passage plot")
    p.add_argument("--prompt", action="append", metavar="TEXT", help="add sampled continuations of TEXT (repeatable)")
    p.set_defaults(func=commands.cmd_report)
