"""The argument parser of ``bayeslm``: every option with its help, default, units and limits.

Every option's help says what it does, its default (``%(default)s``, or in words when the
default is "none given"), its units and its limits (a :class:`Range` prints as its
limits, so a help text shows the limits the parser enforces). A usage error is one line
(``bayeslm: error: argument --n: must be ...``) with exit status 2, like every other error
of the command line. ``docs/cli.md`` describes the commands and their output.
"""

from __future__ import annotations

import argparse
import math

from bayeslm.cli import commands
from bayeslm.stats.intervals import HDI_PROB

__all__ = ["build_parser", "Range", "int_in", "float_in", "PROG", "MAX_CONTINUATIONS", "MAX_GENERATED_TOKENS",
           "MAX_SEED", "MAX_REPLICATES", "MAX_DEMO_DRAWS", "MAX_PASSAGE_TOKENS"]

PROG = "bayeslm"
MAX_CONTINUATIONS = 100  # generate --n
MAX_GENERATED_TOKENS = 2000  # generate --max-tokens: 100 x 2,000 tokens take minutes, not hours
MAX_SEED = 2**32 - 1
MAX_REPLICATES = 1000  # report --replicates
MAX_PASSAGE_TOKENS = 10_000  # report --passage-tokens
MAX_DEMO_DRAWS = 100_000  # demo --draws

GENERATE_EPILOG = """\
output, per continuation (docs/cli.md explains every number):
  [1] draw 37  log p -23.41 bits  mean H 4.12 bits  mean MI 0.231 bits  1 flagged  (eos)
      PROMPT and the sampled text
      unsure (MI above 0.512 bits): the flagged tokens
  draw: the posterior draw held for the whole continuation (- with --predictive);
  log p: log2 probability of the sampled tokens under the posterior predictive;
  mean H / mean MI: predictive entropy / mutual information (epistemic) per token;
  flagged: tokens whose mutual information exceeds the threshold (--mi-threshold);
  (eos): why it stopped: eos (</s> drawn), stop_string (--stop), max_tokens.
In a terminal (without --no-color) the 'unsure' line is replaced by colours: each
token's background goes from white (no mutual information) to red (at or above the
threshold), flagged tokens are underlined, and a last line gives the scale."""


class _Parser(argparse.ArgumentParser):
    """argparse with its errors on one line (no usage block), exit status 2."""

    def error(self, message):
        self.exit(2, f"{PROG}: error: {message} (see '{self.prog} --help')\n")


class Range:
    """argparse type: a whole number (``whole``) or a finite number within limits.

    ``str()`` gives the limits as help texts show them (``1..100``, ``(0, 1)``); a value
    outside them is a usage error naming them.
    """

    def __init__(self, low, high, *, whole: bool, low_open: bool = False, high_open: bool = False):
        self.low, self.high, self.whole = low, high, whole
        self.low_open, self.high_open = low_open, high_open

    def __str__(self) -> str:
        if self.whole:
            return f"{self.low}..{self.high}"
        return f"{'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"

    def __call__(self, text: str):
        try:
            value = int(text) if self.whole else float(text)
        except ValueError:
            value = math.nan
        above = self.low < value if self.low_open else self.low <= value
        below = value < self.high if self.high_open else value <= self.high
        if not (math.isfinite(value) and above and below):
            kind = "a whole number" if self.whole else "a number"
            raise argparse.ArgumentTypeError(f"must be {kind} in {self}, got {text!r}")
        return value


def int_in(low: int, high: int) -> Range:
    """argparse type: a whole number in ``low..high``."""
    return Range(low, high, whole=True)


def float_in(low: float, high: float, *, low_open: bool = False, high_open: bool = False) -> Range:
    """argparse type: a finite number in the interval (``low_open``/``high_open``: ends excluded)."""
    return Range(low, high, whole=False, low_open=low_open, high_open=high_open)


SEED = int_in(0, MAX_SEED)
HDI = float_in(0.0, 1.0, low_open=True, high_open=True)
HDI_HELP = "probability mass of the credible intervals (highest-density, over posterior draws), in %(type)s (default: %(default)s)"
QUIET_HELP = "print nothing but the results: no progress bars, no log lines or warnings of the libraries"


def _add_json_and_quiet(p: argparse.ArgumentParser, schema: str) -> None:
    """``--json`` (one JSON object of ``schema``) and ``--quiet``, for a command that prints results."""
    p.add_argument("--json", action="store_true", help=f"print one JSON object (schema {schema})")
    p.add_argument("--quiet", action="store_true", help=QUIET_HELP)


def _sub(sub, name: str, text: str, **kwargs) -> argparse.ArgumentParser:
    """A command's parser: ``text`` is its line in ``bayeslm --help`` and the start of its own help."""
    return sub.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".", **kwargs)


def build_parser() -> argparse.ArgumentParser:
    from bayeslm.version import __version__
    parser = _Parser(prog=PROG, description="Bayesian language models with uncertainty. Numbers a person reads "
                     "are in bits (log probabilities in base 2); see docs/cli.md.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_fit(sub)
    _add_adapt(sub)
    _add_mix(sub)
    _add_evaluate(sub)
    _add_score(sub)

    p = _sub(sub, "tokenize", "print the token stream exactly as the model sees it, one sentence per line")
    p.add_argument("model", help="model directory")
    p.add_argument("paths", nargs="+", metavar="PATH", help="files, directories (*.txt) or quoted globs")
    p.add_argument("--unk", default=None, metavar="TOKEN",
                   help="print unknown tokens as TOKEN, e.g. <oov> for KenLM (default: <unk>)")
    p.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    p.set_defaults(func=commands.cmd_tokenize)

    p = _sub(sub, "demo", "fit and evaluate a Dirichlet-smoothed n-gram model on the built-in demo corpus")
    p.add_argument("--order", type=int_in(1, commands.MAX_NGRAM_ORDER), default=3,
                   help="n-gram order, %(type)s (default: %(default)s)")
    p.add_argument("--draws", type=int_in(1, MAX_DEMO_DRAWS), default=1000,
                   help="posterior draws and tuning steps per chain (2 chains), %(type)s (default: %(default)s)")
    p.add_argument("--seed", type=SEED, default=0,
                   help="seed of the train/test split and the sampler, %(type)s (default: %(default)s)")
    p.add_argument("--out", metavar="DIR", help="also save the model directory here (default: not saved)")
    p.add_argument("--force", action="store_true", help="replace an existing model directory (or empty folder)")
    p.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    p.set_defaults(func=commands.cmd_demo)

    _add_generate(sub)
    _add_report(sub)

    p = _sub(sub, "export", "write an n-gram model as an ARPA back-off file (KenLM, SRILM)")
    p.add_argument("model", help="model directory (dirichlet or pitman-yor)")
    p.add_argument("--arpa", required=True, metavar="FILE", help="ARPA file to write (log10 probabilities, as ARPA is)")
    p.add_argument("--sample", type=int_in(0, 10**9), default=None, metavar="I",
                   help="pitman-yor: export retained posterior sample I exactly, %(type)s "
                        "(default: the posterior-predictive mean model)")
    p.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    p.set_defaults(func=commands.cmd_export)

    p = _sub(sub, "models", "list the named configurations (models/*.toml)")
    p.set_defaults(func=commands.cmd_models)
    return parser


def _add_model_output(p: argparse.ArgumentParser, out_help: str, seed_default: str, set_help: str) -> None:
    """``--out``, ``--seed``, ``--set`` and ``--force``, for a command that writes a model directory."""
    p.add_argument("--out", required=True, metavar="DIR", help=out_help)
    p.add_argument("--seed", type=SEED, metavar="SEED",
                   help=f"random seed of the sampler, %(type)s (default: {seed_default})")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help=set_help)
    p.add_argument("--force", action="store_true", help="replace an existing model directory (or empty folder)")


def _add_fit(sub) -> None:
    p = _sub(sub, "fit", "fit a named configuration (models/) or a TOML file and save the model directory")
    p.add_argument("config", help="a name from 'bayeslm models' or a path to a TOML file")
    p.add_argument("--train", nargs="+", required=True, metavar="PATH", help="files, directories (*.txt) or quoted globs")
    p.add_argument("--valid", nargs="+", metavar="PATH",
                   help="validation text, for settings the configuration leaves open and the generator's flag "
                        "threshold (default: none; the threshold then comes from training text)")
    _add_model_output(p, "model directory to write", "the configuration's sampler.random_seed",
                      "override a configuration value, repeatable (default: none; docs/config.md)")
    p.add_argument("--keep-partial", action="store_true",
                   help="on Ctrl-C or SIGTERM while sampling, save the draws so far (the model is marked partial)")
    _add_json_and_quiet(p, "bayeslm.fit/1")
    p.add_argument("--dask", action="store_true",
                   help="n-gram models: read and count --train on a local Dask cluster (pip install 'bayeslm[dask]')")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="count on the dask.distributed cluster at ADDRESS, implies --dask (default: a local cluster)")
    p.set_defaults(func=commands.cmd_fit)


def _add_adapt(sub) -> None:
    p = _sub(sub, "adapt", "adapt a fitted Dirichlet or Pitman-Yor n-gram model or a GPT to domain text and save the adapted model directory")
    p.add_argument("base", metavar="BASE_DIR", help="the general model's directory (family dirichlet, pitman-yor or gpt-bll); it is not changed")
    p.add_argument("--train", nargs="+", required=True, metavar="PATH",
                   help="domain text: files, directories (*.txt) or quoted globs, read with the general model's tokenizer")
    p.add_argument("--valid", nargs="+", metavar="PATH",
                   help="domain validation text: the domain's powers are learned from its predictive probability "
                        "given the domain text, and it sets the generator's flag threshold (default: none; the powers "
                        "then come from the domain text's own evidence; docs/domain.md)")
    _add_model_output(p, "adapted model directory to write", "the general model's sampler.random_seed",
                      "override a sampler setting (sampler.KEY), the prior of the domain's powers "
                      "(prior.concentration.KEY; a Pitman-Yor model: prior.discount.KEY, "
                      "prior.strength_plus_discount.KEY, prior.general_weight.KEY, model.rounds, model.sweeps, "
                      "model.table_moves, model.seatings, model.retain; a GPT: "
                      "prior.power.KEY, model.power, model.fit_positions, model.head=bayes|map) or "
                      "model.entropy_draws, repeatable (default: the general model's "
                      "sampler settings, the default prior; docs/domain.md)")
    _add_json_and_quiet(p, "bayeslm.adapt/1")
    p.set_defaults(func=commands.cmd_adapt, keep_partial=False)


def _add_mix(sub) -> None:
    p = _sub(sub, "mix", "combine fitted models of one tokenizer into a mixture whose weights are fitted on validation text")
    p.add_argument("models", nargs="+", metavar="MODEL_DIR",
                   help="two or more model directories with the same tokenizer and vocabulary (any families)")
    p.add_argument("--valid", nargs="+", required=True, metavar="PATH",
                   help="text none of the models was trained on: the weights' posterior is fitted on it")
    _add_model_output(p, "mixture model directory to write (it holds its components)", "none: a fresh one",
                      "override a sampler setting (sampler.KEY), model.concentration (the weights' Dirichlet "
                      "prior, default 1) or model.entropy_draws (default 8), repeatable (default: none; docs/mixture.md)")
    _add_json_and_quiet(p, "bayeslm.mix/1")
    p.set_defaults(func=commands.cmd_mix, keep_partial=False)


def _add_evaluate(sub) -> None:
    p = _sub(sub, "evaluate", "cross-entropy (bits per token) and perplexity on held-out text, with credible intervals")
    p.add_argument("model", help="model directory")
    p.add_argument("--test", nargs="+", required=True, metavar="PATH", help="held-out text: files, directories or globs")
    p.add_argument("--hdi-prob", type=HDI, default=HDI_PROB, help=HDI_HELP)
    p.add_argument("--per-token", metavar="FILE.csv",
                   help="also write one CSV row per scored position: token, log_prob_bits, entropy_bits, "
                        "aleatoric_bits, epistemic_bits (default: not written)")
    p.add_argument("--log10", action="store_true",
                   help="add a log10_prob column to --per-token (base-10 log probability, as KenLM prints it)")
    _add_json_and_quiet(p, "bayeslm.evaluate/2")
    p.set_defaults(func=commands.cmd_evaluate)


def _add_score(sub) -> None:
    p = _sub(sub, "score", "log probability (bits) of each sentence on standard input (UTF-8, one per line), "
             "with its credible interval and entropy split")
    p.add_argument("model", help="model directory")
    p.add_argument("--per-token", action="store_true",
                   help="one row per scored position (its log probability and entropy split) instead of per sentence")
    p.add_argument("--hdi-prob", type=HDI, default=HDI_PROB, help=HDI_HELP)
    p.add_argument("--log10", action="store_true",
                   help="add a log10_prob column (base-10 log probability, to compare with KenLM's query)")
    _add_json_and_quiet(p, "bayeslm.score/2")
    p.set_defaults(func=commands.cmd_score)


def _add_generate(sub) -> None:
    p = _sub(sub, "generate", "sample continuations of a prompt, each token annotated with its uncertainty",
             epilog=GENERATE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="model directory")
    p.add_argument("--prompt", default="", help="text to continue (default: empty, start a sentence)")
    p.add_argument("--n", type=int_in(1, MAX_CONTINUATIONS), default=5,
                   help="number of continuations, %(type)s (default: %(default)s)")
    p.add_argument("--max-tokens", type=int_in(1, MAX_GENERATED_TOKENS), default=40,
                   help="most tokens per continuation, %(type)s (default: %(default)s)")
    p.add_argument("--seed", type=SEED, default=None,
                   help="random seed: the same seed gives the same continuations, %(type)s (default: a fresh seed)")
    p.add_argument("--temperature", type=float_in(0.0, 1e6, low_open=True), default=1.0,
                   help="divide log probabilities by this before sampling, %(type)s (default: %(default)s)")
    p.add_argument("--top-k", type=int_in(1, 10**9), default=None, metavar="K",
                   help="sample among the K most probable tokens, %(type)s (default: all)")
    p.add_argument("--top-p", type=float_in(0.0, 1.0, low_open=True), default=None, metavar="P",
                   help="sample among the fewest most probable tokens holding probability P, %(type)s (default: all)")
    p.add_argument("--stop", default=None, metavar="TEXT",
                   help="end a continuation where its text contains TEXT (default: only at </s> or --max-tokens)")
    p.add_argument("--predictive", action="store_true",
                   help="sample the posterior predictive at every step instead of holding one posterior draw "
                        "per continuation")
    p.add_argument("--mi-threshold", type=float_in(0.0, 1e6), default=None, metavar="BITS",
                   help="flag tokens whose mutual information (epistemic uncertainty) exceeds BITS bits, %(type)s "
                        "(default: the model's stored threshold, the 90th percentile over its validation positions, "
                        "else training positions)")
    p.add_argument("--no-color", action="store_true",
                   help="plain text even in a terminal (colours are never written to a pipe or file)")
    _add_json_and_quiet(p, "bayeslm.generate/2")
    p.set_defaults(func=commands.cmd_generate)


def _add_report(sub) -> None:
    p = _sub(sub, "report", "HTML page and JSON of diagnostics, predictive checks, entropy and comparison")
    p.add_argument("model", help="model directory")
    p.add_argument("--test", nargs="+", required=True, metavar="PATH", help="held-out text: files, directories or globs")
    p.add_argument("--out", required=True, metavar="FILE.html", help="the page; the JSON goes beside it (same stem, .json)")
    p.add_argument("--compare", nargs="+", metavar="DIR",
                   help="other model directories, ranked on the same tokens (default: none)")
    p.add_argument("--train", nargs="+", metavar="PATH",
                   help="training text: posterior predictive checks against it (default: against the held-out text)")
    p.add_argument("--replicates", type=int_in(1, MAX_REPLICATES), default=20,
                   help="replicate corpora for the posterior predictive checks, %(type)s (default: %(default)s)")
    p.add_argument("--hdi-prob", type=HDI, default=HDI_PROB, help=HDI_HELP)
    p.add_argument("--seed", type=SEED, default=0,
                   help="seed of the replicate corpora and continuations, %(type)s (default: %(default)s)")
    p.add_argument("--passage-tokens", type=int_in(1, MAX_PASSAGE_TOKENS), default=60,
                   help="scored positions shown along the passage plot, %(type)s (default: %(default)s)")
    p.add_argument("--prompt", action="append", metavar="TEXT",
                   help="add sampled continuations of TEXT, repeatable (default: no continuations section)")
    p.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    p.set_defaults(func=commands.cmd_report)
