"""The commands of ``bayeslm``: fit, adapt, mix, evaluate, score, tokenize, demo, generate, report, export, models.

Each takes the parsed arguments and returns the exit status. What they print is in bits
(log probabilities in base 2); KenLM's base-10 ``log10_prob`` is added only on request
(``--log10``), for comparison with KenLM. Everything a command will
write is checked first (the folder exists and takes files, a model directory may be
replaced, no other process writes it), so an unwritable output fails in a second, not
after the fit; then every file is written all-or-nothing (:mod:`bayeslm.core.files`).
"""

from __future__ import annotations

import copy
import json
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from bayeslm.cli.interrupts import Interrupted
from bayeslm.cli.output import print_json, print_table, print_text, progress_bars
from bayeslm.core.terminal import printable
from bayeslm.exceptions import ConfigError, CorpusError
from bayeslm.ngram.base import MAX_NGRAM_ORDER  # the limit of demo --order: every n-gram model's

__all__ = ["cmd_fit", "cmd_adapt", "cmd_mix", "cmd_evaluate", "cmd_score", "cmd_tokenize", "cmd_demo",
           "cmd_generate", "cmd_report", "cmd_export", "cmd_models", "MAX_NGRAM_ORDER"]


# -- shared pieces ---------------------------------------------------------------------
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


def _partial_warning(model) -> str | None:
    """One line saying the model was saved from an interrupted fit, or None."""
    from bayeslm.core.storage import partial_fit

    note = partial_fit(model)
    if note is None:
        return None
    return (f"warning: partial fit: sampling was interrupted ({note.get('signal', 'a signal')}) after "
            f"{note.get('draws')} of {note.get('requested_draws')} draws per chain; results are unreliable")


def _model_output(out: Path, force: bool, stack: ExitStack) -> Path:
    """Claim ``out`` for a model directory before any work: replaceable, writable, ours alone."""
    from bayeslm.core.files import target_lock
    from bayeslm.core.storage import check_target

    check_target(out, force)
    stack.enter_context(target_lock(out))
    check_target(out, force)
    return out


def _read_training(model, paths):
    """Text with its own full vocabulary, tokenised as the model tokenises (a fitted model's
    tokenizer_ holds what training learned, e.g. a trained BPE)."""
    from bayeslm.text.corpus import Corpus

    return Corpus.from_paths(paths, tokenizer=model.tokenizer_ if model.is_fitted_ else model.tokenizer)


# -- fit -------------------------------------------------------------------------------
def cmd_fit(args) -> int:
    from bayeslm.core.base import BayesianLM
    from bayeslm.core.config import apply_overrides, load_config

    config = apply_overrides(load_config(args.config), args.set)
    model = BayesianLM.from_config(config)  # every setting checked by type and range
    model.check_priors()  # and the priors against PyMC: all before any text is read
    if args.seed is not None:
        model.sampler_config["random_seed"] = args.seed
    out = Path(args.out)
    with ExitStack() as stack:
        _model_output(out, args.force, stack)
        n_train = _fit(model, args)
        partial = _keep_partial(model, args)
        model.save(out, force=args.force)
    args.interrupts.written.append(f"{out}" + (" (partial draws)" if partial else ""))
    _print_fit(model, args, out, n_train)
    if partial:
        raise Interrupted(args.interrupts.signum)
    return 0


def _fit(model, args) -> int:
    """Read the text and fit; returns the number of training tokens."""
    dask = args.dask or args.scheduler is not None
    train = None if dask else _read_training(model, args.train)
    valid = _read_training(model, args.valid) if args.valid else None
    show = progress_bars(args.quiet)  # for this call: how it is shown is not the model's configuration
    if dask:  # read, tokenise and count on the cluster; inference here on the merged counts
        from bayeslm.counting.distributed import dask_client

        with dask_client(args.scheduler) as client:
            model.fit(args.train, valid=valid, client=client, progressbar=show)
    else:
        model.fit(train, valid=valid, progressbar=show)
    return train.n_tokens if train is not None else int(model.idata["posterior"].attrs["training_tokens"])


def _keep_partial(model, args) -> bool:
    """After an interrupt with ``--keep-partial``: mark the model partial (True), or stop if it has no draws."""
    from bayeslm.core.storage import mark_partial_fit

    if args.interrupts.signum is None:
        return False
    if not args.keep_partial:  # some library caught the interrupt: it still means stop
        raise Interrupted(args.interrupts.signum)
    post = model.idata["posterior"]
    if post.sizes.get("draw", 0) == 0:
        raise Interrupted(args.interrupts.signum)  # stopped while tuning: nothing to keep
    mark_partial_fit(model.idata, signal=args.interrupts.name, draws=int(post.sizes["draw"]),
                     chains=int(post.sizes["chain"]), requested_draws=int(model.sampler_config["draws"]),
                     requested_chains=int(model.sampler_config["chains"]))
    return True


def _print_fit(model, args, out: Path, n_train: int) -> None:
    from bayeslm.core.storage import partial_fit

    if args.json:
        from bayeslm.stats.diagnostics import sampler_problems, summary

        names = _summary_vars(model)
        table = summary(model.idata, var_names=names) if names != [] else None
        print_json({
            "schema": "bayeslm.fit/1", "out": str(out), "fit_seconds": model.fit_seconds_,
            "training_tokens": n_train, "vocabulary": len(model.vocab_),
            "valid": [str(v) for v in args.valid or []], "partial_fit": partial_fit(model),
            "diagnostics": json.loads(table.to_json(orient="index")) if table is not None else {},
            **sampler_problems(model.idata),
        })
        return
    print(f"fitted {model.family} order {model.order} on {n_train} tokens "
          f"(vocabulary {len(model.vocab_)}) in {model.fit_seconds_:.1f} s; saved to {out}")
    if args.valid:
        print(f"validation text (used only to choose open settings): {', '.join(args.valid)}")
    if warning := _partial_warning(model):
        print(warning)
    print(_diagnostics_text(model))


def _restricted_overrides(items: list[str], settable: tuple[str, ...], refusal: str, defaults: dict) -> dict:
    """``--set`` items applied to ``defaults``, each checked to start with one of ``settable``
    (``refusal``: why others are refused, after the item)."""
    from bayeslm.core.config import apply_overrides

    for item in items:
        if not item.partition("=")[0].strip().startswith(settable):
            raise ConfigError(f"--set {item!r}: {refusal}")
    return apply_overrides(defaults, items)


def _call_sampler(args) -> dict:
    """Sampler settings of this call: progress bars unless --quiet, and --seed if given."""
    sampler = {"progressbar": progress_bars(args.quiet)}
    if args.seed is not None:
        sampler["random_seed"] = args.seed
    return sampler


# -- adapt -----------------------------------------------------------------------------
#: what ``adapt --set`` may change: the adapted model keeps the general model's tokenizer and order
ADAPT_SETTABLE = ("sampler.", "prior.concentration.", "model.entropy_draws")
#: the same for a Pitman-Yor general model (docs/domain.md, "Pitman-Yor")
ADAPT_SETTABLE_PITMAN_YOR = ("sampler.", "prior.discount.", "prior.strength_plus_discount.", "prior.general_weight.",
                             "model.rounds", "model.sweeps", "model.table_moves", "model.seatings", "model.retain",
                             "model.entropy_draws")
#: the same for a GPT general model (docs/domain.md, "GPT"); ``model.head=map``: plain fine-tuning of the head
ADAPT_SETTABLE_GPT = ("sampler.", "prior.power.", "model.power", "model.fit_positions", "model.head")


def _adapt_settings(general, adapted_classes: dict, base) -> tuple[type, tuple[str, ...], str]:
    """The adapted class of a general model, what ``--set`` may change for it and why the rest is refused."""
    adapted_class = adapted_classes.get(type(general))
    if adapted_class is None:
        raise ConfigError(f"{base}: holds a {general.family!r} model; adapt needs a Dirichlet or Pitman-Yor n-gram "
                          "model or a GPT (family 'dirichlet', 'pitman-yor' or 'gpt-bll')" + (
                              ", the general one it was adapted from"
                              if general.family.endswith(("-adapted", "-finetuned")) else ""))
    why = " (the adapted model reads text as the general model does)"
    if general.family == "dirichlet":
        return adapted_class, ADAPT_SETTABLE, "adapt changes only sampler.KEY, prior.concentration.KEY and model.entropy_draws" + why
    if general.family == "gpt-bll":
        return adapted_class, ADAPT_SETTABLE_GPT, ("adapt of a GPT changes only sampler.KEY, prior.power.KEY, "
                                                   "model.power, model.fit_positions and model.head (bayes or map)" + why)
    return adapted_class, ADAPT_SETTABLE_PITMAN_YOR, (
        "adapt of a Pitman-Yor model changes only sampler.KEY, prior.discount.KEY, prior.strength_plus_discount.KEY, "
        "prior.general_weight.KEY, model.rounds, model.sweeps, model.table_moves, model.seatings, model.retain and "
        "model.entropy_draws" + why)


def cmd_adapt(args) -> int:
    from bayeslm.core.base import load
    from bayeslm.neural.adapt import AdaptedGPTLM, FineTunedGPTLM
    from bayeslm.neural.gpt import GPTLM
    from bayeslm.ngram.adapt import AdaptedDirichletLM
    from bayeslm.ngram.dirichlet import DirichletLM
    from bayeslm.ngram.pitman_yor.adapt import AdaptedPitmanYorLM
    from bayeslm.ngram.pitman_yor.model import PitmanYorLM

    out = Path(args.out)
    with ExitStack() as stack:
        _model_output(out, args.force, stack)
        general = load(args.base)
        adapted_class, settable, refusal = _adapt_settings(
            general, {DirichletLM: AdaptedDirichletLM, PitmanYorLM: AdaptedPitmanYorLM,
                      GPTLM: AdaptedGPTLM}, args.base)
        defaults = {"sampler": {}, "prior": copy.deepcopy(adapted_class.default_model_config), "model": {}}
        overrides = _restricted_overrides(args.set, settable, refusal, defaults)
        if "head" in overrides["model"]:  # a GPT's head: the Bayesian adaptation or plain fine-tuning
            head = overrides["model"].pop("head")
            if head not in ("bayes", "map"):
                raise ConfigError(f"--set model.head={head}: the head is 'bayes' or 'map'")
            adapted_class = AdaptedGPTLM if head == "bayes" else FineTunedGPTLM
        if isinstance(general, GPTLM):  # the general model's weight_scale stays; fine-tuning has no power
            overrides["prior"] = {k: v for k, v in overrides["prior"].items()
                                  if k == "power" and adapted_class is AdaptedGPTLM}
        domain = general.read(args.train)
        valid = general.read(args.valid) if args.valid else None
        adapted = adapted_class.from_general(general, domain, valid, model_config=overrides["prior"],
                                             options=overrides["model"], **{**overrides["sampler"], **_call_sampler(args)})
        _keep_partial(adapted, args)  # an interrupt some library caught still means stop
        adapted.save(out, force=args.force)
    args.interrupts.written.append(str(out))
    _print_adapt(adapted, args, out, domain.n_tokens)
    return 0


#: what ``adapt`` prints instead of the diagnostics table for independent exact draws
EXACT_DRAWS_NOTE = ("no MCMC diagnostics: the draws are independent exact draws of each order's posterior (not a "
                    "Markov chain); `bayeslm report` computes their R-hat and ESS")


def _print_adapt(model, args, out: Path, n_domain: int) -> None:
    from bayeslm.core.protocol import AdaptedToDomain

    departure = model.departure() if isinstance(model, AdaptedToDomain) else None  # fine-tuning measures none
    # independent exact draws (a Dirichlet model's powers) get their R-hat and ESS in the report: ArviZ's
    # summary and its import would be most of the process's time (docs/domain.md, "Cost")
    exact = model.idata["posterior"].attrs.get("inference_method") == "exact"
    if args.json:
        from bayeslm.stats.diagnostics import sampler_problems, summary

        names = [] if exact else _summary_vars(model)
        table = summary(model.idata, var_names=names) if names != [] else None  # [] : independent draws, no rows
        print_json({
            "schema": "bayeslm.adapt/2", "out": str(out), "base": str(args.base), "general_model": model.general_,
            "adapt_seconds": model.fit_seconds_, "domain_tokens": n_domain, "vocabulary": len(model.vocab_),
            "valid": [str(v) for v in args.valid or []], "departure": departure,
            "inference": model.idata["posterior"].attrs.get("inference_method"),
            "diagnostics": json.loads(table.to_json(orient="index")) if table is not None else {},
            **sampler_problems(model.idata),
        })
        return
    print(f"adapted {args.base} ({model.family.removesuffix('-adapted')} order {model.order}) to {n_domain} domain "
          f"tokens in {model.fit_seconds_:.1f} s; saved to {out}")
    if departure is None:
        print("plain fine-tuning of the head (MAP): no departure from the general model is measured")
    else:
        print(f"departure from the general model per order: {model.departure_description}:")
    for row in departure or []:
        print(f"  order {row['order']}: {row['mean']:.3g} (sd {row['sd']:.2g}; {row['hdi_prob']:.0%} HDI "
              f"[{row['hdi_low']:.3g}, {row['hdi_high']:.3g}]): {row['meaning']}")
    print(EXACT_DRAWS_NOTE if exact else _diagnostics_text(model))


# -- mix -------------------------------------------------------------------------------
#: what ``mix --set`` may change: the mixture reads text as its components do
MIX_SETTABLE = ("sampler.", "model.concentration", "model.entropy_draws")


def cmd_mix(args) -> int:
    from bayeslm.core.base import load
    from bayeslm.mixture.model import MixtureLM

    overrides = _restricted_overrides(
        args.set, MIX_SETTABLE, "mix changes only sampler.KEY, model.concentration and model.entropy_draws "
        "(the mixture reads text as its components do)", {"sampler": {}, "model": {}})
    out = Path(args.out)
    with ExitStack() as stack:
        _model_output(out, args.force, stack)
        mixture = MixtureLM([load(path) for path in args.models], sampler_config=overrides["sampler"],
                            **overrides["model"])
        valid = mixture.components_[0].read(args.valid)
        mixture.fit(valid, **_call_sampler(args))
        _keep_partial(mixture, args)  # an interrupt some library caught still means stop
        mixture.save(out, force=args.force)
    args.interrupts.written.append(str(out))
    _print_mix(mixture, args, out, valid.n_tokens)
    return 0


def _print_mix(model, args, out: Path, n_valid: int) -> None:
    from bayeslm.stats.intervals import HDI_PROB, hdi

    w = model.weights
    intervals = [hdi(w[:, k]) for k in range(w.shape[1])]
    rows = [{"component": name, "model": str(path), "id": m.id, "mean": float(w[:, k].mean()),
             "hdi_low": float(intervals[k][0]), "hdi_high": float(intervals[k][1]),
             "stacking": float(model.stacking_weights_[k])}
            for k, (name, path, m) in enumerate(zip(model.component_names, args.models, model.components_))]
    if args.json:
        from bayeslm.stats.diagnostics import sampler_problems, summary

        table = summary(model.idata, var_names=_summary_vars(model))
        print_json({"schema": "bayeslm.mix/1", "out": str(out), "fit_seconds": model.fit_seconds_,
                    "valid": [str(v) for v in args.valid], "valid_tokens": n_valid, "weights": rows,
                    "diagnostics": json.loads(table.to_json(orient="index")), **sampler_problems(model.idata)})
        return
    print(f"mixed {len(rows)} models on {n_valid} validation tokens in {model.fit_seconds_:.1f} s; saved to {out}")
    for row in rows:
        print(f"  {row['component']} {printable(row['model'])}: weight {row['mean']:.3f} "
              f"({HDI_PROB:.0%} HDI [{row['hdi_low']:.3f}, {row['hdi_high']:.3f}]; stacking {row['stacking']:.3f})")
    print(_diagnostics_text(model))


# -- reading a model -------------------------------------------------------------------
def cmd_evaluate(args) -> int:
    from bayeslm.core.base import load
    from bayeslm.core.files import atomic_write_text, check_writable_file

    per_token = check_writable_file(args.per_token) if args.per_token else None
    model = load(args.model)
    test = model.read(args.test)
    result = model.evaluate(test, hdi_prob=args.hdi_prob)
    if per_token is not None:
        table = _without_log10(model.per_token(test, units="bits"), args.log10)
        atomic_write_text(per_token, table.to_csv(index=False))
        args.interrupts.written.append(str(per_token))
    if args.json:
        from bayeslm.core.storage import partial_fit

        print_json({**result.to_dict(), "test": list(args.test), "partial_fit": partial_fit(model)})
        return 0
    if warning := _partial_warning(model):
        print(warning)
    print(result)
    return 0


def _read_stdin() -> str:
    """Standard input decoded as strictly as a file (invalid UTF-8 is an error naming its offset)."""
    stream = sys.stdin
    if stream is None:
        raise CorpusError("standard input is closed")
    data = stream.buffer.read() if hasattr(stream, "buffer") else stream.read()
    try:
        return data.decode("utf-8") if isinstance(data, bytes) else data.encode("utf-8").decode("utf-8")
    except UnicodeDecodeError as err:
        raise CorpusError(f"standard input: invalid UTF-8 at byte offset {err.start}") from None
    except UnicodeEncodeError as err:  # text read with errors="surrogateescape"
        raise CorpusError(f"standard input: invalid UTF-8 at character {err.start}") from None


def cmd_score(args) -> int:
    from bayeslm.core.base import load

    model = load(args.model)
    lines = [line for line in _read_stdin().splitlines() if line.strip()]
    if not lines:
        raise CorpusError("no sentences on standard input")
    frame = _without_log10(model.score(lines, per_token=args.per_token, units="bits", hdi_prob=args.hdi_prob),
                           args.log10)
    if args.json:
        print_json({"schema": "bayeslm.score/2", "per_token": bool(args.per_token), "units": "bits",
                    "hdi_prob": args.hdi_prob, "rows": json.loads(frame.to_json(orient="records", double_precision=15))})
        return 0
    if not args.per_token:  # the text, which holds spaces, last
        frame = frame[[c for c in frame.columns if c != "text"] + ["text"]]
    print_table(frame)
    return 0


def _without_log10(frame, log10: bool):
    """``frame`` without its ``log10_prob`` column unless ``--log10`` asked for it."""
    return frame if log10 else frame.drop(columns="log10_prob")


def cmd_tokenize(args) -> int:
    from bayeslm.core.base import load

    model = load(args.model)
    corpus = model.read(args.paths)
    out = sys.stdout
    for line in corpus.decode_lines(unk=args.unk):
        out.write(printable(line) + "\n")
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
    from bayeslm.core.base import load
    from bayeslm.core.files import atomic_write_texts, check_writable_file
    from bayeslm.report.build import output_paths, report

    start = time.perf_counter()
    html_path, json_path = output_paths(args.out)
    for path in (html_path, json_path):  # before any work
        check_writable_file(path)
    model = load(args.model)
    test = [Path(p) for p in args.test]  # read with the text's own vocabulary: the page shows OOV words as written
    train = _read_training(model, args.train) if args.train else None
    others = [load(path) for path in args.compare or []]
    labels = [Path(path).name or str(path) for path in [args.model, *(args.compare or [])]]
    result = report(model, test, compare=others, labels=labels, train=train, replicates=args.replicates,
                    hdi_prob=args.hdi_prob, random_seed=args.seed, passage_tokens=args.passage_tokens,
                    prompts=args.prompt or ())
    atomic_write_texts({json_path: result.json_text() + "\n", html_path: result.render_html()})  # both or neither
    args.interrupts.written.append(f"{html_path} and {json_path}")
    if warning := _partial_warning(model):
        print(warning)
    print_text(str(result))
    print(f"wrote {html_path} and {json_path} in {time.perf_counter() - start:.1f} s")
    return 0


def cmd_export(args) -> int:
    from bayeslm.core.base import load
    from bayeslm.core.files import check_writable_file
    from bayeslm.ngram.arpa import write_arpa

    path = check_writable_file(args.arpa)
    model = load(args.model)
    sizes = write_arpa(model, path, sample=args.sample)
    args.interrupts.written.append(str(path))
    what = "posterior-predictive (mean) model" if args.sample is None else f"retained sample {args.sample}"
    print(f"wrote {args.arpa}: {model.family} order {model.order}, {what}; n-grams "
          + ", ".join(f"{k}: {v}" for k, v in sizes.items()))
    return 0


# -- no model --------------------------------------------------------------------------
def cmd_demo(args) -> int:
    from bayeslm.ngram.dirichlet import DirichletLM
    from bayeslm.text.corpus import demo_corpus

    with ExitStack() as stack:
        out = _model_output(Path(args.out), args.force, stack) if args.out else None
        print("bayeslm demo: a Dirichlet-smoothed n-gram model on the Python documentation topics "
              "(the standard library's pydoc_data), 90% of the lines for training, 10% held out.")
        train, test = demo_corpus().split(0.9, random_seed=args.seed)
        print(f"train: {train.n_sentences} sentences, {train.n_tokens} tokens; test: {test.n_sentences} sentences")
        lm = DirichletLM(order=args.order, min_count=2, sampler_config={
            "draws": args.draws, "tune": args.draws, "progressbar": progress_bars(args.quiet)})
        lm.fit(train, random_seed=args.seed)
        print(f"fitted in {lm.fit_seconds_:.1f} s (vocabulary {len(lm.vocab_)})")
        print(_diagnostics_text(lm))
        print("held-out evaluation (bits per token and perplexity, 94% HDI over posterior draws):")
        print(lm.evaluate(test))
        if out is not None:
            lm.save(out, force=args.force)
            args.interrupts.written.append(str(out))
            print(f"saved to {out}")
    return 0


def cmd_models(args) -> int:
    from bayeslm.core.config import list_configs

    for name, description in sorted(list_configs().items()):
        print(f"{name:28s} {description}")
    return 0
