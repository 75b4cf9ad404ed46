"""Domain adaptation on Shakespeare split by genre: the adapted Dirichlet and Pitman-Yor LMs vs the Dirichlet
LM on the concatenation and KenLM (general, domain, both, and their interpolation), in one run.

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

1. ``general``: ``bayeslm fit dirichlet-trigram --train GENERAL --seed 1`` (``--draws`` draws and
   tuning steps, 2 chains) as a subprocess, timed from its start to its exit (imports, reading,
   counting, inference, the passes after it, saving: what the user waits for), and the peak
   PSS of its process tree (``_common.run``, as compare_kenlm_py.py); ``fit_seconds`` (counting
   and inference, as the model reports it) beside it.
2. per domain size N (``--sizes``, and ``--share`` of the general text's words: 5% by default,
   the size of the issue's time target), every method of ``METHODS`` (one entry per method):
   ``adapted dirichlet``: ``bayeslm adapt general --train domain_N --valid julius_caesar`` timed
   as a whole process like the general fit (``adapt_seconds`` of its JSON beside it), the
   posterior means of the powers lam_k (docs/domain.md); ``adapted pitman-yor``: the same for a
   ``pitman-yor-trigram-fast`` general model (``bayeslm fit`` once per run, a whole process;
   docs/domain.md, "Pitman-Yor"), with its general weights lam_k and its validation perplexity (the
   seating rounds, Gibbs sweeps, table-count moves and kept seatings are the defaults, chosen on
   it); ``dirichlet concat``: the same configuration fitted on general + domain_N in this
   process (min count 1 on text already in the general vocabulary, so the vocabulary is the
   same); KenLM ``lmplz -o 3
   --discount_fallback`` on the general text, on domain_N and on general + domain_N; the linear
   interpolation ``l p_general + (1 - l) p_domain`` of the KenLM models, ``l`` on a grid of
   0.01 chosen on the validation text.
3. Where the adapted Pitman-Yor LM gains or loses against the KenLM interpolation: per group of test
   positions (``<unk>``, ``</s>``, and the predicted word's count in the domain text), each model's
   mean log probability and the group's share of their per-token difference (``gain_by_group``);
   the adapted Pitman-Yor process against the Pitman-Yor general fit process.
4. The learning-curve table (test perplexity per method and domain size), PASS/FAIL of
   "adapted pitman-yor <= 0.97x the best KenLM option", of "adapted < dirichlet concat" and, at the ``--share`` size, of the adapt process against 10%
   of the general fit process: the ratio of the medians of ``--rounds`` alternating rounds of the two
   whole processes (one process each is at the mercy of a shared machine's load); a plot (``--plot``)
   of perplexity against domain words.

Run
---
    /work/main/.venv/bin/python bench/domain_adapt.py [--sizes 1000 10000 50000] [--share 0.05] [--draws 1000]
        [--rounds 3] [--no-pitman-yor] [--out bench/out/domain_adapt.json] [--plot bench/out/domain_adapt.png]
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
from _common import git_state, run  # bench/ is on sys.path when a script runs
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
PY_TARGET_VS_KENLM = 0.97  # adapted Pitman-Yor test perplexity / the best KenLM option's, at every size


def play_paths(names: list[str]) -> list[Path]:
    paths = []
    for name in names:
        found = [DATA / split / f"{name}.txt" for split in ("train", "valid", "test")
                 if (DATA / split / f"{name}.txt").is_file()]
        if not found:
            sys.exit(f"domain_adapt: {name}.txt not found under {DATA} (the shared data beside the repository)")
        paths += found
    return paths


def first_words(corpus, order: np.ndarray, words: int) -> np.ndarray:
    """Indices (sorted) of the first sentences of ``corpus`` in ``order`` that hold at least ``words`` tokens."""
    lengths = corpus.sentence_lengths[order]
    n = int(np.searchsorted(np.cumsum(lengths), words) + 1)
    return np.sort(order[:n])


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


class Run:
    """What every method reads at every domain size: the general model, the texts, KenLM's general model."""

    def __init__(self, args, kenlm_bin: Path, work: Path):
        import bayeslm as blm
        from bayeslm.text.corpus import read_lines

        self.args, self.kenlm_bin, self.work = args, kenlm_bin, work
        self.general_dir = work / "general"
        self.general_process = bayeslm_process(self.fit_arguments(self.general_dir))
        self.general = blm.load(self.general_dir)
        self.config = self.general.get_config()
        read = lambda names: self.general.read(play_paths(names))
        self.texts = {"general": read(GENERAL), "valid": read(DOMAIN_VALID), "test": read(DOMAIN_TEST)}
        for split in ("general", "valid", "test"):
            self.texts[f"{split}_lines"] = self.texts[split].decode_lines(unk="<oov>")
        self.words = {"<oov>" if w == "<unk>" else w for w in self.general.vocab_.tokens if w not in ("<s>", "</s>")}
        raw = read_lines(play_paths(DOMAIN_POOL))  # the pool's sentences as written, for the command line
        self.pool_lines = [line for line, tokens in zip(raw, self.general.tokenizer_.tokenize_lines(raw)) if tokens]
        self.pool = blm.Corpus.from_lines(self.pool_lines, tokenizer=self.general.tokenizer_).with_vocabulary(
            self.general.vocab_)
        self.pool_order = np.random.default_rng(args.seed).permutation(self.pool.n_sentences)
        self.lmplz_general = lmplz(kenlm_bin, write_lines(work / "general.tok", self.texts["general_lines"]),
                                   work / "general.arpa")
        self.shared: dict = {}  # what one method computes once per run (the Pitman-Yor general model)
        self.kenlm_general = {split: kenlm_log10(work / "general.arpa", self.texts[f"{split}_lines"])
                              for split in ("valid", "test")}


    def fit_arguments(self, out: Path) -> list[str]:
        """``bayeslm fit`` of the general Dirichlet model to ``out``."""
        return ["fit", "dirichlet-trigram", "--train", *map(str, play_paths(GENERAL)), "--out", str(out), "--seed", "1",
                "--set", f"sampler.draws={self.args.draws}", "--set", f"sampler.tune={self.args.draws}"]


class DomainSize:
    """The domain text of one size: as a Corpus, as a file of its sentences, and what methods share."""

    def __init__(self, state: Run, words: int):
        index = first_words(state.pool, state.pool_order, words)
        self.corpus = state.pool.select(index)
        self.n = self.corpus.n_tokens
        self.path = write_lines(state.work / f"domain_{self.n}.txt", [state.pool_lines[i] for i in index])
        self.lines = self.corpus.decode_lines(unk="<oov>")
        self.shared: dict = {}  # what one method computes and another reuses (KenLM's domain model)


def bayeslm_process(arguments: list[str]) -> dict:
    """``bayeslm ARGUMENTS --quiet --json --force`` timed from start to exit (and its peak tree PSS); its JSON."""
    done = run([sys.executable, "-m", "bayeslm", *arguments, "--quiet", "--json", "--force"])
    return {"wall_seconds": done["seconds"], "peak_pss_mb": done["peak_pss_mb"], "maxrss_mb": done["maxrss_mb"],
            "json": json.loads(done["stdout"][done["stdout"].find("{"):])}


#: the methods compared at every domain size: name -> function(state, size) -> {"test_perplexity": ..., ...}
#: (a method's row is one entry; "seconds" / "process" are reported when present)
METHODS = {}


def method(name: str):
    def register(fn):
        METHODS[name] = fn
        return fn
    return register


@method("adapted dirichlet")
def adapted_dirichlet(state: Run, size: DomainSize) -> dict:
    """``bayeslm adapt GENERAL --train domain --valid julius_caesar``, timed as a whole process."""
    import bayeslm as blm

    out = state.work / f"adapted_{size.n}"
    process = bayeslm_process(adapt_arguments(state, size, out))
    adapted = blm.load(out)
    power = [row["mean"] for row in process["json"]["departure"]]
    return {"test_perplexity": adapted.evaluate(state.texts["test"]).predictive_perplexity,
            "seconds": process["json"]["adapt_seconds"], "process": process, "domain_power_mean": power}


def adapt_arguments(state: Run, size: DomainSize, out: Path) -> list[str]:
    """``bayeslm adapt`` of the general Dirichlet model to the domain text of ``size``, to ``out``."""
    return ["adapt", str(state.general_dir), "--train", str(size.path), "--valid", *map(str, play_paths(DOMAIN_VALID)),
            "--out", str(out), "--seed", "1"]


def alternating_rounds(state: Run, size: DomainSize, rounds: int) -> dict:
    """``rounds`` rounds of the whole general fit process, then the whole adapt process: on a shared
    machine the load drifts, and the two of a round see about the same one. Seconds of each, and the
    ratio of the medians (the issue's measure at ``--share``)."""
    fits, adapts = [], []
    for i in range(rounds):
        fits.append(bayeslm_process(state.fit_arguments(state.work / f"general_round_{i}"))["wall_seconds"])
        adapts.append(bayeslm_process(adapt_arguments(state, size, state.work / f"adapted_round_{i}"))["wall_seconds"])
    return {"fit_wall_seconds": fits, "adapt_wall_seconds": adapts, "share": float(np.median(adapts) / np.median(fits))}


@method("adapted pitman-yor")
def adapted_pitman_yor(state: Run, size: DomainSize) -> dict:
    """``bayeslm adapt`` of a ``pitman-yor-trigram-fast`` general model (fitted once per run, as a whole
    process), timed as a whole process; its general weights lam_k (docs/domain.md, "Pitman-Yor")."""
    import bayeslm as blm

    general_dir = state.work / "general_pitman_yor"
    if "pitman_yor_general" not in state.shared:
        process = bayeslm_process(["fit", "pitman-yor-trigram-fast", "--train", *map(str, play_paths(GENERAL)),
                                   "--out", str(general_dir), "--seed", "1"])
        general = blm.load(general_dir)
        assert general.vocab_.tokens == state.general.vocab_.tokens, "the Pitman-Yor general vocabulary differs"
        state.shared["pitman_yor_general"] = {
            "wall_seconds": process["wall_seconds"], "fit_seconds": process["json"]["fit_seconds"],
            "test_perplexity": general.evaluate(state.texts["test"]).predictive_perplexity}
    out = state.work / f"adapted_pitman_yor_{size.n}"
    process = bayeslm_process(["adapt", str(general_dir), "--train", str(size.path),
                               "--valid", *map(str, play_paths(DOMAIN_VALID)), "--out", str(out), "--seed", "1"])
    adapted = blm.load(out)
    per_token = adapted.per_token(state.texts["test"], entropies=False)
    size.shared["pitman_yor_test"] = (per_token["token"].to_numpy(), per_token["log_prob_nats"].to_numpy())
    return {"test_perplexity": adapted.evaluate(state.texts["test"]).predictive_perplexity,
            "valid_perplexity": adapted.evaluate(state.texts["valid"]).predictive_perplexity,
            "seconds": process["json"]["adapt_seconds"], "process": process,
            "rounds": adapted.options["rounds"], "sweeps": adapted.options["sweeps"],
            "table_moves": adapted.options["table_moves"], "seatings": adapted.options["seatings"],
            "general_weight_mean": [row["mean"] for row in process["json"]["departure"]]}


@method("dirichlet concat")
def dirichlet_concat(state: Run, size: DomainSize) -> dict:
    """The general model's configuration fitted on general + domain (in this process)."""
    import bayeslm as blm

    config = state.config
    concat = blm.DirichletLM(order=3, min_count=1, model_config=config["prior"],
                             sampler_config={**config["sampler"], "random_seed": 1, "progressbar": False})
    concat.fit(state.texts["general"].concat(size.corpus))
    assert set(concat.vocab_.tokens) == set(state.general.vocab_.tokens), "the concatenation's vocabulary differs"
    return {"test_perplexity": concat.evaluate(state.texts["test"]).predictive_perplexity, "seconds": concat.fit_seconds_}


def kenlm_domain_scores(state: Run, size: DomainSize) -> dict:
    """log10 p of valid and test under KenLM's model of the domain text alone (made once per size)."""
    if "kenlm_domain" not in size.shared:
        arpa = state.work / f"domain_{size.n}.arpa"
        seconds = lmplz(state.kenlm_bin, write_lines(state.work / f"domain_{size.n}.tok", size.lines), arpa)
        unseen = len(state.words - {word for line in size.lines for word in line.split()})
        size.shared["kenlm_domain"] = {"seconds": seconds, **{
            split: kenlm_log10(arpa, state.texts[f"{split}_lines"], unseen) for split in ("valid", "test")}}
    return size.shared["kenlm_domain"]


@method("kenlm general")
def kenlm_general(state: Run, size: DomainSize) -> dict:
    return {"test_perplexity": perplexity_log10(state.kenlm_general["test"]), "seconds": state.lmplz_general}


@method("kenlm domain")
def kenlm_domain(state: Run, size: DomainSize) -> dict:
    scores = kenlm_domain_scores(state, size)
    return {"test_perplexity": perplexity_log10(scores["test"]), "seconds": scores["seconds"]}


@method("kenlm concat")
def kenlm_concat(state: Run, size: DomainSize) -> dict:
    text = write_lines(state.work / f"concat_{size.n}.tok", state.texts["general_lines"] + size.lines)
    seconds = lmplz(state.kenlm_bin, text, state.work / f"concat_{size.n}.arpa")
    return {"test_perplexity": perplexity_log10(kenlm_log10(state.work / f"concat_{size.n}.arpa", state.texts["test_lines"])),
            "seconds": seconds}


@method("kenlm interpolated")
def kenlm_interpolated(state: Run, size: DomainSize) -> dict:
    """``l p_general + (1 - l) p_domain`` of the KenLM models, ``l`` on a grid of 0.01 chosen on valid."""
    domain = kenlm_domain_scores(state, size)
    grid = np.round(np.arange(0.01, 1.0, 0.01), 2)
    valid_ppl = [perplexity_log10(interpolation(state.kenlm_general["valid"], domain["valid"], w)) for w in grid]
    weight = float(grid[int(np.argmin(valid_ppl))])
    size.shared["kenlm_interpolated_test"] = interpolation(state.kenlm_general["test"], domain["test"], weight) * np.log(10)
    return {"test_perplexity": perplexity_log10(interpolation(state.kenlm_general["test"], domain["test"], weight)),
            "interpolation_weight_general": weight}


#: groups of test positions for where the adapted Pitman-Yor LM gains or loses against the KenLM interpolation:
#: by how often the domain text has the predicted word
DOMAIN_COUNT_GROUPS = [("unseen in domain", 0, 0), ("1-10 in domain", 1, 10), ("11-100 in domain", 11, 100),
                       (">100 in domain", 101, np.inf)]


def gain_by_group(state: Run, size: DomainSize) -> list[dict] | None:
    """Per group of test positions (``<unk>``, ``</s>``, then the predicted word's count in the domain
    text): positions, mean log probability (nats) of the adapted Pitman-Yor LM and of the KenLM
    interpolation, and the group's share of their per-token difference over all positions (the
    groups' shares sum to ``log(KenLM perplexity / adapted perplexity)``)."""
    if "pitman_yor_test" not in size.shared or "kenlm_interpolated_test" not in size.shared:
        return None
    tokens, ours = size.shared["pitman_yor_test"]
    kenlm = size.shared["kenlm_interpolated_test"]
    expected = [("<unk>" if w == "<oov>" else w) for line in state.texts["test_lines"] for w in line.split() + ["</s>"]]
    assert list(tokens) == expected and len(kenlm) == len(tokens), "the positions of the two scores differ"
    domain_count: dict[str, int] = {}
    for line in size.lines:
        for w in line.split():
            domain_count[w] = domain_count.get(w, 0) + 1
    count = np.array([domain_count.get(w, 0) for w in tokens])
    special = (tokens == "<unk>") | (tokens == "</s>")
    groups = [("<unk>", tokens == "<unk>"), ("</s>", tokens == "</s>")] + [
        (name, ~special & (count >= lo) & (count <= hi)) for name, lo, hi in DOMAIN_COUNT_GROUPS]
    return [{"group": name, "positions": int(sel.sum()), "pitman_yor_mean": float(ours[sel].mean()),
             "kenlm_interpolated_mean": float(kenlm[sel].mean()),
             "share_of_difference": float((ours[sel] - kenlm[sel]).sum() / tokens.size)} for name, sel in groups
            if sel.any()]


def run_size(state: Run, words: int, target: bool) -> dict:
    """Every method at one domain size (``target``: the size of the issue's time target, 5% of the general text)."""
    size = DomainSize(state, words)
    print(f"domain text of {size.n} words ...", flush=True)
    methods = {name: fn(state, size) for name, fn in METHODS.items()}
    rounds = alternating_rounds(state, size, state.args.rounds) if target and state.args.rounds > 0 else None
    return {"domain_words": size.n, "domain_sentences": size.corpus.n_sentences, "time_target": target,
            "test_perplexity": {name: r["test_perplexity"] for name, r in methods.items()}, "methods": methods,
            "alternating_rounds": rounds, "pitman_yor_gain_by_group": gain_by_group(state, size)}


def plot(rows: list[dict], general_ppl: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    words = [r["domain_words"] for r in rows]
    for name in METHODS:
        ax.plot(words, [r["test_perplexity"][name] for r in rows], marker="o", label=name)
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


def print_pitman_yor(rows: list[dict], py_general: dict) -> None:
    """The adapted Pitman-Yor rows: process seconds, validation perplexity, general weights, the KenLM target."""
    print(f"pitman-yor general (pitman-yor-trigram-fast): whole `bayeslm fit` process {py_general['wall_seconds']:.1f} s "
          f"(fit_seconds {py_general['fit_seconds']:.1f} s); test perplexity {py_general['test_perplexity']:.2f}")
    py_adapted = [r["methods"]["adapted pitman-yor"] for r in rows]
    print(f"{'py adapt process s':24s}" + "".join(f"{a['process']['wall_seconds']:12.2f}" for a in py_adapted))
    print(f"{'py valid perplexity':24s}" + "".join(f"{a['valid_perplexity']:12.2f}" for a in py_adapted)
          + f"  ({py_adapted[0]['rounds']} seating rounds, {py_adapted[0]['sweeps']} Gibbs sweeps with "
            f"{py_adapted[0]['table_moves']} table-count move each, {py_adapted[0]['seatings']} seatings kept)")
    for k in range(len(py_adapted[0]["general_weight_mean"])):
        print(f"{f'py lam_{k + 1} mean':24s}" + "".join(f"{a['general_weight_mean'][k]:12.3f}" for a in py_adapted))
    print(f"{'py adapt / py general':24s}" + "".join(f"{a['process']['wall_seconds'] / py_general['wall_seconds']:12.3f}"
                                                   for a in py_adapted) + "  (whole processes)")
    for r in rows:
        if r["time_target"]:
            share = r["methods"]["adapted pitman-yor"]["process"]["wall_seconds"] / py_general["wall_seconds"]
            print(f"{r['domain_words']:>6d} words: pitman-yor adapt process {share:.1%} of its general fit process "
                  f"(target <= {TARGET_ADAPT_SHARE:.0%}: {'PASS' if share <= TARGET_ADAPT_SHARE else 'FAIL'})")
        if r.get("pitman_yor_gain_by_group"):
            print(f"{r['domain_words']:>6d} words: adapted pitman-yor minus KenLM interpolation, nats per test token, by "
                  f"group (positions, mean log p of each, share of the difference):")
            for g in r["pitman_yor_gain_by_group"]:
                print(f"        {g['group']:18s} {g['positions']:7d}  {g['pitman_yor_mean']:8.3f} {g['kenlm_interpolated_mean']:8.3f}"
                      f"  {g['share_of_difference']:+.4f}")
    for r in rows:
        ratio = r["test_perplexity"]["adapted pitman-yor"] / best_kenlm(r)
        print(f"{r['domain_words']:>6d} words: adapted pitman-yor / best KenLM: {ratio:.3f} (target <= "
              f"{PY_TARGET_VS_KENLM}: {'PASS' if ratio <= PY_TARGET_VS_KENLM else 'FAIL'})")


def print_table(result: dict) -> None:
    rows, general = result["sizes"], result["general"]
    print(f"\ngeneral: {general['training_tokens']} tokens, vocabulary {general['vocabulary']}; whole `bayeslm fit` "
          f"process {general['wall_seconds']:.1f} s (fit_seconds {general['fit_seconds']:.1f} s, peak tree PSS "
          f"{general['peak_pss_mb']:.0f} MiB); dirichlet general test perplexity {general['test_perplexity']:.2f}")
    print(f"{'test perplexity':24s}" + "".join(f"{r['domain_words']:>12d}" for r in rows))
    for name in METHODS:
        print(f"{name:24s}" + "".join(f"{r['test_perplexity'][name]:12.2f}" for r in rows))
    adapted = [r["methods"]["adapted dirichlet"] for r in rows]
    lines = {
        "interpolation weight": [f"{r['methods']['kenlm interpolated']['interpolation_weight_general']:12.2f}"
                                 for r in rows],
        "adapt process seconds": [f"{a['process']['wall_seconds']:12.2f}" for a in adapted],
        "  adapt_seconds (in fn)": [f"{a['seconds']:12.2f}" for a in adapted],
        "adapt / general process": [f"{r['adapt_share']:12.3f}" for r in rows],
        "adapt peak PSS MiB": [f"{a['process']['peak_pss_mb']:12.0f}" for a in adapted],
        "concat fit seconds (fn)": [f"{r['methods']['dirichlet concat']['seconds']:12.1f}" for r in rows],
    }
    lines.update({f"lam_{k + 1} posterior mean": [f"{a['domain_power_mean'][k]:12.4g}" for a in adapted]
                  for k in range(len(adapted[0]["domain_power_mean"]))})
    for label, cells in lines.items():
        print(f"{label:24s}" + "".join(cells))
    if result["pitman_yor_general"] is not None:  # None: run with --no-pitman-yor
        print_pitman_yor(rows, result["pitman_yor_general"])
    for r in rows:
        better = r["test_perplexity"]["adapted dirichlet"] < r["test_perplexity"]["dirichlet concat"]
        share = r["alternating_rounds"]["share"] if r["alternating_rounds"] else r["adapt_share"]
        print(f"{r['domain_words']:>6d} words: adapted < dirichlet concat: {'PASS' if better else 'FAIL'}; "
              f"adapted / best KenLM: {r['test_perplexity']['adapted dirichlet'] / best_kenlm(r):.3f}; "
              f"adapt process {r['adapt_share']:.1%} of the general fit process"
              + (f" (target <= {TARGET_ADAPT_SHARE:.0%} at 5% as much text, {share:.1%}: "
                 f"{'PASS' if share <= TARGET_ADAPT_SHARE else 'FAIL'})" if r["time_target"] else ""))
        if r["alternating_rounds"]:
            rounds = r["alternating_rounds"]
            print(f"        in {len(rounds['fit_wall_seconds'])} alternating rounds: general fit process "
                  + " / ".join(f"{x:.2f}" for x in rounds["fit_wall_seconds"]) + " s, adapt process "
                  + " / ".join(f"{x:.2f}" for x in rounds["adapt_wall_seconds"]) + f" s: medians' ratio {rounds['share']:.1%}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 50000], help="domain words")
    parser.add_argument("--share", type=float, default=0.05,
                        help="also a domain of this share of the general text's words, where the time target holds "
                             "(0: none; default %(default)s)")
    parser.add_argument("--draws", type=int, default=1000, help="draws and tuning steps per chain (2 chains)")
    parser.add_argument("--seed", type=int, default=0, help="order of the domain pool's sentences")
    parser.add_argument("--kenlm-bin", default=None, help="directory of lmplz (default: $KENLM_BIN, ...)")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    parser.add_argument("--plot", type=Path, default=None, help="write the learning curve (PNG) here")
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternating rounds of the general fit and the adapt process at --share, whose medians' "
                             "ratio is the time target's measure (0: the single processes' ratio; default %(default)s)")
    parser.add_argument("--no-pitman-yor", action="store_true",
                        help="leave out the adapted Pitman-Yor rows (its general fit and adaptations take minutes)")
    args = parser.parse_args(argv)
    if args.no_pitman_yor:
        METHODS.pop("adapted pitman-yor")
    if not DATA.is_dir():
        sys.exit(f"domain_adapt: needs {DATA} (the shared data beside the repository)")
    kenlm_bin = find_kenlm_bin(args.kenlm_bin)
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="domain_adapt_") as tmp:
        state = Run(args, kenlm_bin, Path(tmp))
        general_tokens = state.texts["general"].n_tokens
        sizes = [(words, False) for words in args.sizes]
        if args.share > 0:
            sizes = sorted(sizes + [(round(args.share * general_tokens), True)])
        rows = [run_size(state, words, target) for words, target in sizes]
        fit = state.general_process
        for r in rows:
            r["adapt_share"] = r["methods"]["adapted dirichlet"]["process"]["wall_seconds"] / fit["wall_seconds"]
        result = {
            "general": {"training_tokens": general_tokens, "vocabulary": len(state.general.vocab_),
                        "wall_seconds": fit["wall_seconds"], "fit_seconds": fit["json"]["fit_seconds"],
                        "peak_pss_mb": fit["peak_pss_mb"], "maxrss_mb": fit["maxrss_mb"],
                        "lmplz_seconds": state.lmplz_general,
                        "test_perplexity": state.general.evaluate(state.texts["test"]).predictive_perplexity},
            "pitman_yor_general": state.shared.get("pitman_yor_general"),
            "sizes": rows, "draws": args.draws, "share": args.share, "command": " ".join(sys.argv),
            "load_average_after": os.getloadavg()[0], **git_state(),
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
