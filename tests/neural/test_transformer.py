"""TinyGPT and its checkpoints (bayeslm/neural/transformer.py), its training (bayeslm/neural/training.py), and
the gpt-bll family (bayeslm/neural/gpt.py).

Tiny models throughout (one or two layers, 16-32 wide, blocks of 16) and at most a few
hundred training steps, so the module runs in seconds.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from corpora import CAT_LINES as LINES
from model_dirs import writable_copy
from sampling import GPT_DRAWS, TINY_GPT as SMALL

torch = pytest.importorskip("torch")
torch.set_num_threads(1)  # tiny models: one thread is as fast, and far faster on a shared machine

import bayeslm as blm  # noqa: E402
from bayeslm.exceptions import ConfigError, ModelFileError, VocabularyMismatchError  # noqa: E402
from bayeslm.neural.gpt import _stream_of, _window_features  # noqa: E402
from bayeslm.neural.training import TrainConfig, train_gpt  # noqa: E402
from bayeslm.neural.transformer import GPTConfig, TinyGPT, load_checkpoint, save_checkpoint  # noqa: E402

TINY = dict(vocab_size=12, block_size=16, n_layer=2, n_head=2, n_embd=16)


def tiny(seed=0, **kw) -> TinyGPT:
    torch.manual_seed(seed)
    return TinyGPT(GPTConfig(**{**TINY, **kw}))


def pattern_stream(n=3000, seed=0) -> np.ndarray:
    """A learnable stream: a repeating pattern with a little noise."""
    rng = np.random.default_rng(seed)
    base = np.tile(np.array([3, 4, 5, 6, 7, 8, 9, 10, 11, 2]), n // 10 + 1)[:n]
    noise = rng.random(n) < 0.05
    base[noise] = rng.integers(3, 12, noise.sum())
    return base


# ------------------------------------------------------------------------ the model
def test_import_bayeslm_does_not_import_torch():
    code = "import sys, bayeslm; bayeslm.GPTLM; bayeslm.BayesianLastLayer; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_causal_mask_later_tokens_never_change_earlier_outputs():
    model = tiny().eval()
    x = torch.randint(0, 12, (3, 16), generator=torch.Generator().manual_seed(1))
    logits, _ = model(x)
    feats = model.features(x)
    for t in (0, 5, 14):
        y = x.clone()
        y[:, t + 1:] = (y[:, t + 1:] + 1) % 12  # change every later token
        logits2, _ = model(y)
        assert torch.equal(logits[:, :t + 1], logits2[:, :t + 1])
        assert torch.equal(feats[:, :t + 1], model.features(y)[:, :t + 1])
        assert not torch.allclose(logits[:, t + 1:], logits2[:, t + 1:])


def test_bidirectional_model_sees_later_tokens():
    model = tiny(causal=False).eval()
    x = torch.randint(0, 12, (1, 16), generator=torch.Generator().manual_seed(1))
    y = x.clone()
    y[0, -1] = (y[0, -1] + 1) % 12
    assert not torch.allclose(model(x)[0][:, 0], model(y)[0][:, 0])


def test_explicit_attention_equals_fused_attention():
    model = tiny().eval()
    x = torch.randint(0, 12, (2, 10), generator=torch.Generator().manual_seed(2))
    maps = model.attention_maps(x)
    assert len(maps) == 2 and maps[0].shape == (2, 2, 10, 10)
    assert torch.allclose(maps[0].sum(-1), torch.ones(2, 2, 10))
    assert float(maps[0].detach().triu(1).abs().max()) == 0.0  # causal: no weight on later positions
    block = model.transformer.h[0]
    h = block.ln_1(model.transformer.wte(x) + model.transformer.wpe(torch.arange(10)))
    assert torch.allclose(block.attn(h), block.attn(h, return_attention=True)[0], atol=1e-6)


def test_features_are_the_input_of_the_output_layer_and_weights_are_tied():
    model = tiny().eval()
    x = torch.randint(0, 12, (2, 8))
    assert torch.allclose(model(x)[0], model.lm_head(model.features(x)))
    assert model.lm_head.weight is model.transformer.wte.weight
    assert tiny(tie_weights=False).lm_head.weight is not tiny(tie_weights=False).transformer.wte.weight


def test_too_long_input_is_refused():
    with pytest.raises(AssertionError, match="block size"):
        tiny()(torch.zeros(1, 17, dtype=torch.long))


def test_bad_settings_are_refused():
    with pytest.raises(ConfigError, match="multiple of n_head"):
        GPTConfig(n_embd=10, n_head=3)
    with pytest.raises(ConfigError, match="regularization"):
        TrainConfig(regularization="dropout")
    with pytest.raises(ConfigError, match="masked-token objective needs a model with causal=False"):
        train_gpt(tiny(), pattern_stream(), TrainConfig(max_steps=2, objective="masked"), progress=False, mask_id=1)


def test_generate_is_seeded():
    model = tiny().eval()
    start = torch.tensor([[3, 4]])
    a = model.generate(start, 5, generator=torch.Generator().manual_seed(0))
    b = model.generate(start, 5, generator=torch.Generator().manual_seed(0))
    assert a.shape == (1, 7) and torch.equal(a, b)


# ------------------------------------------------------------------------ training
FAST = dict(max_steps=120, batch_size=16, learning_rate=1e-2, min_lr=1e-3, warmup_steps=10, eval_interval=40,
            eval_batches=2)


def test_training_learns_a_pattern_and_keeps_the_best_weights():
    model = tiny()
    stream = pattern_stream()
    result = train_gpt(model, stream, TrainConfig(**FAST), valid_stream=pattern_stream(seed=1), progress=False)
    losses = [h["valid_loss"] for h in result.history]
    assert losses[-1] < 0.5 * np.log(12)  # far below the uniform loss
    assert result.best_valid_loss == min(losses)
    assert result.stopped == "max_steps" and result.steps == 120


def test_bf16_training_follows_fp32_and_keeps_fp32_weights():
    """Under bfloat16 autocast the loss curve stays near fp32's (same seed and batches), the weights and
    Adam's moments stay fp32, and a run is repeatable; an unknown precision is refused."""
    runs = {}
    for precision in ("fp32", "bf16", "bf16"):
        model = tiny()
        result = train_gpt(model, pattern_stream(), TrainConfig(**{**FAST, "precision": precision}),
                           valid_stream=pattern_stream(seed=1), progress=False)
        assert all(p.dtype == torch.float32 for p in model.parameters())
        runs.setdefault(precision, []).append(([h["valid_loss"] for h in result.history], model.state_dict()))
    (fp32_losses, _), = runs["fp32"]
    (bf16_losses, first), (again, second) = runs["bf16"]
    assert bf16_losses == again and all(torch.equal(first[k], second[k]) for k in first)
    assert bf16_losses != fp32_losses  # the forward pass did run in bfloat16
    assert bf16_losses[-1] < 0.5 * np.log(12)
    assert np.allclose(bf16_losses, fp32_losses, rtol=0.1, atol=0.02)
    with pytest.raises(ConfigError, match="precision"):
        TrainConfig(precision="fp16")


def test_a_run_stopped_by_its_time_budget_evaluates_its_last_step():
    """The steps after the last evaluation are not lost: the time budget's stop evaluates them."""
    model = tiny()
    cfg = TrainConfig(**{**FAST, "max_steps": 100000, "max_seconds": 1.0, "eval_interval": 100000})
    result = train_gpt(model, pattern_stream(), cfg, valid_stream=pattern_stream(seed=1), progress=False)
    assert result.stopped == "max_seconds" and result.steps > 0
    assert [h["step"] for h in result.history] == [result.steps] and result.best_step == result.steps
    assert result.best_valid_loss == result.history[-1]["valid_loss"]


def test_l2_is_the_gaussian_prior_on_the_weights():
    """A huge L2 penalty (or decoupled decay) pulls the weight matrices to 0; without it they stay."""
    cfg = {**FAST, "max_steps": 100, "min_lr": 1e-5, "warmup_steps": 5}
    norms = {}
    for reg, l2 in (("l2", 0.0), ("l2", 10.0), ("adamw", 10.0)):
        model = tiny()
        train_gpt(model, pattern_stream(), TrainConfig(**{**cfg, "l2": l2, "regularization": reg}), progress=False)
        norms[reg, l2] = float(model.transformer.h[0].mlp.c_fc.weight.detach().norm())
        assert float(model.transformer.h[0].mlp.c_fc.bias.detach().abs().max()) > 0  # biases: no prior
    assert norms["l2", 10.0] < 0.1 * norms["l2", 0.0]
    assert norms["adamw", 10.0] < 0.5 * norms["l2", 0.0]  # decoupled decay: only approximately a prior


def test_training_is_seeded_and_resumes_bit_for_bit(tmp_path):
    cfg = TrainConfig(**{**FAST, "max_steps": 60, "eval_interval": 30, "seed": 3})
    a, b = tiny(), tiny()
    train_gpt(a, pattern_stream(), cfg, valid_stream=pattern_stream(seed=1), progress=False)
    train_gpt(b, pattern_stream(), cfg, valid_stream=pattern_stream(seed=1), progress=False)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    # interrupted after 30 steps (same schedule), then resumed from the checkpoint
    c = tiny()
    first = TrainConfig(**{**FAST, "max_steps": 60, "eval_interval": 30, "seed": 3})
    ckpt = tmp_path / "ckpt"

    class Stop(Exception):
        pass

    import bayeslm.neural.training as tr

    real = tr._save_training
    calls = []

    def save_then_stop(*args, **kwargs):
        real(*args, **kwargs)
        calls.append(1)
        raise Stop

    tr._save_training = save_then_stop
    try:
        with pytest.raises(Stop):
            train_gpt(c, pattern_stream(), first, valid_stream=pattern_stream(seed=1), checkpoint_dir=ckpt,
                      progress=False)
    finally:
        tr._save_training = real
    assert json.loads((ckpt / "config.json").read_text())["train_state"]["step"] == 30
    d = tiny(seed=99)  # other initial weights: the checkpoint must override them
    train_gpt(d, pattern_stream(), first, valid_stream=pattern_stream(seed=1), checkpoint_dir=ckpt, progress=False)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), d.state_dict().values()))


def test_masked_objective_trains_a_bidirectional_model():
    model = tiny(causal=False)
    stream = pattern_stream()
    result = train_gpt(model, stream, TrainConfig(**{**FAST, "objective": "masked", "max_steps": 400}),
                       valid_stream=pattern_stream(seed=1), progress=False, mask_id=1)
    # a masked token is predictable from both sides of the pattern
    assert result.best_valid_loss < 0.5 * np.log(12)


def test_fine_tuning_continues_from_trained_weights():
    model = tiny()
    train_gpt(model, pattern_stream(), TrainConfig(**FAST), progress=False)
    shifted = (pattern_stream(seed=2) - 3 + 1) % 9 + 3  # the same tokens, another pattern
    before = model(torch.as_tensor(shifted[:16])[None], torch.as_tensor(shifted[1:17])[None])[1].item()
    train_gpt(model, shifted, TrainConfig(**{**FAST, "max_steps": 60}), progress=False)
    after = model(torch.as_tensor(shifted[:16])[None], torch.as_tensor(shifted[1:17])[None])[1].item()
    assert after < before


# ------------------------------------------------------------------------ checkpoints
def test_checkpoint_round_trip_gives_identical_logits(tmp_path):
    model = tiny().eval()
    save_checkpoint(tmp_path / "c", model, meta={"note": "x"})
    loaded, meta = load_checkpoint(tmp_path / "c")
    x = torch.randint(0, 12, (2, 16))
    assert torch.equal(model(x)[0], loaded(x)[0])
    assert meta["note"] == "x" and loaded.lm_head.weight is loaded.transformer.wte.weight
    assert not list((tmp_path / "c").glob("*.pt")) and not list((tmp_path / "c").glob("*.pkl"))


def test_truncated_or_foreign_checkpoints_give_one_line_errors(tmp_path):
    save_checkpoint(tmp_path / "c", tiny())
    weights = tmp_path / "c" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ModelFileError, match="truncated or not a safetensors file") as err:
        load_checkpoint(tmp_path / "c")
    assert "\n" not in str(err.value)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "config.json").write_text('{"format": "something-else"}')
    with pytest.raises(ModelFileError, match="not a bayeslm TinyGPT checkpoint"):
        load_checkpoint(tmp_path / "d")
    (tmp_path / "d" / "config.json").write_text('{"format": "bayeslm-gpt')
    with pytest.raises(ModelFileError, match="truncated or not JSON"):
        load_checkpoint(tmp_path / "d")
    save_checkpoint(tmp_path / "e", tiny())
    doc = json.loads((tmp_path / "e" / "config.json").read_text())
    doc["gpt"]["n_embd"] = 32
    (tmp_path / "e" / "config.json").write_text(json.dumps(doc))
    with pytest.raises(ModelFileError, match="does not match the settings"):
        load_checkpoint(tmp_path / "e")
    with pytest.raises(ModelFileError, match="no config.json"):
        load_checkpoint(tmp_path / "nothing")


# ------------------------------------------------------------------------ the gpt-bll family
@pytest.fixture(scope="module")
def fitted(gpt_lm):
    """The shared character GPT of LINES (tests/conftest.py); never modify it."""
    return gpt_lm


def test_the_stream_scores_every_token_and_line_break_with_context_across_lines(fitted):
    corpus = fitted.encode(["ab", "c"])
    stream = _stream_of(corpus)
    eos = fitted.vocab_.eos_id
    ids = [fitted.vocab_.id(c) for c in "abc"]
    assert stream.tolist() == [eos, ids[0], ids[1], eos, ids[2], eos]
    lp = fitted.predictive_log_prob(["ab", "c"])
    assert lp.shape == (corpus.n_tokens + corpus.n_sentences,)
    # context across lines: the first token of line 2 depends on line 1
    a = fitted.predictive_log_prob(["the cat", "sat"])[-4]
    b = fitted.predictive_log_prob(["a dog", "sat"])[-4]
    assert a != b


def test_window_features_equal_one_pass_within_the_block(fitted):
    body = fitted.body_
    stream = _stream_of(fitted.encode(LINES[:3]))
    feats = _window_features(body, stream, 16, 8)
    with torch.no_grad():
        first = body.features(torch.from_numpy(stream[:16])[None])[0].numpy()
    assert np.allclose(feats[:16], first, atol=1e-6)
    # positions 16..23 are read in the window stream[8:24]: each sees 9 to 16 tokens
    with torch.no_grad():
        second = body.features(torch.from_numpy(stream[8:24])[None])[0].numpy()
    assert np.allclose(feats[16:24], second[8:], atol=1e-5)


def test_gpt_bll_answers_the_protocol(fitted):
    """Scores and entropies equal a dense softmax of the body's features under each draw of
    the last layer's weights (computed here; float32 features: to 1e-6), and the protocol's
    methods agree with them."""
    test = ["the dog sat on the mat", "a cat ran"]
    ev = fitted.evaluate(test)
    assert ev.positions == sum(len(t) + 1 for t in test) and ev.tokens == sum(len(t) for t in test)
    assert fitted.idata["posterior"].sizes["draw"] == GPT_DRAWS["draws"]
    assert set(fitted.idata["posterior"].data_vars) >= {"W", "b", "weight_scale"}
    stream = fitted.stream(test)
    features = np.hstack([fitted.stream_features(stream), np.ones((len(stream) - 1, 1))])
    logits = np.einsum("svd,nd->snv", fitted.bll_.theta_draws(), features)  # (draw, position, token)
    p = np.exp(logits - logits.max(axis=2, keepdims=True))
    p /= p.sum(axis=2, keepdims=True)
    p_bar = p.mean(axis=0)
    target = stream[1:]
    predictive = np.log(p_bar[np.arange(target.size), target])
    assert ev.predictive_cross_entropy_bits == pytest.approx(-predictive.mean() / np.log(2), rel=1e-6)
    assert ev.predictive_cross_entropy_bits < np.log2(len(fitted.vocab_))  # better than uniform
    per_draw = np.log(p[:, np.arange(target.size), target]).mean(axis=1) / -np.log(2)
    np.testing.assert_allclose(ev.cross_entropy_bits.values.ravel(), per_draw, rtol=1e-6)
    split = fitted.entropy_split(test)
    np.testing.assert_allclose(split["total"], -(p_bar * np.log(p_bar)).sum(axis=1), rtol=1e-6)
    np.testing.assert_allclose(split["aleatoric"], -(p * np.log(p)).sum(axis=2).mean(axis=0), rtol=1e-6)
    assert np.allclose(split["total"], split["aleatoric"] + split["epistemic"])
    frame = fitted.per_token(test)
    assert len(frame) == ev.positions and "".join(frame["token"][:3]) == "the"
    scores = fitted.score(test)
    assert np.isclose(scores["log_prob_nats"].sum(), fitted.predictive_log_prob(test).sum())
    ctx = fitted.encode(["the ca"]).ids[None, :]
    p = fitted.next_token_probs(ctx)
    assert p.shape == (GPT_DRAWS["draws"], 1, len(fitted.vocab_)) and np.allclose(p.sum(-1), 1)
    assert np.allclose(fitted.predictive_probs(ctx), p.mean(0))
    conts = fitted.generate("the ", n=2, max_tokens=6, random_seed=0)
    assert len(conts) == 2 and all(len(c.tokens) <= 6 for c in conts)
    assert conts[0].text == fitted.generate("the ", n=2, max_tokens=6, random_seed=0)[0].text


def test_leading_start_markers_read_as_a_line_break(fitted):
    v = fitted.vocab_
    ids = [v.id(c) for c in "the"]
    padded = np.array([[v.bos_id] * 13 + ids])
    plain = np.array([[v.eos_id] + ids])
    assert np.allclose(fitted.context_features(padded), fitted.context_features(plain))


def test_contexts_longer_than_the_block_are_truncated_with_a_warning(fitted):
    v = fitted.vocab_
    long = np.array([[v.id("a")] * 20 + [v.id(c) for c in "the"]])
    with pytest.warns(UserWarning, match="exceed the block size"):
        p_long = fitted.next_token_probs(long)
    assert np.allclose(p_long, fitted.next_token_probs(long[:, -16:]))


def test_gpt_bll_save_and_load_give_identical_logits(fitted, gpt_dir):
    loaded = blm.load(gpt_dir)
    assert isinstance(loaded, blm.GPTLM)
    x = torch.from_numpy(_stream_of(fitted.encode(LINES[:2]))[:16])[None]
    assert torch.equal(fitted.body_(x)[0], loaded.body_(x)[0])
    test = ["the cat sat"]
    assert np.array_equal(fitted.predictive_log_prob(test), loaded.predictive_log_prob(test))
    assert np.allclose(fitted.entropy_split(test), loaded.entropy_split(test))
    assert not list(gpt_dir.rglob("*.pkl"))


def test_gpt_bll_rejects_a_foreign_tokenizer_and_a_broken_directory(fitted, gpt_dir, tmp_path):
    words = blm.Corpus.from_lines(["the cat"], tokenizer=blm.WordTokenizer())
    with pytest.raises(VocabularyMismatchError, match=r"tokenised with WordTokenizer\(\) but the model uses CharTokenizer"):
        fitted.evaluate(words)
    broken = writable_copy(gpt_dir, tmp_path)
    arrays = broken / "arrays.npz"
    arrays.write_bytes(arrays.read_bytes()[:200])
    with pytest.raises(ModelFileError, match="corrupt or truncated"):
        blm.load(broken)


def test_gpt_bll_nan_body_features_are_a_clear_error(gpt_dir):
    broken = blm.load(gpt_dir)
    with torch.no_grad():
        broken.body_.transformer.ln_f.weight.fill_(float("nan"))
    broken._set_body(broken.body_)  # weights changed: forget cached features
    with pytest.raises(blm.BayesLMError, match="NaN or infinite"):
        broken.predictive_log_prob(["the cat"])


def test_fine_tuning_a_gpt_bll_model_on_another_text(fitted, gpt_dir):
    other = blm.Corpus.from_lines(["a cat sat on a log"] * 40, tokenizer=blm.CharTokenizer())
    tuned = blm.GPTLM(**{**SMALL, "train_steps": 40, "init_from": str(gpt_dir)},
                      sampler_config={**GPT_DRAWS, "random_seed": 1})
    tuned.fit(other)
    assert tuned.vocab_.tokens == fitted.vocab_.tokens  # the base model's vocabulary
    assert tuned.evaluate(["a cat sat on a log"]).predictive_cross_entropy_bits < \
        fitted.evaluate(["a cat sat on a log"]).predictive_cross_entropy_bits
    words = blm.Corpus.from_lines(["a cat"] * 40, tokenizer=blm.WordTokenizer())
    with pytest.raises(VocabularyMismatchError, match="was trained with a 'char' tokenizer, this model uses 'word'"):
        blm.GPTLM(**{**SMALL, "init_from": str(gpt_dir)}, tokenizer="word").fit(words)
    assert tuned.get_config()["model"]["block_size"] == SMALL["block_size"] and tuned.id != tuned.config_id
    with pytest.raises(ConfigError, match=r"block_size = 32.*set model.block_size = 16"):  # never rewritten to match
        blm.GPTLM(**{**SMALL, "block_size": 32, "init_from": str(gpt_dir)},
                  sampler_config={**GPT_DRAWS, "random_seed": 1}).fit(other)


def test_gpt_bll_options_are_checked():
    with pytest.raises(ConfigError, match="method"):
        blm.GPTLM(method="magic")
    with pytest.raises(ConfigError, match="order is block_size"):
        blm.GPTLM(order=5, block_size=16)
    with pytest.raises(ConfigError, match="has no option"):
        blm.GPTLM(n_layers=3)

    with pytest.raises(ConfigError, match="precision"):
        blm.GPTLM(precision="fp16")


def test_gpt_bll_options_are_the_settings_the_body_is_built_and_trained_with():
    """The [model] options map onto GPTConfig and TrainConfig (what bench/bll_compare.py reads from
    gpt-char-bll.toml), the training precision included."""
    from bayeslm.neural.gpt import GPTOptions, body_settings, training_settings

    options = GPTOptions(block_size=16, n_embd=32, batch_size=7, learning_rate=0.02, train_seconds=5.0,
                         precision="bf16").model_dump()
    body, train = GPTConfig(vocab_size=5, **body_settings(options)), TrainConfig(**training_settings(options))
    assert (body.block_size, body.n_embd, body.n_layer) == (16, 32, 4)
    assert (train.batch_size, train.learning_rate, train.max_seconds, train.precision) == (7, 0.02, 5.0, "bf16")


# ------------------------------------------------------------------------ the held-out tail for the last layer
@pytest.mark.parametrize("pieces", [2, 7, 40])
def test_split_holdout_in_pieces_puts_every_position_in_one_stream(pieces):
    """Held out from several segments: the two streams, each read from line break to line
    break, partition the original positions; about ``fraction`` of every segment is held out."""
    from bayeslm.neural.gpt import split_holdout

    rng = np.random.default_rng(pieces)
    eos = 2
    # line i ends with token 100 + i, so every line can be told apart
    lines = [np.append(rng.integers(3, 30, int(rng.integers(0, 12))), 100 + i) for i in range(400)]
    stream = np.concatenate([[eos]] + [np.concatenate([line, [eos]]) for line in lines])
    body, held = split_holdout(stream, 0.1, eos, pieces=pieces)
    assert body[0] == held[0] == eos and body[-1] == held[-1] == eos
    assert (len(body) - 1) + (len(held) - 1) == len(stream) - 1
    assert abs((len(held) - 1) / (len(stream) - 1) - 0.1) < 0.05  # cut at line breaks: a line or so per piece
    # the lines (runs between line breaks) of both streams are exactly the original lines, each once
    split_lines = lambda s: [tuple(x) for x in np.split(s, np.flatnonzero(s == eos))[1:-1]]  # (</s>, tokens)
    assert sorted(split_lines(body) + split_lines(held)) == sorted(split_lines(stream))
    # spread over the text: a held-out line from each of the segments
    held_lines = np.array([line[-1] - 100 for line in split_lines(held)])  # original line numbers, in order
    assert np.all(np.diff(held_lines) > 0)
    assert 1 + np.count_nonzero(np.diff(held_lines) > 1) == pieces  # one contiguous run per segment
    # a text too short for that many pieces is cut into fewer
    short = np.concatenate([[eos]] + [np.concatenate([line, [eos]]) for line in lines[:9]])
    b, h = split_holdout(short, 0.3, eos, pieces=pieces)
    assert (len(b) - 1) + (len(h) - 1) == len(short) - 1
    # ... and so many that each would hold out a whole line of two: at most lines x fraction
    few = np.concatenate([[eos]] + [np.concatenate([np.full(5, 7), [eos]]) for _ in range(120)])  # equal lines
    b, h = split_holdout(few, 0.05, eos, pieces=100)
    assert (len(h) - 1) / (len(few) - 1) == pytest.approx(0.05, abs=0.01)  # 6 pieces of 20 lines, one held out each
    with pytest.raises(ConfigError, match="fit_holdout_pieces"):
        split_holdout(stream, 0.1, eos, pieces=0)


def test_split_holdout_cuts_the_tail_at_a_line_break():
    from bayeslm.neural.gpt import split_holdout

    corpus = blm.Corpus.from_lines(LINES, tokenizer=blm.CharTokenizer())
    stream = _stream_of(corpus)
    eos = corpus.vocab.eos_id
    body, tail = split_holdout(stream, 0.2, eos)
    assert body[-1] == eos and tail[0] == eos  # both are streams: they start (and the body ends) at a line break
    assert np.array_equal(np.concatenate([body, tail[1:]]), stream)  # one shared </s>, no shared position
    L = len(stream) - 1
    longest = max(len(line) for line in LINES) + 1
    assert abs((len(tail) - 1) - 0.2 * L) <= longest  # the fraction, to within a line
    same, none = split_holdout(stream, 0.0, eos)
    assert same is stream and none is None
    with pytest.raises(ConfigError, match="fit_holdout"):
        split_holdout(stream, 1.0, eos)


def test_the_body_never_trains_on_the_positions_the_last_layer_is_fitted_on(monkeypatch):
    import bayeslm.neural.gpt as gpt
    import bayeslm.neural.training as training

    seen = {}
    real_train, real_sampled = training.train_gpt, gpt.GPTLM._sampled_features

    def train_spy(model, stream, *args, **kwargs):
        seen["body"] = np.asarray(stream).copy()
        return real_train(model, stream, *args, **kwargs)

    def sampled_spy(self, stream, n, seed):
        seen.setdefault("sampled", []).append(np.asarray(stream).copy())
        X, y = real_sampled(self, stream, n, seed)
        seen.setdefault("targets", []).append(y)
        return X, y

    monkeypatch.setattr(training, "train_gpt", train_spy)
    monkeypatch.setattr(gpt.GPTLM, "_sampled_features", sampled_spy)
    # the tail of the training text holds a line ("zzz qqq") the body never sees
    lines = LINES[:60] + ["zzz qqq zzz"] * 12
    train = blm.Corpus.from_lines(lines, tokenizer=blm.CharTokenizer())
    lm = blm.GPTLM(**{**SMALL, "train_steps": 20, "fit_holdout": 0.1, "fit_holdout_pieces": 1},
                   sampler_config={**GPT_DRAWS, "random_seed": 0})
    lm.fit(train, valid=LINES[:10])
    stream = _stream_of(lm.encode(lines))
    body, fit_stream = seen["body"], seen["sampled"][0]
    assert np.array_equal(np.concatenate([body, fit_stream[1:]]), stream)  # the body's stream + the held-out tail
    z = lm.vocab_.id("z")
    assert z not in body and z in fit_stream  # the held-out lines are the last layer's only
    assert set(np.unique(seen["targets"][0])) <= set(np.unique(fit_stream[1:]))
    assert lm.fit_split_ == {"fit_holdout": 0.1, "fit_holdout_pieces": 1, "body_positions": len(body) - 1,
                             "holdout_positions": len(fit_stream) - 1}
    assert lm.idata["posterior"].attrs["holdout_positions"] == len(fit_stream) - 1
    assert lm.bll_.info_["positions"] == len(seen["targets"][0]) <= len(fit_stream) - 1
    # fit_holdout = 0: the last layer is fitted on the body's own training text
    seen.clear()
    lm0 = blm.GPTLM(**{**SMALL, "train_steps": 5, "fit_holdout": 0.0},
                    sampler_config={**GPT_DRAWS, "random_seed": 0})
    lm0.fit(train)
    assert np.array_equal(seen["body"], stream) and np.array_equal(seen["sampled"][0], stream)
    assert lm0.fit_split_["holdout_positions"] == 0
    with pytest.raises(ConfigError, match="fit_holdout"):
        blm.GPTLM(fit_holdout=1.5)
