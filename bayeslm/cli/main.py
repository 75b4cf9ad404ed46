"""The ``bayeslm`` command line: fit, evaluate, score, tokenize, demo, generate, export, models.

Every error caused by the input is printed as one line ``bayeslm: error: ...`` with exit
status 2 and no traceback; nothing is written half-way (model directories are written
under a temporary name and renamed).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from pathlib import Path

from bayeslm.exceptions import BayesLMError
from bayeslm.stats.intervals import HDI_PROB

PROG = "bayeslm"


def _quiet_libraries() -> None:
    warnings.filterwarnings("ignore", category=FutureWarning, module="arviz")
    warnings.filterwarnings("ignore", message=".*ArviZ is undergoing a major refactor.*")
    logging.getLogger("pymc").setLevel(logging.WARNING)


def _print_json(obj) -> None:
    json.dump(obj, sys.stdout, indent=2, allow_nan=True)
    sys.stdout.write("\n")


def _summary_vars(model) -> list[str]:
    """Variables worth a diagnostics row (the model's ``diagnostic_var_names``)."""
    from bayeslm.stats.diagnostics import variables_to_check

    return variables_to_check(model.idata, model.diagnostic_var_names)


def _diagnostics_text(model) -> str:
    from bayeslm.stats.diagnostics import ESS_MIN, RHAT_MAX, sampler_problems, summary

    names = _summary_vars(model)
    if names == []:
        return "no MCMC diagnostics: the posterior draws are independent (not a Markov chain)"
    table = summary(model.idata, var_names=names)
    problems = sampler_problems(model.idata)
    cols = ["mean", "sd", "hdi_3%", "hdi_97%", "ess_bulk", "ess_tail", "r_hat", "ok"]
    lines = [table[[c for c in cols if c in table]].to_string()]
    lines.append(
        f"divergences: {problems.get('divergences', 'n/a')}; "
        f"checks: R-hat <= {RHAT_MAX}, ESS >= {ESS_MIN}: {'pass' if table['ok'].all() else 'FAIL'}"
    )
    return "\n".join(lines)


# -- commands ------------------------------------------------------------------------
def cmd_fit(args) -> int:
    from bayeslm.core.base import BayesianLM
    from bayeslm.core.config import apply_overrides, load_config

    config = apply_overrides(load_config(args.config), args.set)
    out = Path(args.out)
    if out.exists() and not args.force:
        raise BayesLMError(f"{out} exists; choose another --out or pass --force")
    model = BayesianLM.from_config(config)
    dask = args.dask or args.scheduler is not None
    train = None if dask else _read(model, args.train, train=True)
    valid = _read(model, args.valid, train=True) if args.valid else None
    if args.seed is not None:
        model.sampler_config["random_seed"] = args.seed
    if args.quiet:
        model.sampler_config["progressbar"] = False
    if dask:  # read, tokenise and count on the cluster; inference here on the merged counts
        from bayeslm.counting.distributed import dask_client

        with dask_client(args.scheduler) as client:
            model.fit(args.train, valid=valid, client=client)
    else:
        model.fit(train, valid=valid)
    n_train = train.n_tokens if train is not None else int(model.idata["posterior"].attrs["training_tokens"])
    model.save(out, force=args.force)
    if args.json:
        from bayeslm.stats.diagnostics import sampler_problems, summary

        names = _summary_vars(model)
        table = summary(model.idata, var_names=names) if names != [] else None
        _print_json({
            "schema": "bayeslm.fit/1", "out": str(out), "fit_seconds": model.fit_seconds_,
            "training_tokens": n_train, "vocabulary": len(model.vocab_),
            "valid": [str(v) for v in args.valid or []],
            "diagnostics": json.loads(table.to_json(orient="index")) if table is not None else {},
            **sampler_problems(model.idata),
        })
    else:
        print(f"fitted {model.family} order {model.order} on {n_train} tokens "
              f"(vocabulary {len(model.vocab_)}) in {model.fit_seconds_:.1f} s; saved to {out}")
        if args.valid:
            print(f"validation text (used only to choose open settings): {', '.join(args.valid)}")
        print(_diagnostics_text(model))
    return 0


def _read(model, paths, train: bool = False):
    from bayeslm.text.corpus import Corpus

    if train:
        return Corpus.from_paths(paths, tokenizer=model.tokenizer)
    return model.read(paths)


def cmd_evaluate(args) -> int:
    from bayeslm.core.base import load

    model = load(args.model)
    test = model.read(args.test)
    result = model.evaluate(test, hdi_prob=args.hdi_prob)
    if args.per_token:
        _write_csv(model.per_token(test), Path(args.per_token))
    if args.json:
        _print_json({**result.to_dict(), "test": list(args.test)})
    else:
        print(result)
    return 0


def _write_csv(frame, path: Path) -> None:
    from bayeslm.core.files import atomic_write_text

    if not path.parent.exists():
        raise BayesLMError(f"{path}: directory {path.parent} does not exist")
    atomic_write_text(path, frame.to_csv(index=False))


def cmd_score(args) -> int:
    from bayeslm.core.base import load

    model = load(args.model)
    lines = [line for line in sys.stdin.read().splitlines() if line.strip()]
    if not lines:
        raise BayesLMError("no sentences on standard input")
    frame = model.score(lines, per_token=args.per_token)
    if args.json:
        _print_json({"schema": "bayeslm.score/1", "per_token": bool(args.per_token),
                     "rows": json.loads(frame.to_json(orient="records"))})
        return 0
    if args.per_token:
        for row in frame.itertuples(index=False):
            print(f"{row.sentence}\t{row.token}\t{row.log10_prob:.6f}\t{row.log_prob_nats:.6f}" + ("\tOOV" if row.oov else ""))
    else:
        print("log10_prob\tlog_prob_nats\ttokens\toov\ttext")
        for row in frame.itertuples(index=False):
            print(f"{row.log10_prob:.6f}\t{row.log_prob_nats:.6f}\t{row.tokens}\t{row.oov}\t{row.text}")
    return 0


def cmd_tokenize(args) -> int:
    from bayeslm.core.base import load

    model = load(args.model)
    corpus = model.read(args.paths)
    out = sys.stdout
    for line in corpus.decode_lines(unk=args.unk):
        out.write(line + "\n")
    return 0


def cmd_demo(args) -> int:
    from bayeslm.ngram.dirichlet import DirichletLM
    from bayeslm.text.corpus import demo_corpus

    print("bayeslm demo: a Dirichlet-smoothed n-gram model on the Python documentation topics "
          "(the standard library's pydoc_data), 90% of the lines for training, 10% held out.")
    train, test = demo_corpus().split(0.9, random_seed=args.seed)
    print(f"train: {train.n_sentences} sentences, {train.n_tokens} tokens; test: {test.n_sentences} sentences")
    lm = DirichletLM(order=args.order, min_count=2, sampler_config={"draws": args.draws, "tune": args.draws})
    lm.fit(train, random_seed=args.seed)
    print(f"fitted in {lm.fit_seconds_:.1f} s (vocabulary {len(lm.vocab_)})")
    print(_diagnostics_text(lm))
    print("held-out evaluation (bits per token and perplexity, 94% HDI over posterior draws):")
    print(lm.evaluate(test))
    if args.out:
        lm.save(args.out, force=args.force)
        print(f"saved to {args.out}")
    return 0


def cmd_generate(args) -> int:
    from bayeslm.core.base import load
    from bayeslm.core.generation import format_terminal, to_json

    model = load(args.model)
    continuations = model.generate(
        args.prompt, n=args.n, max_tokens=args.max_tokens, random_seed=args.seed,
        temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, stop=args.stop,
        mode="predictive" if args.predictive else "draw", mi_threshold_bits=args.mi_threshold,
    )
    if args.json:
        sys.stdout.write(to_json(continuations) + "\n")
    else:
        print(format_terminal(continuations, color=False if args.no_color else None))
    return 0


def cmd_report(args) -> int:
    import time

    from bayeslm.core.base import load
    from bayeslm.report.build import output_paths, report

    start = time.perf_counter()
    html_path, json_path = output_paths(args.out)  # fail before any work
    model = load(args.model)
    test = _read(model, args.test, train=True)  # the text's own vocabulary: the page shows OOV words as written
    train = _read(model, args.train, train=True) if args.train else None
    others = [load(path) for path in args.compare or []]
    labels = [Path(path).name or str(path) for path in [args.model, *(args.compare or [])]]
    result = report(model, test, compare=others, labels=labels, train=train, replicates=args.replicates,
                    hdi_prob=args.hdi_prob, random_seed=args.seed, passage_tokens=args.passage_tokens,
                    prompts=args.prompt or ())
    result.write(html_path)
    print(result)
    print(f"wrote {html_path} and {json_path} in {time.perf_counter() - start:.1f} s")
    return 0


def cmd_export(args) -> int:
    from bayeslm.core.base import load
    from bayeslm.ngram.arpa import write_arpa

    model = load(args.model)
    sizes = write_arpa(model, Path(args.arpa), sample=args.sample)
    what = "posterior-predictive (mean) model" if args.sample is None else f"retained sample {args.sample}"
    print(f"wrote {args.arpa}: {model.family} order {model.order}, {what}; n-grams "
          + ", ".join(f"{k}: {v}" for k, v in sizes.items()))
    return 0


def cmd_models(args) -> int:
    from bayeslm.core.config import list_configs

    for name, description in sorted(list_configs().items()):
        print(f"{name:28s} {description}")
    return 0


# -- parser --------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    from bayeslm.version import __version__
    parser = argparse.ArgumentParser(prog=PROG, description="Bayesian language models with uncertainty.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("fit", help="fit a named configuration (models/) or a TOML file")
    p.add_argument("config", help="a name from 'bayeslm models' or a path to a TOML file")
    p.add_argument("--train", nargs="+", required=True, metavar="PATH", help="files, directories (*.txt) or quoted globs")
    p.add_argument("--valid", nargs="+", metavar="PATH", help="validation text, for settings the config leaves open")
    p.add_argument("--out", required=True, help="model directory to write")
    p.add_argument("--seed", type=int, help="random seed of the sampler")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override a config value")
    p.add_argument("--force", action="store_true", help="replace an existing --out directory")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--dask", action="store_true",
                   help="n-gram models: read and count --train on a local Dask cluster (pip install 'bayeslm[dask]')")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="count on the dask.distributed cluster at ADDRESS (implies --dask)")
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("evaluate", help="perplexity and bits per token on held-out text")
    p.add_argument("model", help="model directory")
    p.add_argument("--test", nargs="+", required=True, metavar="PATH")
    p.add_argument("--hdi-prob", type=float, default=HDI_PROB)
    p.add_argument("--per-token", metavar="FILE.csv", help="write one row per scored position")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("score", help="log probability of sentences read from standard input")
    p.add_argument("model")
    p.add_argument("--per-token", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("tokenize", help="print the token stream exactly as the model sees it")
    p.add_argument("model")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--unk", default=None, metavar="TOKEN", help="print unknown tokens as TOKEN (e.g. <oov> for KenLM)")
    p.set_defaults(func=cmd_tokenize)

    p = sub.add_parser("demo", help="fit and evaluate a model on the built-in demo corpus")
    p.add_argument("--order", type=int, default=3)
    p.add_argument("--draws", type=int, default=1000, help="draws and tuning steps per chain")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="also save the model directory here")
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("generate", help="sample continuations of a prompt, each token annotated with its uncertainty")
    p.add_argument("model")
    p.add_argument("--prompt", default="", help="text to continue (empty: start a sentence)")
    p.add_argument("--n", type=int, default=5, help="number of continuations")
    p.add_argument("--max-tokens", type=int, default=40)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--stop", default=None, help="stop string")
    p.add_argument("--predictive", action="store_true", help="sample the posterior predictive at every step")
    p.add_argument("--mi-threshold", type=float, default=None, metavar="BITS", help="flag tokens with more mutual information")
    p.add_argument("--no-color", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("report", help="HTML page and JSON of diagnostics, predictive checks, entropy and comparison")
    p.add_argument("model", help="model directory")
    p.add_argument("--test", nargs="+", required=True, metavar="PATH", help="held-out text")
    p.add_argument("--out", required=True, metavar="FILE.html", help="the page; the JSON goes beside it (same stem, .json)")
    p.add_argument("--compare", nargs="+", metavar="DIR", help="other model directories, ranked on the same tokens")
    p.add_argument("--train", nargs="+", metavar="PATH",
                   help="training text: posterior predictive checks against it (default: against the held-out text)")
    p.add_argument("--replicates", type=int, default=20, help="replicate corpora for the predictive checks")
    p.add_argument("--hdi-prob", type=float, default=HDI_PROB)
    p.add_argument("--seed", type=int, default=0, help="seed of the replicate corpora")
    p.add_argument("--passage-tokens", type=int, default=60, help="positions shown along the passage plot")
    p.add_argument("--prompt", action="append", metavar="TEXT", help="add sampled continuations of TEXT (repeatable)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("export", help="write an n-gram model as an ARPA back-off file (KenLM, SRILM)")
    p.add_argument("model", help="model directory (dirichlet or pitman-yor)")
    p.add_argument("--arpa", required=True, metavar="FILE", help="ARPA file to write")
    p.add_argument("--sample", type=int, default=None, metavar="I",
                   help="pitman-yor: export retained posterior sample I exactly (default: the mean model)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("models", help="list the named configurations")
    p.set_defaults(func=cmd_models)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _quiet_libraries()
    try:
        return args.func(args)
    except BayesLMError as err:
        parser.exit(2, f"{PROG}: error: {err}\n")
    except (FileExistsError, FileNotFoundError, IsADirectoryError, PermissionError) as err:
        parser.exit(2, f"{PROG}: error: {err.strerror or err}: {err.filename}\n")
    except KeyboardInterrupt:
        parser.exit(130, f"{PROG}: interrupted\n")
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
