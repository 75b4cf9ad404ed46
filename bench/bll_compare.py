"""Bayesian last layers on trained TinyGPT bodies (one per seed): bayeslm vs MAP, temperature, laplace-torch and VBLL.

What it measures
----------------
On ``../shared/data/shakespeare`` at character level (bayeslm's ``CharTokenizer``; every
non-empty line, stripped, is read as one stream with a ``</s>`` for each line break, so
every character and every line break is scored and the context runs across lines):

(a) The body. The training stream is split by ``bayeslm.gpt.split_holdout``: the last
    ``--fit-holdout`` (5%) of each of ``--fit-holdout-pieces`` (default 100, as gpt-bll's:
    203,233 positions spread over all 31 training plays; with 1, one contiguous tail, the
    last 60,572 positions of two_gentlemen_of_verona and all of winters_tale, 203,581
    positions) equal segments, cut at line breaks,
    are held out from the body and kept for the last layers; validation text stays for
    early stopping, temperature and dropout rate only, test text for the figures. One
    TinyGPT per ``--seeds`` seed is trained on the rest with ``bayeslm.train_gpt``, with
    the body and training settings of ``models/gpt-char-bll.toml`` (its defaults are what
    this bench measures), for at most ``--train-seconds`` (default the configuration's
    ``train_seconds``, 900) seconds of wall clock, with one torch thread (on a shared
    2-core machine two threads were erratic: 1.1 to 8.8 steps per second against a steady
    5). Checkpoints go to ``--work``/seed<k>/body; a rerun resumes or reuses them (and
    refuses a body trained on another split, with other settings or another seed).
    Its valid and test bits per character are measured on *all* of the valid and test
    text with its own output layer (the MAP head), reading windows of ``block_size``
    advancing by half of it. Beside them KenLM's modified Kneser-Ney on the characters of
    the same lines (``lmplz``, ``$KENLM_BIN`` or ``--kenlm-bin``; orders ``--kenlm-orders``
    6-10, the best on valid; trained on all training lines, each line read after ``<s>``
    where the GPT reads across lines), every character and line break scored.
(b) Features. The final-LayerNorm output h at 50,000 positions of the held-out tail of
    the training text (the second halves of random windows; with ``--fit-holdout 0``: of
    the body's own training text), 20,000 validation positions, and 20,000 positions each of:
    test text; the same test text with its characters shuffled (``ood_shuffled``); the
    Python documentation topics of the standard library's ``pydoc_data`` (``ood_pydoc``;
    characters the vocabulary lacks read as ``<unk>``); and any text folder given as
    ``--ood NAME=DIR`` (``ood_NAME``). Every method sees the same features and seeds.
    ``--test DIR`` replaces the test text (held-out text of another corpus: the same
    verdicts on it).
(c) Last layers, all fitted on the same 50k held-out training positions:
    ``map`` (the body's own output layer, untied), ``map_temperature`` (its logits over a
    temperature fitted on the validation positions), ``mc_dropout`` (dropout on h, rate
    chosen on validation), ``laplace_torch_kron`` (laplace-torch: last-layer Laplace,
    Kronecker-factored GGN, prior precision by marginal likelihood, Monte Carlo
    predictive), ``vbll`` (vbll.DiscClassification trained on the features), and
    bayeslm's ``laplace`` (the default: EKFAC, the prior at the MAP head calibrated on the
    validation positions, its scale by evidence, the covariance's prior precision chosen
    by validation NLL, ``bayeslm.neural.last_layer_rule``), ``laplace_evidence`` (prior at
    the calibrated head, scale by evidence: the default before the rule),
    ``laplace_integrate`` (prior scale integrated over), ``laplace_head_prior`` (prior
    centred at the head itself), ``laplace_zero_prior`` (prior centred at 0: the head
    refitted on the 50k positions), ``advi`` (mean-field) and ``advi_lowrank`` (both with
    the calibrated prior).
(d) Per method: test NLL (bits per character on the 20k test positions), ECE (15 bins,
    top-1), AUROC of mutual information (and of predictive entropy) for telling the OOD
    positions from test positions, fit seconds, predictive milliseconds per position.
    Paired bootstrap (2,000 resamples of positions) 95% intervals of bayeslm's best method
    minus the best peer, for NLL and ECE. Per body, the rule's choice and why, and the
    issue's verdicts on the default (``laplace``), one line each, PASS or FAIL: NLL against
    temperature scaling and ECE against the best other method (the interval's lower end at
    most 0), AUROC(MI) at least laplace-torch's and VBLL's on each OOD set, fit seconds at
    most laplace-torch's.
(e) The NUTS reference: on a subsample (``--nuts-positions``), bayeslm's Laplace and ADVI
    posteriors against NUTS on the same positions (means and standard deviations of the
    weights' contrasts, and of the predictive).

Run
---
    KENLM_BIN=... .venv/bin/python bench/bll_compare.py --seeds 0 1 2 --out bench/out/bll_compare.json
    .venv/bin/python bench/bll_compare.py --train-only --no-kenlm   # (a) alone, the bodies only
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, git_state  # noqa: E402

DATA = REPO.parent / "shared/data/shakespeare"
CONFIG = "gpt-char-bll"  # the body and its training: this configuration's [model] settings
UNK_CHAR = "\u2047"  # a character of no line: what KenLM reads for one the vocabulary lacks

log = logging.getLogger("bll_compare")


def config_settings(name: str = CONFIG) -> tuple[dict, dict]:
    """The body's GPTConfig settings and its TrainConfig settings (with ``max_seconds``) of a configuration."""
    from bayeslm.core.config import load_config
    from bayeslm.neural.gpt import GPTOptions, body_settings, training_settings

    model = {k: v for k, v in load_config(name)["model"].items() if k != "family"}
    options = GPTOptions(**model).model_dump()
    return body_settings(options), training_settings(options)


BODY, TRAIN = config_settings()


def read_corpora(data: Path, test: Path | None = None):
    """Character corpora of ``data``/train, valid and test (or the folder ``test``), in the training text's vocabulary."""
    import bayeslm as blm

    tok = blm.CharTokenizer()
    train = blm.Corpus.from_paths(data / "train", tokenizer=tok)
    vocab = blm.Vocabulary.build(train.type_counts())
    train = train.with_vocabulary(vocab)
    valid = blm.Corpus.from_paths(data / "valid", tokenizer=tok).with_vocabulary(vocab)
    test = blm.Corpus.from_paths(test or data / "test", tokenizer=tok).with_vocabulary(vocab)
    return vocab, tok, train, valid, test


def ood_streams(args, vocab, test_stream, seed) -> dict:
    """The OOD streams by name: the test text shuffled, the Python documentation, and every ``--ood NAME=DIR``."""
    import bayeslm as blm
    from bayeslm.neural.gpt import _stream_of

    shuffled = test_stream.copy()
    np.random.default_rng(seed + 7).shuffle(shuffled[1:])
    streams = {"shuffled": shuffled, "pydoc": pydoc_stream(vocab)}
    for name, folder in args.ood:
        streams[name] = _stream_of(blm.Corpus.from_paths(folder, tokenizer=blm.CharTokenizer()).with_vocabulary(vocab))
    return streams


def train_body(args, seed, work: Path, vocab, body_stream, valid):
    """Train (or resume, or reuse) the body of ``seed`` in ``work``/body on ``body_stream`` (the training
    stream without the held-out tail); returns (model, train state, checkpoint meta)."""
    import torch

    import bayeslm as blm
    from bayeslm.neural.gpt import _stream_of
    from bayeslm.neural.transformer import load_checkpoint, read_checkpoint_meta

    ckpt = work / "body"
    cfg = blm.TrainConfig(**{**TRAIN, "max_seconds": args.train_seconds, "seed": seed})
    config = blm.GPTConfig(vocab_size=len(vocab), **BODY)
    if (ckpt / "config.json").is_file():
        meta = read_checkpoint_meta(ckpt)
        if meta.get("fit_holdout") != args.fit_holdout or meta.get("train_tokens") != int(len(body_stream)) \
                or meta.get("fit_holdout_pieces", 1) != args.fit_holdout_pieces:
            raise SystemExit(f"{ckpt} holds a body trained on another split (fit_holdout {meta.get('fit_holdout')}, "
                             f"{meta.get('train_tokens')} tokens; now {args.fit_holdout}, {len(body_stream)}): "
                             f"give another --work")
        if meta.get("gpt") != asdict(config) or meta.get("train", {}).get("seed") != seed:
            raise SystemExit(f"{ckpt} holds a body of other settings or another seed than {CONFIG}'s, seed {seed}: "
                             f"give another --work")
        state = meta.get("train_state", {})
        finished = state.get("step", 0) >= cfg.max_steps or state.get("elapsed", 0) >= args.train_seconds or \
            (cfg.patience is not None and state.get("bad_evals", 0) >= cfg.patience)
        if finished:
            model, _ = load_checkpoint(ckpt)
            log.info("reusing the trained body in %s (step %d, %.0f s)", ckpt, state["step"], state["elapsed"])
            return model, state, meta
    torch.manual_seed(seed)
    model = blm.TinyGPT(config)
    blm.train_gpt(model, body_stream, cfg, valid_stream=_stream_of(valid), checkpoint_dir=ckpt,
                  progress=not args.quiet,
                  meta={"vocabulary": list(vocab.tokens), "tokenizer": {"kind": "char"},
                        "fit_holdout": args.fit_holdout, "fit_holdout_pieces": args.fit_holdout_pieces})
    meta = read_checkpoint_meta(ckpt)
    return model, meta["train_state"], meta


# -- features -------------------------------------------------------------------------
def gpt_test_bits(body, stream) -> float:
    """Bits per scored position of the body's own output layer on a whole stream (windows block_size / half of it)."""
    import torch

    from bayeslm.neural.gpt import _window_features

    T = body.config.block_size
    h = _window_features(body, stream, T, T // 2)
    total = 0.0
    y = torch.from_numpy(stream[1:].astype(np.int64))
    with torch.no_grad():
        for start in range(0, h.shape[0], 8192):
            logits = body.lm_head(torch.from_numpy(h[start:start + 8192]))
            total += float(torch.nn.functional.cross_entropy(logits, y[start:start + 8192], reduction="sum"))
    return total / h.shape[0] / np.log(2)


def pydoc_stream(vocab):
    import bayeslm as blm
    from bayeslm.neural.gpt import _stream_of

    return _stream_of(blm.demo_corpus(tokenizer=blm.CharTokenizer()).with_vocabulary(vocab))


# -- methods: every one gives draws of theta = [W, b], shape (samples, V, d + 1) --------------
def fit_bayeslm(method, X, y, V, valid, head, seed, draws, **kw):
    import bayeslm as blm

    bll = blm.BayesianLastLayer(method=method, draws=draws, random_seed=seed, **kw)
    start = time.perf_counter()
    bll.fit(X, y, n_classes=V, valid=valid, init=(head, None))
    seconds = time.perf_counter() - start
    return bll.theta_draws(), seconds, dict(bll.info_)


def fit_laplace_torch(X, y, V, head, draws, seed):
    """laplace-torch: last-layer Laplace, Kronecker GGN, prior precision by marginal likelihood."""
    import torch
    from laplace import Laplace

    torch.manual_seed(seed)
    d = X.shape[1]
    model = torch.nn.Sequential(torch.nn.Identity(), torch.nn.Linear(d, V, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(torch.from_numpy(head).float())
    data = torch.utils.data.TensorDataset(torch.from_numpy(X).float(), torch.from_numpy(y).long())
    loader = torch.utils.data.DataLoader(data, batch_size=1024)
    start = time.perf_counter()
    la = Laplace(model, "classification", subset_of_weights="last_layer", hessian_structure="kron")
    la.fit(loader)
    la.optimize_prior_precision(method="marglik")
    seconds = time.perf_counter() - start
    samples = la.sample(n_samples=draws).detach().numpy().reshape(draws, V, d)
    thetas = np.concatenate([samples, np.zeros((draws, V, 1))], axis=2)
    info = {"prior_precision": float(la.prior_precision.reshape(-1)[0])}
    return thetas, seconds, info, la


def laplace_torch_predictive_ms(la, X, n=200) -> float:
    """Milliseconds per position of laplace-torch's public predictive (GLM, its default probit link)."""
    import torch

    x = torch.from_numpy(X[:n]).float()
    start = time.perf_counter()
    for i in range(0, n, 50):
        la(x[i:i + 50])
    return (time.perf_counter() - start) / n * 1000


class VBLLDraws:
    """vbll.DiscClassification on [h, 1], warm-started at the MAP head, trained on the features
    with Adam. Low-rank covariance (rank 10): vbll's default dense one broadcasts the
    (V, D, D) Cholesky factor over the batch (batch x V x D x D floats), which took 1.2 s per
    step of 64 positions here (78 minutes for 5 epochs of 50k positions)."""

    def __init__(self, X, y, V, head, seed, epochs=2, batch=512, lr=1e-3):
        import torch
        import vbll

        torch.manual_seed(seed)
        N, d = X.shape
        self.layer = vbll.DiscClassification(d + 1, V, regularization_weight=1.0 / N, parameterization="lowrank", cov_rank=10,
                                             prior_scale=1.0, wishart_scale=1.0)
        with torch.no_grad():
            self.layer.W_mean.copy_(torch.from_numpy(np.hstack([head, np.zeros((V, 1))])).float())
        Xa = torch.from_numpy(np.hstack([X, np.ones((N, 1))])).float()
        yt = torch.from_numpy(y).long()
        opt = torch.optim.Adam(self.layer.parameters(), lr=lr)
        gen = torch.Generator().manual_seed(seed)
        start = time.perf_counter()
        for _ in range(epochs):
            perm = torch.randperm(N, generator=gen)
            for i in range(0, N, batch):
                idx = perm[i:i + batch]
                loss = self.layer(Xa[idx]).train_loss_fn(yt[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        self.seconds = time.perf_counter() - start

    def probs(self, X, draws, seed):
        """(draws, n, V): softmax of logit samples from vbll's logit predictive (W and noise)."""
        import torch

        torch.manual_seed(seed)
        xa = torch.from_numpy(np.hstack([X, np.ones((X.shape[0], 1))])).float()
        out = []
        with torch.no_grad():
            for i in range(0, xa.shape[0], 512):
                z = self.layer.logit_predictive(xa[i:i + 512]).rsample(torch.Size([draws]))
                out.append(torch.softmax(z, -1).double().numpy())
        return np.concatenate(out, axis=1)


# -- metrics -------------------------------------------------------------------------------
def metrics_of_probs(p_draws, y):
    """Per position: log predictive prob (nats), confidence, correct, total entropy, MI."""
    pbar = p_draws.mean(0)
    lp = np.log(np.maximum(pbar[np.arange(y.size), y], 1e-300))
    ent = lambda p: -(p * np.log(np.maximum(p, 1e-300))).sum(-1)
    total = ent(pbar)
    mi = np.maximum(total - ent(p_draws).mean(0), 0.0) if p_draws.shape[0] > 1 else np.zeros(y.size)
    top = pbar.argmax(1)
    return {"lp": lp, "conf": pbar[np.arange(y.size), top], "correct": top == y, "entropy": total, "mi": mi}


def probs_of_thetas(thetas, X, chunk=2048):
    from bayeslm.neural.last_layer import _augment, _probs

    Xa = _augment(X)
    return np.concatenate([_probs(Xa[i:i + chunk], thetas) for i in range(0, Xa.shape[0], chunk)], axis=1)


def auroc(scores_in, scores_out) -> float:
    """P(score of an OOD position > score of an in-distribution one), ties counting half."""
    from scipy.stats import rankdata

    s = np.concatenate([scores_in, scores_out])
    r = rankdata(s)
    n_in, n_out = len(scores_in), len(scores_out)
    return float((r[n_in:].sum() - n_out * (n_out + 1) / 2) / (n_in * n_out))


def ece(conf, correct) -> float:
    from bayeslm.stats.calibration import expected_calibration_error

    return expected_calibration_error(conf, correct, n_bins=15)


def paired_bootstrap(a: dict, b: dict, n_boot: int, seed: int) -> dict:
    """95% intervals of (a - b) for NLL (bits) and ECE, resampling positions jointly."""
    rng = np.random.default_rng(seed)
    n = a["lp"].size
    d_nll, d_ece = np.empty(n_boot), np.empty(n_boot)
    for k in range(n_boot):
        i = rng.integers(0, n, n)
        d_nll[k] = (-a["lp"][i].mean() + b["lp"][i].mean()) / np.log(2)
        d_ece[k] = ece(a["conf"][i], a["correct"][i]) - ece(b["conf"][i], b["correct"][i])
    return {"nll_bits_diff": float((-a["lp"].mean() + b["lp"].mean()) / np.log(2)),
            "nll_bits_diff_ci95": [float(np.quantile(d_nll, 0.025)), float(np.quantile(d_nll, 0.975))],
            "ece_diff": float(ece(a["conf"], a["correct"]) - ece(b["conf"], b["correct"])),
            "ece_diff_ci95": [float(np.quantile(d_ece, 0.025)), float(np.quantile(d_ece, 0.975))]}


def nuts_reference(X, y, Xt, V, head, n_pos, seed, draws, tune):
    """NUTS, Laplace and ADVI on the same n_pos positions: agreement of the posteriors."""
    import bayeslm as blm

    Xs, ys = X[:n_pos], y[:n_pos]
    fits = {}
    for name, kw in [("nuts", {"sampler_config": {"tune": tune, "chains": 1}}), ("laplace", {}),
                     ("laplace_integrate", {"prior_scale": "integrate"}), ("advi", {"advi_steps": 10000}),
                     ("advi_lowrank", {"advi_steps": 5000, "advi_learning_rate": 1e-2})]:
        method = name.replace("_integrate", "")
        bll = blm.BayesianLastLayer(method=method, draws=draws, random_seed=seed, progressbar=False, **kw)
        start = time.perf_counter()
        bll.fit(Xs, ys, n_classes=V, init=(head, None))
        fits[name] = (bll, time.perf_counter() - start)
        log.info("reference %s on %d positions: %.1f s", name, n_pos, fits[name][1])
    ref = fits["nuts"][0]
    th0 = ref.theta_draws()
    c0 = th0 - th0.mean(1, keepdims=True)
    m0, s0 = c0.mean(0), c0.std(0)
    p0 = ref.predict_proba(Xt)
    out = {"positions": n_pos, "nuts_seconds": fits["nuts"][1], "nuts_divergences": ref.info_.get("nuts_divergences")}
    for name, (bll, sec) in fits.items():
        if name == "nuts":
            continue
        th = bll.theta_draws()
        c = th - th.mean(1, keepdims=True)
        z = np.abs(c.mean(0) - m0) / s0
        ratio = c.std(0) / s0
        p = bll.predict_proba(Xt)
        out[name] = {"seconds": sec, "mean_diff_over_sd_median": float(np.median(z)),
                     "mean_diff_over_sd_p90": float(np.quantile(z, 0.9)),
                     "sd_ratio_median": float(np.median(ratio)),
                     "sd_ratio_p10_p90": [float(np.quantile(ratio, 0.1)), float(np.quantile(ratio, 0.9))],
                     "predictive_abs_diff_mean": float(np.abs(p - p0).mean()),
                     "predictive_abs_diff_max": float(np.abs(p - p0).max())}
    return out


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA), help="a folder with train/, valid/ and test/ text")
    parser.add_argument("--test", type=Path, help="test text from this folder instead of DATA/test")
    parser.add_argument("--ood", action="append", default=[], metavar="NAME=DIR",
                        help="another OOD set: the text files of DIR (repeatable)")
    parser.add_argument("--work", default=None,
                        help="where the bodies are trained or reused, one folder seed<k> per seed "
                             "(default bench/out/bll_compare_<holdout>x<pieces>)")
    parser.add_argument("--out", help="write the tables as JSON here")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="one body per seed (trained or reused)")
    parser.add_argument("--seed", type=int, help="the same as --seeds SEED")
    parser.add_argument("--train-seconds", type=float, default=None,
                        help=f"training budget of a body (default train_seconds of {CONFIG})")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (one is faster on a shared machine)")
    parser.add_argument("--fit-positions", type=int, default=50000)
    parser.add_argument("--fit-holdout", type=float, default=0.05,
                        help="fraction of the training stream (tails of segments, cut at line breaks) the body never "
                             "trains on; every last layer is fitted there (0: on the body's own training text)")
    parser.add_argument("--fit-holdout-pieces", type=int, default=100,
                        help="hold the fraction out of this many equal segments of the training stream, so the "
                             "held-out text samples the whole corpus (gpt-bll's default; 1: one contiguous tail)")
    parser.add_argument("--eval-positions", type=int, default=20000)
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--bootstrap", type=int, default=2000)
    parser.add_argument("--nuts-positions", type=int, default=0,
                        help="positions of the NUTS reference check (0: skip; it takes many minutes for ~11k weights)")
    parser.add_argument("--nuts-draws", type=int, default=300)
    parser.add_argument("--methods", nargs="+", default=None, help="only these methods")
    parser.add_argument("--kenlm-orders", type=int, nargs="+", default=[6, 7, 8, 9, 10],
                        help="KenLM character models tried (the best on valid is compared); at most 10")
    parser.add_argument("--kenlm-bin", help="directory holding lmplz (default $KENLM_BIN)")
    parser.add_argument("--no-kenlm", action="store_true", help="skip KenLM's character model")
    parser.add_argument("--train-only", action="store_true", help="train (or reuse) the bodies and score them only")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.seed is not None:
        args.seeds = [args.seed]
    ood = []
    for item in args.ood:
        name, _, folder = item.partition("=")
        if not name.isidentifier() or name in ("shuffled", "pydoc") or not Path(folder).is_dir():
            parser.error(f"--ood {item!r}: give NAME=DIR, NAME a word other than shuffled and pydoc, DIR a folder")
        ood.append((name, Path(folder)))
    args.ood = ood
    if args.train_seconds is None:
        args.train_seconds = TRAIN["max_seconds"]
    if max(args.kenlm_orders) > 10:
        parser.error("--kenlm-orders: at most 10")
    if args.work is None:
        args.work = str(REPO / f"bench/out/bll_compare_{args.fit_holdout:g}x{args.fit_holdout_pieces}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("pymc").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning)
    import torch

    torch.set_num_threads(args.threads)
    data = Path(args.data)
    if not data.is_dir():
        print(f"needs {data} (the shared data beside the repository)", file=sys.stderr)
        return 2
    load_before = os.getloadavg()[0]
    vocab, tok, train, valid, test = read_corpora(data, args.test)
    log.info("vocabulary %d; train %d chars, valid %d, test %d", len(vocab), train.n_tokens, valid.n_tokens,
             test.n_tokens)
    kenlm = None if args.no_kenlm else kenlm_side(args, {"train": train, "valid": valid, "test": test})
    bodies = [run_body(args, seed, vocab, train, valid, test, kenlm) for seed in args.seeds]
    report = {"schema": "bayeslm.bench.bll_compare/2", "data": str(data), "git": git_state(),
              "settings": {"config": CONFIG, **BODY, **TRAIN, "max_seconds": args.train_seconds},
              "kenlm": kenlm, "bodies": bodies,
              "load_average": {"before": load_before, "after": os.getloadavg()[0]}}
    print_summary(report)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=1), encoding="utf-8")
        log.info("wrote %s", args.out)
    return 0


# -- KenLM's character model, on the characters the GPT reads --------------------------------
def char_lines(corpus) -> list[str]:
    """Each line of a character corpus as the GPT reads it (a character the vocabulary lacks as one
    character no line has, which KenLM reads as its ``<unk>``)."""
    tokens = np.asarray(list(corpus.vocab.tokens), dtype=object)
    tokens[corpus.vocab.unk_id] = UNK_CHAR
    chars = tokens[corpus.ids]
    return ["".join(chars[a:b]) for a, b in zip(corpus.offsets[:-1], corpus.offsets[1:])]


def kenlm_side(args, corpora: dict) -> dict | None:
    """KenLM's modified Kneser-Ney on the training lines' characters (orders ``--kenlm-orders``, the best
    on valid): bits per character on valid and test, every character and line break scored, as
    the GPT's (each line read after ``<s>``, where the GPT reads across lines)."""
    import tempfile

    from open_vocabulary import kenlm_models

    kenlm_bin = args.kenlm_bin or os.environ.get("KENLM_BIN")
    if not kenlm_bin or not (Path(kenlm_bin) / "lmplz").is_file():
        log.warning("KenLM's lmplz not found (--kenlm-bin or $KENLM_BIN): no KenLM column")
        return None
    lines = {split: char_lines(corpus) for split, corpus in corpora.items()}
    with tempfile.TemporaryDirectory() as work:
        result = kenlm_models(lines, args.kenlm_orders, Path(kenlm_bin), Path(work))
    best = result["best"]
    log.info("KenLM characters: order %d, valid %.4f, test %.4f bits/char", best["order"],
             best["valid"]["bits_per_character"], best["test"]["bits_per_character"])
    return result


# -- one body and every last layer on it --------------------------------------------------------
def run_body(args, seed, vocab, train, valid, test, kenlm) -> dict:
    """Train (or reuse) the body of ``seed``, score it, fit and compare the last layers on it."""
    from bayeslm.neural.gpt import _stream_of, split_holdout

    work = Path(args.work) / f"seed{seed}"
    work.mkdir(parents=True, exist_ok=True)
    # the body never sees the held-out tail of the training stream; the last layers are fitted there
    body_stream, holdout_stream = split_holdout(_stream_of(train), args.fit_holdout, vocab.eos_id,
                                                pieces=args.fit_holdout_pieces)
    log.info("training stream: %d positions for the body, %d held out for the last layers (fit_holdout %.3f)",
             len(body_stream) - 1, 0 if holdout_stream is None else len(holdout_stream) - 1, args.fit_holdout)
    load_before = os.getloadavg()[0]
    body, state, _ = train_body(args, seed, work, vocab, body_stream, valid)
    load_after = os.getloadavg()[0]
    log.info("body %d: %d parameters, %d steps in %.0f s, best valid loss %.4f nats (%.4f bits) at step %d", seed,
             body.num_params(), state["step"], state["elapsed"], state["best_valid"] or float("nan"),
             (state["best_valid"] or float("nan")) / np.log(2), state["best_step"])
    body.eval()
    streams = {"train": holdout_stream if holdout_stream is not None else body_stream,
               "valid": _stream_of(valid), "test": _stream_of(test)}
    start = time.perf_counter()
    valid_bits, test_bits = gpt_test_bits(body, streams["valid"]), gpt_test_bits(body, streams["test"])
    log.info("GPT (MAP head) on all valid / test positions: %.4f / %.4f bits per character (%.0f s)",
             valid_bits, test_bits, time.perf_counter() - start)
    report = {"seed": seed, "work": str(work), "body": {
        "parameters": int(body.num_params()), "steps": state["step"], "train_seconds": state["elapsed"],
        "steps_per_second": state["step"] / max(state["elapsed"], 1e-9),
        "load_average_during_training": [load_before, load_after],
        "best_valid_bits": (state["best_valid"] or float("nan")) / np.log(2),
        "valid_bits_per_char_all_positions": valid_bits, "test_bits_per_char_all_positions": test_bits,
        "test_positions": int(streams["test"].size - 1)}}
    kenlm_bits = kenlm["best"]["test"]["bits_per_character"] if kenlm else None
    report["body_verdict"] = {"gpt_test_bits_at_most_2_35": bool(test_bits <= 2.35),
                              "gpt_test_bits_at_most_kenlm": None if kenlm_bits is None else bool(test_bits <= kenlm_bits),
                              "trained_within_budget": bool(state["elapsed"] <= args.train_seconds + 60)}
    if args.train_only:
        return report
    return {**report, **compare_last_layers(args, seed, body, streams, vocab)}


def compare_last_layers(args, seed, body, streams, vocab) -> dict:
    """Features of every stream, every method fitted and scored on them, the verdicts."""
    from bayeslm.neural.gpt import sampled_features

    streams = {**streams, **{f"ood_{k}": v for k, v in ood_streams(args, vocab, streams["test"], seed).items()}}
    ood = [k for k in streams if k.startswith("ood_")]
    feats = {}
    for k, (name, n) in enumerate([("train", args.fit_positions), ("valid", args.eval_positions),
                                   ("test", args.eval_positions), *((o, args.eval_positions) for o in ood)]):
        t0 = time.perf_counter()
        feats[name] = sampled_features(body, streams[name], n, seed + 100 + k)
        log.info("features %s: %d positions in %.1f s", name, feats[name][0].shape[0], time.perf_counter() - t0)
    X, y = feats["train"]
    X, y = X.astype(float), y.astype(np.int64)
    head = body.lm_head.weight.detach().numpy().astype(float).copy()  # the tied output layer, untied
    valid_xy = (feats["valid"][0].astype(float), feats["valid"][1])
    eval_sets = {k: (feats[k][0].astype(float), feats[k][1]) for k in ("test", *ood)}
    V = len(vocab)
    results, per_pos, peers_status = fit_methods(args, seed, X, y, V, valid_xy, head, eval_sets)
    nuts = None
    if args.nuts_positions > 0 and (not args.methods or "nuts" in args.methods):
        nuts = nuts_reference(X, y, eval_sets["test"][0][:2000], V, head, args.nuts_positions, seed,
                              args.nuts_draws, args.nuts_draws)
    return {"positions": {"fit": int(X.shape[0]), "valid": int(valid_xy[0].shape[0]),
                          **{k: int(v[0].shape[0]) for k, v in eval_sets.items()}},
            "draws": args.draws, "peers": peers_status, "methods": results,
            "verdict": verdict_of(results, per_pos, args.bootstrap, seed), "nuts_reference": nuts}


def fit_methods(args, seed, X, y, V, valid_xy, head, eval_sets) -> tuple[dict, dict, dict]:
    """Every method (``--methods``) fitted on (X, y) and scored on ``eval_sets``: (results, per-position
    test metrics, which peers ran)."""
    results, per_pos = {}, {}
    bayeslm_methods = {
        "laplace": dict(method="laplace"),  # the default: the covariance chosen on valid by the rule
        # the evidence's posterior at each prior mean (laplace_evidence: the default before the rule)
        "laplace_evidence": dict(method="laplace", prior_scale="evidence"),  # at the head calibrated on valid
        "laplace_integrate": dict(method="laplace", prior_scale="integrate"),
        "laplace_head_prior": dict(method="laplace", prior_mean="head", prior_scale="evidence"),  # the head itself
        "laplace_zero_prior": dict(method="laplace", prior_mean="zero", prior_scale="evidence"),  # the head refitted
        "advi": dict(method="advi", advi_steps=10000, advi_batch=512),
        "advi_lowrank": dict(method="advi_lowrank", advi_steps=10000, advi_batch=512, advi_rank=10,
                             advi_learning_rate=3e-3),
    }
    baselines = {"map": dict(method="map"), "map_temperature": dict(method="map_temperature"),
                 "mc_dropout": dict(method="mc_dropout")}
    wanted = set(args.methods) if args.methods else None

    def record(name, probs_fn, seconds, info, family):
        t0 = time.perf_counter()
        m = {k: metrics_of_probs(probs_fn(Xe), ye) for k, (Xe, ye) in eval_sets.items()}
        pred_ms = (time.perf_counter() - t0) / sum(len(v[1]) for v in eval_sets.values()) * 1000
        per_pos[name] = m["test"]
        results[name] = method_row(m, family, seconds, pred_ms, info)
        r = results[name]
        log.info("%-18s NLL %.4f bits  ECE %.4f  AUROC(MI) shuffled %.3f pydoc %.3f  fit %.1f s  predictive %.3f ms/pos",
                 name, r["nll_bits"], r["ece"], r["auroc_mi_shuffled"], r["auroc_mi_pydoc"], seconds, pred_ms)

    for name, kw in {**baselines, **bayeslm_methods}.items():
        if wanted and name not in wanted:
            continue
        thetas, sec, info = fit_bayeslm(kw.pop("method"), X, y, V, valid_xy, head, seed, args.draws, **kw)
        record(name, lambda Xe, th=thetas: probs_of_thetas(th, Xe), sec, info,
               "bayeslm" if name in bayeslm_methods else "baseline")
    peers_status = {}
    if not wanted or "laplace_torch_kron" in wanted:
        try:
            thetas, sec, info, la = fit_laplace_torch(X, y, V, head, args.draws, seed)
            info["public_predictive_ms_per_position"] = laplace_torch_predictive_ms(la, eval_sets["test"][0])
            record("laplace_torch_kron", lambda Xe, th=thetas: probs_of_thetas(th, Xe), sec, info, "peer")
            peers_status["laplace_torch_kron"] = "ok"
        except ImportError as err:
            peers_status["laplace_torch_kron"] = f"not installed ({err})"
            log.warning("laplace-torch unavailable: %s", err)
    if not wanted or "vbll" in wanted:
        try:
            vb = VBLLDraws(X, y, V, head, seed)
            record("vbll", lambda Xe: vb.probs(Xe, args.draws, seed), vb.seconds, {}, "peer")
            peers_status["vbll"] = "ok"
        except ImportError as err:
            peers_status["vbll"] = f"not installed ({err})"
            log.warning("vbll unavailable: %s", err)
    return results, per_pos, peers_status


def method_row(m: dict, family: str, seconds: float, pred_ms: float, info: dict) -> dict:
    """A method's figures from its per-position metrics on the test and OOD sets."""
    return {
        "family": family,
        "nll_bits": float(-m["test"]["lp"].mean() / np.log(2)),
        "ece": ece(m["test"]["conf"], m["test"]["correct"]),
        "accuracy": float(m["test"]["correct"].mean()),
        **{f"auroc_mi_{k[4:]}": auroc(m["test"]["mi"], v["mi"]) for k, v in m.items() if k.startswith("ood_")},
        **{f"auroc_entropy_{k[4:]}": auroc(m["test"]["entropy"], v["entropy"]) for k, v in m.items()
           if k.startswith("ood_")},
        "mean_mi_bits": {k: float(v["mi"].mean() / np.log(2)) for k, v in m.items()},
        "fit_seconds": float(seconds),
        "predictive_ms_per_position": float(pred_ms),
        "info": {k: v for k, v in info.items() if isinstance(v, (int, float, str))},
    }


def verdict_of(results: dict, per_pos: dict, n_boot: int, seed: int) -> dict:
    """The issue's comparisons on one body: bayeslm's best method (and ``laplace``) against the others."""
    ours = [k for k, v in results.items() if v["family"] == "bayeslm"]
    others = [k for k in ("map", "map_temperature", "laplace_torch_kron", "vbll") if k in results]
    if not ours or not others:
        return {}
    best_ours = min(ours, key=lambda k: results[k]["nll_bits"])
    best_nll = min(others, key=lambda k: results[k]["nll_bits"])
    best_ece = min(others, key=lambda k: results[k]["ece"])
    peers = [k for k in ("laplace_torch_kron", "vbll") if k in results]
    lt = results.get("laplace_torch_kron", {})
    auroc_keys = [k for k in results[best_ours] if k.startswith("auroc_mi_")]

    def against(name) -> dict:
        nll = paired_bootstrap(per_pos[name], per_pos[best_nll], n_boot, seed)
        ece_ = paired_bootstrap(per_pos[name], per_pos[best_ece], n_boot, seed + 1)
        row = results[name]
        out = {}
        if "map_temperature" in per_pos:  # the NLL verdict: against temperature scaling
            temp = paired_bootstrap(per_pos[name], per_pos["map_temperature"], n_boot, seed)
            out = {"vs_temperature": temp, "nll_not_worse_than_temperature": bool(temp["nll_bits_diff_ci95"][0] <= 0.0)}
        for k in auroc_keys:
            out[f"{k}_at_least_peers"] = bool(all(row[k] >= results[p][k] for p in peers))
        return {
            **out, "vs_best_nll": nll, "vs_best_ece": ece_,
            "nll_not_worse": bool(nll["nll_bits_diff_ci95"][0] <= 0.0),
            "ece_not_worse": bool(ece_["ece_diff_ci95"][0] <= 0.0),
            "auroc_mi_at_least_peers": bool(all(row[k] >= results[p][k] for p in peers for k in auroc_keys)),
            "fit_seconds": row["fit_seconds"], "laplace_torch_fit_seconds": lt.get("fit_seconds"),
            "fit_not_slower_than_laplace_torch": bool(lt) and bool(row["fit_seconds"] <= lt["fit_seconds"]),
            "predictive_speedup_over_laplace_torch": float(
                lt["info"]["public_predictive_ms_per_position"] / row["predictive_ms_per_position"]) if lt else None,
        }

    verdict = {"best_bayeslm_method": best_ours, "best_other_by_nll": best_nll, "best_other_by_ece": best_ece,
               **against(best_ours)}
    if "laplace" in results:  # the default on its own, whichever method won by NLL
        verdict["laplace"] = against("laplace")
    return verdict


def print_summary(report) -> None:
    """Per body its table and verdicts, the default's verdicts per body, then the bodies side by side with
    KenLM's character model."""
    for body in report["bodies"]:
        print(f"\n== body seed {body['seed']} ({body['work']})")
        print_table(body)
    print_verdicts(report["bodies"])
    kenlm = report["kenlm"]
    if kenlm:
        best = kenlm["best"]
        print(f"\nKenLM modified Kneser-Ney on characters, order {best['order']} (best on valid of "
              f"{[r['order'] for r in kenlm['runs']]}): valid {best['valid']['bits_per_character']:.4f}, "
              f"test {best['test']['bits_per_character']:.4f} bits/char")
    print(f"{'seed':>4s} {'steps':>6s} {'seconds':>8s} {'steps/s':>7s} {'valid bits':>10s} {'test bits':>9s} "
          f"{'<= KenLM':>8s}")
    for body in report["bodies"]:
        b, v = body["body"], body["body_verdict"]
        print(f"{body['seed']:4d} {b['steps']:6d} {b['train_seconds']:8.0f} {b['steps_per_second']:7.2f} "
              f"{b['valid_bits_per_char_all_positions']:10.4f} {b['test_bits_per_char_all_positions']:9.4f} "
              f"{str(v['gpt_test_bits_at_most_kenlm']):>8s}")


def verdict_lines(body: dict) -> list[tuple[str, str, bool]]:
    """The issue's verdicts on the default last layer (``laplace``) of one body: (verdict, figures, passed)."""
    v, methods = body.get("verdict", {}).get("laplace"), body.get("methods", {})
    if not v:
        return []
    ours = methods["laplace"]
    lines = []
    if "vs_temperature" in v:
        t = v["vs_temperature"]
        lo, hi = t["nll_bits_diff_ci95"]
        lines.append(("NLL not worse than temperature scaling",
                      f"{ours['nll_bits']:.4f} vs {methods['map_temperature']['nll_bits']:.4f} bits: "
                      f"{t['nll_bits_diff']:+.4f} [{lo:+.4f}, {hi:+.4f}]", v["nll_not_worse_than_temperature"]))
    e = v["vs_best_ece"]
    best_ece = body["verdict"]["best_other_by_ece"]
    lo, hi = e["ece_diff_ci95"]
    lines.append((f"ECE not worse than the best other ({best_ece})",
                  f"{ours['ece']:.4f} vs {methods[best_ece]['ece']:.4f}: {e['ece_diff']:+.4f} [{lo:+.4f}, {hi:+.4f}]",
                  v["ece_not_worse"]))
    peers = [p for p in ("laplace_torch_kron", "vbll") if p in methods]
    for k in (k for k in ours if k.startswith("auroc_mi_")):
        figures = f"{ours[k]:.3f} vs " + ", ".join(f"{p} {methods[p][k]:.3f}" for p in peers)
        lines.append((f"AUROC(MI) {k[9:]} at least the peers'", figures, v[f"{k}_at_least_peers"]))
    if v["laplace_torch_fit_seconds"] is not None:
        lines.append(("fit time at most laplace-torch's",
                      f"{v['fit_seconds']:.1f} vs {v['laplace_torch_fit_seconds']:.1f} s",
                      v["fit_not_slower_than_laplace_torch"]))
    return lines


def print_verdicts(bodies: list) -> None:
    """One line per verdict per body (PASS/FAIL), after the rule's choice on each body and why."""
    rows = [(b["seed"], b["methods"]["laplace"]["info"]) for b in bodies if "laplace" in b.get("methods", {})]
    if not rows:
        return
    print("\nThe default's selection rule (validation positions only) on each body:")
    for seed, info in rows:
        print(f"  seed {seed}: {info.get('rule_reason', 'no rule (no validation positions)')}")
    print(f"\n{'seed':>4s}  {'verdict on the default (laplace)':52s} {'figures':58s} result")
    for body in bodies:
        for name, figures, passed in verdict_lines(body):
            print(f"{body['seed']:4d}  {name:52s} {figures:58s} {'PASS' if passed else 'FAIL'}")


def print_table(report) -> None:
    b = report["body"]
    print(f"body: {b['parameters']} parameters, {b['steps']} steps in {b['train_seconds']:.0f} s; "
          f"test {b['test_bits_per_char_all_positions']:.4f} bits/char on all {b['test_positions']} positions "
          f"(valid {b['valid_bits_per_char_all_positions']:.4f}; best valid batches {b['best_valid_bits']:.4f})")
    print(json.dumps(report["body_verdict"]))
    if "methods" not in report:
        return
    aurocs = [k for k in next(iter(report["methods"].values())) if k.startswith("auroc_")]
    names = [k.replace("auroc_mi_", "AUROC MI ").replace("auroc_entropy_", "AUROC H ") for k in aurocs]
    print(f"{'method':20s} {'NLL bits':>9s} {'ECE':>7s} " + " ".join(f"{n:>{max(len(n), 6)}s}" for n in names)
          + f" {'fit s':>7s} {'pred ms/pos':>11s}")
    for name, r in report["methods"].items():
        print(f"{name:20s} {r['nll_bits']:9.4f} {r['ece']:7.4f} "
              + " ".join(f"{r[k]:>{max(len(n), 6)}.3f}" for k, n in zip(aurocs, names))
              + f" {r['fit_seconds']:7.1f} {r['predictive_ms_per_position']:11.4f}")
    lt = report["methods"].get("laplace_torch_kron")
    if lt:
        print(f"laplace-torch public predictive (GLM, probit): {lt['info']['public_predictive_ms_per_position']:.2f} ms/position")
    if report["verdict"]:
        print(json.dumps(report["verdict"], indent=1))
    if report["nuts_reference"]:
        print("NUTS reference:", json.dumps(report["nuts_reference"], indent=1))


if __name__ == "__main__":
    sys.exit(main())
