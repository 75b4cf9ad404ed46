"""Domain adaptation on Shakespeare split by genre: the adapted Dirichlet LM vs the Dirichlet LM on the
concatenation and KenLM (general, domain, both, and their interpolation), in one run.

What it measures
----------------
``../shared/data/shakespeare`` holds one play per file without genre labels; the genres below
are the First Folio's (Pericles, not in the Folio, with the comedies; Cymbeline and Troilus
and Cressida, which the Folio prints among the tragedies, with the tragedies).

- general text: every comedy and history of train/ and valid/ (``GENERAL``);
- domain pool: the tragedies of train/ (``DOMAIN_POOL``); the domain text of size N is the
  first sentences of one fixed random order of the pool's sentences holding N words
  (tokens), so the sizes are nested;
- domain validation text: valid/julius_caesar (settings are chosen on it only: the
  interpolation weight; the adapted model's flag threshold);
- domain test text: test/hamlet and test/macbeth.

All models read the same tokens: word tokens in the general model's vocabulary (the
``dirichlet-trigram`` configuration: min count 2 on the general text), unknown words one
``<unk>`` token (for KenLM written ``<oov>``, an ordinary word, as in compare_kenlm.py).
Perplexities are over every token and one ``</s>`` per sentence (``<s>`` never scored).

1. ``general``: the ``dirichlet-trigram`` configuration fitted on the general text
   (``--draws`` draws and tuning steps, 2 chains); its fit time (``fit_seconds_``).
2. per domain size N (``--sizes``): ``adapted``: ``general.adapt(domain_N, valid)``, its
   time (``fit_seconds_``: merging the counts, the bases, tabulation, NUTS) and the
   posterior means of the powers lam_k (docs/domain.md); ``dirichlet concat``: the same configuration fitted
   on general + domain_N (min count 1 on text already in the general vocabulary, so the
   vocabulary is the same); KenLM ``lmplz -o 3 --discount_fallback`` on domain_N and on
   general + domain_N; the linear interpolation ``l p_general + (1 - l) p_domain`` of the
   KenLM models, ``l`` on a grid of 0.01 chosen on the validation text.
3. ``pitman-yor adapted`` (one self-contained entry: ``fit_pitman_yor_general``, ``pitman_yor_adapted``):
   the ``pitman-yor-trigram-fast`` configuration fitted on the general text, adapted per domain size
   by ``general.adapt(domain_N, valid)`` (docs/domain.md, "Pitman-Yor"); issue #20's target is its test
   perplexity at most 0.97x the best KenLM option at every size (PASS/FAIL printed).
4. The learning-curve table (test perplexity per method and domain size), PASS/FAIL of
   "adapted < dirichlet concat" and of the adapt time against 10% of the general fit time
   (the issue's target is for 5% as much domain text as general text: the size nearest
   to 5% is marked), and a plot (``--plot``) of perplexity against domain words.

Run
---
    /work/main/.venv/bin/python bench/domain_adapt.py [--sizes 1000 10000 50000] [--draws 1000]
        [--out bench/out/domain_adapt.json] [--plot bench/out/domain_adapt.png]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import git_state  # bench/ is on sys.path when a script runs
from compare_kenlm import find_kenlm_bin, quiet_stderr

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared/data/shakespeare"
COMEDIES = ["alls_well_that_ends_well", "as_you_like_it", "comedy_of_errors", "loves_labours_lost",
            "measure_for_measure", "merchant_of_venice", "merry_wives_of_windsor", "midsummer_nights_dream",
            "taming_of_the_shrew", "two_gentlemen_of_verona", "winters_tale", "pericles",
            "much_ado_about_nothing", "tempest"]
HISTORIES = ["henry_iv_part_1", "henry_iv_part_2", "henry_v", "henry_vi_part_1", "henry_vi_part_2",
             "henry_vi_part_3", "henry_viii", "john", "richard_ii", "richard_iii"]
GENERAL = COMEDIES + HISTORIES
DOMAIN_POOL = ["antony_and_cleopatra", "coriolanus", "cymbeline", "lear", "othello", "romeo_and_juliet",
               "timon_of_athens", "tragedy_of_titus_andronicus", "troilus_and_cressida"]
DOMAIN_VALID = ["julius_caesar"]
DOMAIN_TEST = ["hamlet", "macbeth"]
TARGET_ADAPT_SHARE = 0.10  # adapt time / general fit time, for 5% as much text


def play_paths(names: list[str]) -> list[Path]:
    paths = []
    for name in names:
        found = [DATA / split / f"{name}.txt" for split in ("train", "valid", "test")
                 if (DATA / split / f"{name}.txt").is_file()]
        if not found:
            sys.exit(f"domain_adapt: {name}.txt not found under {DATA} (the shared data beside the repository)")
        paths += found
    return paths


def first_words(corpus, order: np.ndarray, words: int):
    """The first sentences of ``corpus`` in ``order`` that hold at least ``words`` tokens."""
    lengths = corpus.sentence_lengths[order]
    n = int(np.searchsorted(np.cumsum(lengths), words) + 1)
    return corpus.select(np.sort(order[:n]))


def lmplz(kenlm_bin: Path, text: Path, arpa: Path) -> float:
    start = time.perf_counter()
    with open(text, "rb") as fh:
        subprocess.run([str(kenlm_bin / "lmplz"), "-o", "3", "-S", "1G", "--discount_fallback", "--arpa", str(arpa)],
                       stdin=fh, check=True, capture_output=True)
    return time.perf_counter() - start


def kenlm_log10(arpa: Path, lines: list[str], unseen_words: int = 1) -> np.ndarray:
    """log10 p of every token and ``</s>`` of ``lines`` (one array over all lines).

    KenLM's p(<unk>) is the mass of every word its training text lacked: spread evenly over
    the ``unseen_words`` words of the common vocabulary it lacked, so that every model is a
    distribution over the same vocabulary.
    """
    import kenlm

    model = quiet_stderr(lambda: kenlm.Model(str(arpa)))
    scores = [(score, oov) for line in lines for score, _, oov in model.full_scores(line, bos=True, eos=True)]
    return np.array([score - (np.log10(unseen_words) if oov else 0.0) for score, oov in scores])


def perplexity_log10(log10: np.ndarray) -> float:
    return float(10 ** (-log10.mean()))


def interpolation(general: np.ndarray, domain: np.ndarray, weight: float) -> np.ndarray:
    """log10 of ``weight p_general + (1 - weight) p_domain`` per position."""
    return np.log10(weight * 10 ** general + (1 - weight) * 10 ** domain)


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def fit_general(draws: int, seed: int):
    import bayeslm as blm
    from bayeslm.core.config import load_config

    config = load_config("dirichlet-trigram")
    config["sampler"].update({"draws": draws, "tune": draws, "progressbar": False, "random_seed": seed})
    general = blm.BayesianLM.from_config(config)
    general.fit(blm.Corpus.from_paths(play_paths(GENERAL), tokenizer=general.tokenizer))
    return general, config


def run_size(general, config, texts: dict, domain, work: Path, kenlm_bin: Path, kenlm_general: dict) -> dict:
    """Every method at one domain size: test perplexities, times, concentrations."""
    import bayeslm as blm

    n = domain.n_tokens
    adapted = general.adapt(domain, valid=texts["valid"], random_seed=1, progressbar=False)
    concat = blm.DirichletLM(order=3, min_count=1, model_config=config["prior"],
                             sampler_config={**config["sampler"], "random_seed": 1})
    concat.fit(texts["general"].concat(domain))
    assert set(concat.vocab_.tokens) == set(general.vocab_.tokens), "the concatenation's vocabulary differs"
    domain_lines = domain.decode_lines(unk="<oov>")
    seconds = {"adapt": adapted.fit_seconds_, "dirichlet_concat": concat.fit_seconds_}
    seconds["lmplz_domain"] = lmplz(kenlm_bin, write_lines(work / f"domain_{n}.tok", domain_lines),
                                    work / f"domain_{n}.arpa")
    write_lines(work / f"concat_{n}.tok", texts["general_lines"] + domain_lines)
    seconds["lmplz_concat"] = lmplz(kenlm_bin, work / f"concat_{n}.tok", work / f"concat_{n}.arpa")
    unseen = len(texts["words"] - {word for line in domain_lines for word in line.split()})
    kenlm_domain = {split: kenlm_log10(work / f"domain_{n}.arpa", texts[f"{split}_lines"], unseen)
                    for split in ("valid", "test")}
    grid = np.round(np.arange(0.01, 1.0, 0.01), 2)
    valid_ppl = [perplexity_log10(interpolation(kenlm_general["valid"], kenlm_domain["valid"], w)) for w in grid]
    weight = float(grid[int(np.argmin(valid_ppl))])
    perplexity = {
        "adapted dirichlet": adapted.evaluate(texts["test"]).predictive_perplexity,
        "dirichlet concat": concat.evaluate(texts["test"]).predictive_perplexity,
        "kenlm general": perplexity_log10(kenlm_general["test"]),
        "kenlm domain": perplexity_log10(kenlm_domain["test"]),
        "kenlm concat": perplexity_log10(kenlm_log10(work / f"concat_{n}.arpa", texts["test_lines"])),
        "kenlm interpolated": perplexity_log10(interpolation(kenlm_general["test"], kenlm_domain["test"], weight)),
    }
    post = adapted.idata["posterior"]["concentration"]
    return {"domain_words": n, "domain_sentences": domain.n_sentences, "test_perplexity": perplexity,
            "interpolation_weight_general": weight, "seconds": seconds,
            "domain_power_mean": post.mean(("chain", "draw")).values.tolist(),
            "domain_power_sd": post.std(("chain", "draw")).values.tolist()}


# -- the adapted Pitman-Yor LM (issue #20's 0.97x-of-the-best-KenLM target) --------------------------
PY_TARGET_VS_KENLM = 0.97


def fit_pitman_yor_general(dirichlet_general, draws: int, seed: int):
    """The ``pitman-yor-trigram-fast`` configuration fitted on the general text (its vocabulary is the
    Dirichlet general model's: the same text, min count 2)."""
    import bayeslm as blm
    from bayeslm.core.config import load_config

    config = load_config("pitman-yor-trigram-fast")
    config["sampler"].update({"draws": draws, "progressbar": False, "random_seed": seed})
    general = blm.BayesianLM.from_config(config)
    general.fit(blm.Corpus.from_paths(play_paths(GENERAL), tokenizer=general.tokenizer))
    assert general.vocab_.tokens == dirichlet_general.vocab_.tokens, "the Pitman-Yor general vocabulary differs"
    return general


def pitman_yor_adapted(general, domain, texts: dict) -> dict:
    """``general.adapt(domain, valid)`` of the Pitman-Yor general model: its test perplexity, adapt time
    (``fit_seconds_``) and the general weights lam_k (posterior means; docs/domain.md)."""
    adapted = general.adapt(domain, valid=texts["valid"], random_seed=1, progressbar=False)
    post = adapted.idata["posterior"]
    return {"test_perplexity": adapted.evaluate(texts["test"]).predictive_perplexity,
            "adapt_seconds": adapted.fit_seconds_,
            "general_weight_mean": post["general_weight"].mean(("chain", "draw")).values.tolist(),
            "discount_mean": post["discount"].mean(("chain", "draw")).values.tolist()}


def plot(rows: list[dict], general_ppl: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    words = [r["domain_words"] for r in rows]
    for method in rows[0]["test_perplexity"]:
        if method != "kenlm general":
            ax.plot(words, [r["test_perplexity"][method] for r in rows], marker="o", label=method)
    ax.axhline(general_ppl, color="grey", linestyle="--", label="dirichlet general (no domain text)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("domain words (tragedies)")
    ax.set_ylabel("test perplexity (Hamlet, Macbeth)")
    ax.set_title("Adapting comedies + histories to tragedies")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def best_kenlm(row: dict) -> float:
    """The lowest test perplexity of the KenLM options at one domain size."""
    return min(v for k, v in row["test_perplexity"].items() if k.startswith("kenlm"))


def print_table(result: dict) -> None:
    rows = result["sizes"]
    print(f"\ngeneral: {result['general']['training_tokens']} tokens, vocabulary {result['general']['vocabulary']}, "
          f"fit {result['general']['fit_seconds']:.1f} s; dirichlet general test perplexity "
          f"{result['general']['test_perplexity']:.2f}")
    print(f"{'test perplexity':24s}" + "".join(f"{r['domain_words']:>12d}" for r in rows))
    for method in rows[0]["test_perplexity"]:
        print(f"{method:24s}" + "".join(f"{r['test_perplexity'][method]:12.2f}" for r in rows))
    print(f"{'interpolation weight':24s}" + "".join(f"{r['interpolation_weight_general']:12.2f}" for r in rows))
    print(f"{'adapt seconds':24s}" + "".join(f"{r['seconds']['adapt']:12.1f}" for r in rows))
    print(f"{'adapt / general fit':24s}" + "".join(f"{r['adapt_share']:12.3f}" for r in rows))
    print(f"{'concat fit seconds':24s}" + "".join(f"{r['seconds']['dirichlet_concat']:12.1f}" for r in rows))
    for k in range(len(rows[0]["domain_power_mean"])):
        print(f"{f'lam_{k + 1} posterior mean':24s}" + "".join(f"{r['domain_power_mean'][k]:12.4g}" for r in rows))
    print(f"pitman-yor general: fit {result['general']['pitman_yor_fit_seconds']:.1f} s, test perplexity "
          f"{result['general']['pitman_yor_test_perplexity']:.2f}")
    print(f"{'py adapt seconds':24s}" + "".join(f"{r['pitman_yor']['adapt_seconds']:12.1f}" for r in rows))
    for k in range(len(rows[0]["pitman_yor"]["general_weight_mean"])):
        print(f"{f'py lam_{k + 1} mean':24s}" + "".join(f"{r['pitman_yor']['general_weight_mean'][k]:12.3f}" for r in rows))
    for r in rows:
        ratio = r["test_perplexity"]["pitman-yor adapted"] / best_kenlm(r)
        print(f"{r['domain_words']:>6d} words: pitman-yor adapted / best KenLM: {ratio:.3f} (target <= "
              f"{PY_TARGET_VS_KENLM}: {'PASS' if ratio <= PY_TARGET_VS_KENLM else 'FAIL'})")
    for r in rows:
        better = r["test_perplexity"]["adapted dirichlet"] < r["test_perplexity"]["dirichlet concat"]
        print(f"{r['domain_words']:>6d} words: adapted < dirichlet concat: {'PASS' if better else 'FAIL'}; "
              f"adapted / best KenLM: {r['test_perplexity']['adapted dirichlet'] / best_kenlm(r):.3f}; "
              f"adapt time {r['adapt_share']:.1%} of the general fit"
              + (f" (target <= {TARGET_ADAPT_SHARE:.0%} at ~5% as much text: "
                 f"{'PASS' if r['adapt_share'] <= TARGET_ADAPT_SHARE else 'FAIL'})" if r["near_5_percent"] else ""))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 50000], help="domain words")
    parser.add_argument("--draws", type=int, default=1000, help="draws and tuning steps per chain (2 chains)")
    parser.add_argument("--seed", type=int, default=0, help="order of the domain pool's sentences")
    parser.add_argument("--kenlm-bin", default=None, help="directory of lmplz (default: $KENLM_BIN, ...)")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    parser.add_argument("--plot", type=Path, default=None, help="write the learning curve (PNG) here")
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        sys.exit(f"domain_adapt: needs {DATA} (the shared data beside the repository)")
    kenlm_bin = find_kenlm_bin(args.kenlm_bin)
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    general, config = fit_general(args.draws, seed=1)
    read = lambda names: general.read(play_paths(names))
    texts = {"general": read(GENERAL), "valid": read(DOMAIN_VALID), "test": read(DOMAIN_TEST)}
    for split in ("general", "valid", "test"):
        texts[f"{split}_lines"] = texts[split].decode_lines(unk="<oov>")
    texts["words"] = {"<oov>" if w == "<unk>" else w for w in general.vocab_.tokens if w not in ("<s>", "</s>")}
    pool = read(DOMAIN_POOL)
    order = np.random.default_rng(args.seed).permutation(pool.n_sentences)
    with tempfile.TemporaryDirectory(prefix="domain_adapt_") as tmp:
        work = Path(tmp)
        lmplz_general = lmplz(kenlm_bin, write_lines(work / "general.tok", texts["general_lines"]), work / "general.arpa")
        kenlm_general = {split: kenlm_log10(work / "general.arpa", texts[f"{split}_lines"]) for split in ("valid", "test")}
        rows = [run_size(general, config, texts, first_words(pool, order, size), work, kenlm_bin, kenlm_general)
                for size in args.sizes]
    py_general = fit_pitman_yor_general(general, args.draws, seed=1)
    for row, size in zip(rows, args.sizes):
        row["pitman_yor"] = pitman_yor_adapted(py_general, first_words(pool, order, size), texts)
        row["test_perplexity"]["pitman-yor adapted"] = row["pitman_yor"]["test_perplexity"]
    general_tokens = texts["general"].n_tokens
    shares = [abs(r["domain_words"] / general_tokens - 0.05) for r in rows]
    for i, r in enumerate(rows):
        r["adapt_share"] = r["seconds"]["adapt"] / general.fit_seconds_
        r["near_5_percent"] = i == int(np.argmin(shares))
    result = {
        "general": {"training_tokens": general_tokens, "vocabulary": len(general.vocab_),
                    "fit_seconds": general.fit_seconds_, "lmplz_seconds": lmplz_general,
                    "test_perplexity": general.evaluate(texts["test"]).predictive_perplexity,
                    "pitman_yor_fit_seconds": py_general.fit_seconds_,
                    "pitman_yor_test_perplexity": py_general.evaluate(texts["test"]).predictive_perplexity},
        "sizes": rows, "draws": args.draws, "load_average_after": os.getloadavg()[0], **git_state(),
    }
    print_table(result)
    print(f"load average after: {result['load_average_after']:.2f}")
    if args.plot:
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        plot(rows, result["general"]["test_perplexity"], args.plot)
        print(f"wrote {args.plot}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
