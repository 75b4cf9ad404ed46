"""GPT domain adaptation on Shakespeare split by genre: the general GPT, plain fine-tuning of its head, and
the Bayesian adaptation of its last layer (docs/domain.md, "GPT"), in one run.

What it measures
----------------
The texts of bench/domain_adapt.py (its play lists): general = comedies and histories; domain
text of N words = the first sentences, in one fixed random order (``--seed``), of the pool of
tragedies holding N word tokens (words counted as domain_adapt.py counts them, with the
``dirichlet-trigram`` word tokenizer); domain validation text Julius Caesar; test Hamlet and
Macbeth. The models read characters, so their perplexities are per character (every
character and one ``</s>`` per line), comparable with each other and not with the word
models of domain_adapt.py.

1. ``general``: ``bayeslm fit gpt-char-bll --train GENERAL --seed 1`` with
   ``model.train_seconds`` = ``--train-seconds`` (and ``--set`` overrides of the body), as a
   whole process; or ``--general DIR``, a model directory fitted before (its directory is
   not changed).
2. per domain size, ``bayeslm adapt GENERAL --train domain_N`` as a whole process, four ways
   (``HEADS``): ``gpt-bll-adapted`` (the last layer's prior is the general Laplace posterior
   raised to the power lam) with lam chosen on ``--valid julius_caesar``, by evidence, or
   fixed at 1 (the general posterior as the prior: the sequential Bayes update); and
   ``--set model.head=map`` (``gpt-bll-finetuned``: plain fine-tuning of the head). Test
   perplexity per character of the general model and of each adapted one (all share the
   general body: the test features are computed once); the power's posterior mean and HDI,
   the mean domain share of the test positions, seconds.

Run (one torch thread: OMP_NUM_THREADS=1)
---
    OMP_NUM_THREADS=1 /work/main/.venv/bin/python bench/gpt_domain_adapt.py [--train-seconds 300]
        [--sizes 1000 10000 50000] [--general DIR] [--out bench/out/gpt_domain_adapt.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from _common import git_state  # bench/ is on sys.path when a script runs
from domain_adapt import (
    DATA,
    DOMAIN_POOL,
    DOMAIN_TEST,
    DOMAIN_VALID,
    GENERAL,
    bayeslm_process,
    first_words,
    play_paths,
    write_lines,
)

#: the adaptations compared: name -> (directory name, ``bayeslm adapt`` arguments beyond the common ones)
HEADS = {"bayes, lam on valid": ("valid", ["--valid", *map(str, play_paths(DOMAIN_VALID))]),
         "bayes, lam by evidence": ("evidence", []),
         "bayes, lam = 1": ("one", ["--set", "model.power=1"]),
         "map fine-tuned head": ("map", ["--set", "model.head=map"])}


def domain_pool(seed: int):
    """The pool's lines with word tokens, as domain_adapt.py reads them, their word Corpus and its random order."""
    import bayeslm as blm
    from bayeslm.text.corpus import read_lines

    words = blm.WordTokenizer()
    raw = read_lines(play_paths(DOMAIN_POOL))
    lines = [line for line, tokens in zip(raw, words.tokenize_lines(raw)) if tokens]
    corpus = blm.Corpus.from_lines(lines, tokenizer=words)
    return lines, corpus, np.random.default_rng(seed).permutation(corpus.n_sentences)


def general_model(args, work: Path) -> tuple[Path, dict | None]:
    """The general model's directory: fitted here as a whole process, or ``--general``."""
    if args.general is not None:
        return args.general, None
    out = work / "general"
    sets = [item for s in args.set for item in ("--set", s)]
    process = bayeslm_process(["fit", "gpt-char-bll", "--train", *map(str, play_paths(GENERAL)), "--out", str(out),
                               "--seed", "1", "--set", f"model.train_seconds={args.train_seconds}", *sets])
    return out, {"wall_seconds": process["wall_seconds"], "fit_seconds": process["json"]["fit_seconds"]}


def run_size(args, general_dir: Path, test_xy, lines, pool, order, words: int, work: Path) -> dict:
    """Every adaptation on the domain text of ``words`` words: test perplexity, power, share, seconds.

    The adapted models share the general body, so the test text's features are computed once
    (``test_xy``) and each model's last layer scores them (what ``predictive_log_prob`` does).
    """
    import bayeslm as blm
    from bayeslm.neural.domain_head import domain_share

    index = first_words(pool, order, words)
    path = write_lines(work / f"domain_{words}.txt", [lines[i] for i in index])
    row = {"domain_words": int(pool.select(index).n_tokens), "domain_lines": int(index.size), "methods": {}}
    print(f"domain text of {row['domain_words']} words ...", flush=True)
    X, y = test_xy
    for name, (short, extra) in HEADS.items():
        out = work / f"{short}_{words}"
        process = bayeslm_process(["adapt", str(general_dir), "--train", str(path), "--out", str(out), "--seed", "1",
                                   "--set", f"sampler.draws={args.draws}", *extra])
        model = blm.load(out)
        result = {"test_perplexity": float(np.exp(-model.bll_.predictive_log_prob(X, y).mean())),
                  "adapt_seconds": process["json"]["adapt_seconds"], "wall_seconds": process["wall_seconds"],
                  "domain_tokens": process["json"]["domain_tokens"], "departure": process["json"]["departure"]}
        if process["json"]["departure"]:
            result["mean_domain_share"] = float(domain_share(X, model.share_domain_, model.share_total_)[0].mean())
            result["attrs"] = {k: v for k, v in model.idata["posterior"].attrs.items() if k.startswith("adapt_")}
        row["methods"][name] = result
    return row


def print_table(result: dict) -> None:
    rows = result["sizes"]
    print(f"\ngeneral GPT: test perplexity per character {result['general']['test_perplexity']:.4f} "
          f"({result['general'].get('process')})")
    print(f"{'test perplexity / char':26s}" + "".join(f"{r['domain_words']:>14d}" for r in rows))
    print(f"{'gpt general':26s}" + "".join(f"{result['general']['test_perplexity']:14.4f}" for _ in rows))
    for name in HEADS:
        print(f"{name:26s}" + "".join(f"{r['methods'][name]['test_perplexity']:14.4f}" for r in rows))
    for name in HEADS:
        if not rows[0]["methods"][name]["departure"]:
            continue
        cells = [r["methods"][name] for r in rows]
        print(f"{HEADS[name][0] + ': lam [94% HDI]':26s}" + "".join(
            f"{c['departure'][0]['mean']:6.3g} [{c['departure'][0]['hdi_low']:.2g},{c['departure'][0]['hdi_high']:.2g}]"
            .rjust(14) for c in cells))
        print(f"{HEADS[name][0] + ': test domain share':26s}" + "".join(f"{c['mean_domain_share']:14.3f}" for c in cells))
    for name in HEADS:
        print(f"{HEADS[name][0] + ': seconds fn/process':26s}" + "".join(
            f"{r['methods'][name]['adapt_seconds']:.1f}/{r['methods'][name]['wall_seconds']:.1f}".rjust(14) for r in rows))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 50000], help="domain words")
    parser.add_argument("--train-seconds", type=float, default=300.0, help="training budget of the general body")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a setting of the general fit (e.g. model.n_layer=2), repeatable")
    parser.add_argument("--general", type=Path, default=None, help="a general gpt-bll directory to adapt instead")
    parser.add_argument("--draws", type=int, default=200, help="posterior draws of the adapted last layer")
    parser.add_argument("--test-lines", type=int, default=None, help="score only the first lines of the test text")
    parser.add_argument("--seed", type=int, default=0, help="order of the domain pool's sentences")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    parser.add_argument("--work", type=Path, default=None, help="keep the model directories here (default: a "
                        "temporary directory, removed at the end)")
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        sys.exit(f"gpt_domain_adapt: needs {DATA} (the shared data beside the repository)")
    import bayeslm as blm

    print(f"load average before: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="gpt_domain_adapt_") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        general_dir, process = general_model(args, work)
        general = blm.load(general_dir)
        test = general.read(play_paths(DOMAIN_TEST))
        if args.test_lines is not None:
            test = test.select(np.arange(min(args.test_lines, test.n_sentences)))
        lines, pool, order = domain_pool(args.seed)
        _, X, y = general._targets(test)  # the test positions' features, shared by every adapted model
        result = {"general": {"dir": str(general_dir), "process": process, "config": general.get_config()["model"],
                              "test_perplexity": float(np.exp(-general.bll_.predictive_log_prob(X, y).mean())),
                              "test_positions": int(y.size)},
                  "sizes": [run_size(args, general_dir, (X, y), lines, pool, order, words, work)
                            for words in args.sizes],
                  "command": " ".join(sys.argv), "load_average_after": os.getloadavg()[0], **git_state()}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1, default=lambda o: o.item() if hasattr(o, "item") else str(o))
                            + "\n", encoding="utf-8")
        print(f"wrote {args.out}")
    print_table(result)
    print(f"load average after: {result['load_average_after']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
