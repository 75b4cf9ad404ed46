"""Bits per character on Shakespeare: the open-vocabulary word model and the character n-gram vs KenLM.

One run, one table (issue #19): bits per character on the test text of
``pitman-yor-trigram-open`` (word trigram, spelling model below the unigram),
``pitman-yor-char`` (character n-gram, order chosen on valid among ``--char-orders``),
``gpt-char-bll`` and ``gpt-bpe-bll`` (each trained for its configuration's 15 minutes of wall
clock: run it on a quiet machine), the mixture of the character n-gram and the character GPT
(``MixtureLM``, weights by NUTS on the valid text: 2 chains of 500 + 500 steps; posterior mean and
stacking weights printed)
and KenLM's modified Kneser-Ney on the same characters (``lmplz``, order chosen on valid among
``--kenlm-orders``, at most 10), beside the closed word trigram (OOV spellings unpriced,
for reference); and what the spelling model adds to the word model's fit: whole
``bayeslm fit`` processes, start to exit, of ``pitman-yor-trigram-open`` and of the same
configuration with ``spelling = 0`` (best of ``--repeats`` each, alternating), with the
spelling model's in-function fit time printed beside.

Every model prices the same text: the word tokenizer's normalisation of each line
(lowercased, one space between tokens; docs/open_vocabulary.md), each line followed by its
newline. The character models read it character by character (KenLM with each space
written as U+2581 so that it is a token), the word models word by word; characters are
counted once, on that text. KenLM and the closed word model give unseen tokens ``<unk>``'s
probability (unpriced); the open models price every string.

Targets printed as PASS/FAIL: open word model <= KenLM; character n-gram <= KenLM; the
mixture <= 0.98x the better of its two components; the whole open fit's time over the whole
closed fit's <= 1.25.

Run:  KENLM_BIN=... /work/main/.venv/bin/python bench/open_vocabulary.py [--char-orders 6 7 8 9 10] [--out FILE]
      (``--no-gpt`` leaves out the two GPTs and the mixture; ``--gpt-train-seconds S`` shortens their
      training, for a smoke run only)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, git_state  # noqa: E402
from compare_kenlm_py import parse_json, run  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "shakespeare"
SPACE = "\u2581"  # a space, as a KenLM token
SPELLING_SHARE = 0.25
#: the mixture of the character n-gram and the character GPT against the better of the two
MIXTURE_RATIO = 0.98


def normalised_lines(data: Path, split: str) -> list[str]:
    """The lines of ``data/split`` as the word tokenizer leaves them (what every model here prices)."""
    from bayeslm.text.corpus import read_lines, resolve_paths
    from bayeslm.text.tokenize import WordTokenizer

    tokenizer = WordTokenizer()
    return [" ".join(tokens) for tokens in tokenizer.tokenize_lines(read_lines(resolve_paths(data / split)))]


def characters(lines: list[str]) -> int:
    return sum(len(line) + 1 for line in lines)


def fit_named(name: str, lines: dict, seed: int, **model) -> tuple[object, dict]:
    """A named configuration (``[model]`` overrides in ``model``) fitted on the train lines; figures on valid, test."""
    from bayeslm.core.base import BayesianLM
    from bayeslm.core.config import load_config
    from bayeslm.text.corpus import Corpus

    config = load_config(str(REPO / "models" / f"{name}.toml"))
    config["model"].update(model)
    config["sampler"] = {**config.get("sampler", {}), "progressbar": False}
    lm = BayesianLM.from_config(config)
    lm.fit(Corpus.from_lines(lines["train"], tokenizer=lm.tokenizer), random_seed=seed)
    out = {"config": name, "order": lm.order, **model, "fit_seconds": lm.fit_seconds_}
    for split in ("valid", "test"):
        ev = lm.evaluate(lines[split])
        out[split] = {"bits_per_character": ev.predictive_bits_per_character,
                      "bits_per_byte": ev.predictive_bits_per_byte, "characters": ev.characters, "text": ev.text,
                      "oov": ev.oov, "oov_priced": ev.oov_priced,
                      "bits_per_token": ev.predictive_cross_entropy_bits}
    return lm, out


def word_models(lines: dict, seed: int) -> dict:
    """The open word trigram, its spelling model timed alone, and the closed trigram for reference."""
    from bayeslm.ngram.spelling import SpellingModel

    lm, open_word = fit_named("pitman-yor-trigram-open", lines, seed)
    start = time.perf_counter()
    SpellingModel(lm.options["spelling"]).fit(lm.vocab_, lm.spelling_words_)
    open_word["spelling_seconds"] = time.perf_counter() - start
    _, closed = fit_named("pitman-yor-trigram-open", lines, seed, spelling=0)
    return {"open": open_word, "closed": closed}


def whole_fits(lines: dict, seed: int, repeats: int, work: Path) -> dict:
    """``bayeslm fit pitman-yor-trigram-open`` on the train lines, with its spelling model and
    without (``--set model.spelling=0``), each a whole process timed start to exit; the best of
    ``repeats`` runs of each, alternating."""
    train = work / "train"
    train.mkdir(exist_ok=True)
    (train / "train.txt").write_text("\n".join(lines["train"]) + "\n", encoding="utf-8")
    runs: dict = {"open": [], "closed": []}
    for _ in range(repeats):
        for name, sets in (("open", []), ("closed", ["--set", "model.spelling=0"])):
            done = run([sys.executable, "-m", "bayeslm", "fit", "pitman-yor-trigram-open", "--train", str(train),
                        "--out", str(work / f"{name}.model"), "--seed", str(seed), "--quiet", "--json", "--force",
                        *sets])
            runs[name].append({"seconds": done["seconds"], "fit_seconds": parse_json(done["stdout"])["fit_seconds"]})
    best = {name: min(r["seconds"] for r in rs) for name, rs in runs.items()}
    print(f"  whole fit processes: open {best['open']:.2f} s, closed {best['closed']:.2f} s (best of {repeats})",
          flush=True)
    return {"runs": runs, "open_seconds": best["open"], "closed_seconds": best["closed"],
            "added_share": best["open"] / best["closed"] - 1.0}


def char_models(lines: dict, orders: list[int], seed: int) -> tuple[object, dict]:
    """``pitman-yor-char`` at each order; the model best on valid and the figures of all."""
    runs, best_lm = [], None
    for order in orders:
        lm, run = fit_named("pitman-yor-char", lines, seed, order=order)
        print(f"  pitman-yor-char order {order}: valid {run['valid']['bits_per_character']:.4f} bits/char, "
              f"fit {run['fit_seconds']:.1f} s", flush=True)
        runs.append(run)
        if run is min(runs, key=lambda r: r["valid"]["bits_per_character"]):
            best_lm = lm
    best = min(runs, key=lambda r: r["valid"]["bits_per_character"])
    return best_lm, {"runs": runs, "best": best}


def gpt_models(lines: dict, seed: int, train_seconds: float | None) -> tuple[object, dict]:
    """``gpt-char-bll`` and ``gpt-bpe-bll`` trained on the train lines (the configurations' budgets unless
    ``train_seconds``); the character GPT and the figures of both."""
    override = {} if train_seconds is None else {"train_seconds": train_seconds}
    out, char_lm = {}, None
    for name in ("gpt-char-bll", "gpt-bpe-bll"):
        start = time.perf_counter()
        lm, out[name] = fit_named(name, lines, seed, **override)
        out[name]["seconds"] = time.perf_counter() - start
        print(f"  {name}: valid {out[name]['valid']['bits_per_character']:.4f}, test "
              f"{out[name]['test']['bits_per_character']:.4f} bits/char ({out[name]['seconds']:.0f} s)", flush=True)
        char_lm = lm if name == "gpt-char-bll" else char_lm
    return char_lm, out


def mixture(components: list, lines: dict, seed: int) -> dict:
    """``MixtureLM(components)`` with its weights fitted on the valid lines; bits per character on test."""
    import bayeslm as blm

    start = time.perf_counter()
    mix = blm.MixtureLM(components, sampler_config={"draws": 500, "tune": 500, "chains": 2, "random_seed": seed,
                                                "progressbar": False})
    mix.fit(lines["valid"])
    test = mix.evaluate(lines["test"])
    out = {"components": mix.component_names, "weights_mean": mix.weights.mean(axis=0).tolist(),
           "weights_sd": mix.weights.std(axis=0).tolist(), "stacking_weights": mix.stacking_weights_.tolist(),
           "seconds": time.perf_counter() - start,
           "test": {"bits_per_character": test.predictive_bits_per_character,
                    "bits_per_byte": test.predictive_bits_per_byte, "characters": test.characters}}
    print(f"  mixture {out['components']}: weights {np.round(out['weights_mean'], 3).tolist()}, test "
          f"{out['test']['bits_per_character']:.4f} bits/char ({out['seconds']:.0f} s)", flush=True)
    return out


def find_kenlm(explicit: str | None) -> Path:
    """The directory holding ``lmplz``, or exit saying how to get it."""
    for candidate in [explicit, os.environ.get("KENLM_BIN"), Path.home() / ".cache/kenlm/build/bin"]:
        if candidate and (Path(candidate) / "lmplz").is_file():
            return Path(candidate)
    sys.exit("open_vocabulary: lmplz not found; pass --kenlm-bin or set KENLM_BIN")


def as_kenlm_tokens(line: str) -> str:
    return " ".join(SPACE if c == " " else c for c in line)


def kenlm_log10(kenlm_bin: Path, arpa: Path, text: Path) -> float:
    """Total log10 probability of the lines of ``text`` (each with ``<s>`` context and ``</s>``), by KenLM's
    ``query`` (built for orders up to 10, unlike the ``kenlm`` module's usual 6)."""
    done = subprocess.run([str(kenlm_bin / "query"), "-v", "summary", str(arpa)], stdin=text.open("rb"),
                          check=True, capture_output=True, text=True)
    summary = dict(line.split(":\t", 1) for line in done.stdout.splitlines() if ":\t" in line)
    return -math.log10(float(summary["Perplexity including OOVs"])) * int(summary["Tokens"])


def kenlm_models(lines: dict, orders: list[int], kenlm_bin: Path, work: Path) -> dict:
    """``lmplz -o N`` on the characters of the train lines; bits per character on valid and test; the best on valid."""
    for split in ("train", "valid", "test"):
        (work / f"{split}.chars").write_text("\n".join(as_kenlm_tokens(line) for line in lines[split]) + "\n",
                                             encoding="utf-8")
    text = work / "train.chars"
    runs = []
    for order in orders:
        arpa = work / f"chars.{order}.arpa"
        start = time.perf_counter()
        subprocess.run([str(kenlm_bin / "lmplz"), "-o", str(order), "-S", "1G", "--discount_fallback",
                        "--text", str(text), "--arpa", str(arpa)], check=True, capture_output=True)
        run = {"order": order, "lmplz_seconds": time.perf_counter() - start}
        for split in ("valid", "test"):
            log10 = kenlm_log10(kenlm_bin, arpa, work / f"{split}.chars")
            run[split] = {"bits_per_character": -log10 * math.log2(10) / characters(lines[split])}
        arpa.unlink()
        print(f"  KenLM order {order}: valid {run['valid']['bits_per_character']:.4f} bits/char", flush=True)
        runs.append(run)
    best = min(runs, key=lambda r: r["valid"]["bits_per_character"])
    return {"runs": runs, "best": best}


def report(result: dict) -> dict:
    """Print the table and the checks; returns the checks."""
    words, chars, ken = result["word"], result["char"]["best"], result["kenlm"]["best"]
    kenlm_bpc = ken["test"]["bits_per_character"]
    rows = [
        ("pitman-yor-trigram-open (word, spelling model)", words["open"]["order"], words["open"]["test"]),
        ("pitman-yor-trigram, closed (OOV spellings unpriced)", words["closed"]["order"], words["closed"]["test"]),
        ("pitman-yor-char (order chosen on valid)", chars["order"], chars["test"]),
        ("KenLM modified Kneser-Ney on characters (order chosen on valid)", ken["order"], ken["test"]),
    ]
    gpts = result.get("gpt")
    if gpts:
        rows[3:3] = [(f"{name} (order: its context in tokens)", run["order"], run["test"]) for name, run in gpts.items()]
        rows.insert(5, ("mixture of pitman-yor-char and gpt-char-bll (weights on valid)", 0, result["mixture"]["test"]))
    print(f"\nbits per character on test ({result['test_characters']} characters of normalised text, "
          f"one newline per line); load average {result['load_before']:.2f} -> {result['load_after']:.2f}")
    print(f"command: {result['command']}")
    print(f"{'model':66} {'order':>5} {'bits/char':>10} {'bits/byte':>10}")
    for name, order, test in rows:
        per_byte = f"{test['bits_per_byte']:10.4f}" if "bits_per_byte" in test else f"{'':10}"
        print(f"{name:66} {order or '-':>5} {test['bits_per_character']:10.4f} {per_byte}")
    whole = result["whole_fit"]
    share = whole["added_share"]
    print(f"whole fit process: open {whole['open_seconds']:.2f} s, closed {whole['closed_seconds']:.2f} s: the "
          f"spelling model adds {100 * share:.1f}% (in-function: spelling model fit "
          f"{words['open']['spelling_seconds']:.3f} s, open word model fit {words['open']['fit_seconds']:.2f} s)")
    checks = {
        "open word model <= KenLM characters": words["open"]["test"]["bits_per_character"] <= kenlm_bpc,
        "character n-gram <= KenLM characters": chars["test"]["bits_per_character"] <= kenlm_bpc,
        f"whole open fit <= {1 + SPELLING_SHARE:.2f}x the whole closed fit": share <= SPELLING_SHARE,
    }
    if gpts:
        better = min(chars["test"]["bits_per_character"], gpts["gpt-char-bll"]["test"]["bits_per_character"])
        ratio = result["mixture"]["test"]["bits_per_character"] / better
        print(f"mixture / better component: {ratio:.4f} (weights {np.round(result['mixture']['weights_mean'], 3).tolist()}"
              f" +- {np.round(result['mixture']['weights_sd'], 3).tolist()}, stacking "
              f"{np.round(result['mixture']['stacking_weights'], 3).tolist()})")
        checks[f"mixture <= {MIXTURE_RATIO}x the better of its components"] = ratio <= MIXTURE_RATIO
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    return checks


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--char-orders", type=int, nargs="+", default=[6, 7, 8, 9, 10])
    parser.add_argument("--kenlm-orders", type=int, nargs="+", default=list(range(2, 11)))
    parser.add_argument("--kenlm-bin", help="directory holding lmplz (default $KENLM_BIN)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2, help="whole fit processes of each kind (best taken)")
    parser.add_argument("--no-gpt", action="store_true", help="leave out the GPTs and the mixture")
    parser.add_argument("--gpt-train-seconds", type=float, help="the GPTs' training budget (default: their "
                        "configurations', 900 s; shorter for a smoke run only)")
    parser.add_argument("--out", type=Path, help="write the figures as JSON")
    args = parser.parse_args(argv)
    if not (args.data / "train").is_dir():
        print(f"needs {args.data}/train (the shared data beside the repository)", file=sys.stderr)
        return 2
    if max(args.kenlm_orders) > 10:
        parser.error("--kenlm-orders: at most 10")
    warnings.filterwarnings("ignore")
    kenlm_bin = find_kenlm(args.kenlm_bin)
    lines = {split: normalised_lines(args.data, split) for split in ("train", "valid", "test")}
    result = {"load_before": os.getloadavg()[0], "test_characters": characters(lines["test"]), **git_state()}
    with tempfile.TemporaryDirectory() as work:
        result["kenlm"] = kenlm_models(lines, args.kenlm_orders, kenlm_bin, Path(work))
        result["whole_fit"] = whole_fits(lines, args.seed, args.repeats, Path(work))
    result["word"] = word_models(lines, args.seed)
    char_lm, result["char"] = char_models(lines, args.char_orders, args.seed)
    if not args.no_gpt:
        gpt_char, result["gpt"] = gpt_models(lines, args.seed, args.gpt_train_seconds)
        result["mixture"] = mixture([char_lm, gpt_char], lines, args.seed)
    result["load_after"] = os.getloadavg()[0]
    result["command"] = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
    result["checks"] = report(result)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
