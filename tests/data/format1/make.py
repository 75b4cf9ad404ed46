"""Writes the model directories of format 1 that tests/test_legacy_format.py loads.

Run once, with the code of commit ebfca31 (the last before the subpackage layout), from
the repository root: ``python tests/data/format1/make.py``. The directories and
``expected.json`` (what that code computed on ``test.txt``) are committed; the test
checks that today's code loads them and scores ``test.txt`` identically. Re-running it
with newer code would defeat the test.
"""

import json
from pathlib import Path

import numpy as np

import bayeslm as blm

HERE = Path(__file__).parent
rng = np.random.default_rng(2026)
nouns = "cat dog bird fish king queen ship house tree river".split()
verbs = "sees likes eats finds builds sails guards paints".split()
adjs = "big small red old new quiet".split()
dets = "the a every some".split()


def sentence():
    words = [rng.choice(dets)]
    if rng.random() < 0.5:
        words.append(rng.choice(adjs))
    words += [rng.choice(nouns), rng.choice(verbs), rng.choice(dets), rng.choice(nouns)]
    if rng.random() < 0.3:
        words += ["and", rng.choice(verbs), rng.choice(dets), rng.choice(nouns)]
    return " ".join(map(str, words))


(HERE / "train.txt").write_text("\n".join(sentence() for _ in range(300)) + "\n")
test_lines = [sentence() for _ in range(20)] + ["the zebra sees a unicorn", "every big ship sails"]
(HERE / "test.txt").write_text("\n".join(test_lines) + "\n")

train = blm.Corpus.from_paths([HERE / "train.txt"])
quick = {"draws": 60, "tune": 60, "chains": 2, "cores": 1, "progressbar": False, "random_seed": 7}
models = {
    "dirichlet": blm.DirichletLM(order=3, sampler_config=quick),
    "dirichlet-buckets": blm.DirichletLM(order=2, buckets=[3, 10], sampler_config=quick),
    "pitman-yor": blm.PitmanYorLM(order=3, retain=3, sampler_config=quick),
    "pitman-yor-ikn": blm.PitmanYorLM(order=2, inference="ikn", retain=3, sampler_config=quick),
}
expected = {}
for name, lm in models.items():
    lm.fit(train)
    lm.save(HERE / name, force=True)
    result = lm.evaluate(test_lines)
    split = lm.entropy_split(test_lines)
    expected[name] = {
        "predictive_log_prob": lm.predictive_log_prob(test_lines).tolist(),
        "cross_entropy_bits": result.cross_entropy_bits.values.ravel().tolist(),
        "score_log10": lm.score(test_lines)["log10_prob"].tolist(),
        "entropy_total": split["total"].tolist(),
        "entropy_epistemic": split["epistemic"].tolist(),
        "id": lm.id,
    }

lines = (HERE / "train.txt").read_text().splitlines()
gpt = blm.GPTLM(block_size=16, n_layer=1, n_head=2, n_embd=16, train_steps=40, batch_size=8, eval_interval=20,
                eval_batches=2, fit_positions=600, valid_positions=200, tokenizer="char",
                sampler_config={"draws": 20, "random_seed": 0, "progressbar": False})
gpt.fit(blm.Corpus.from_lines(lines, tokenizer=blm.CharTokenizer()), valid=lines[:20])
gpt.save(HERE / "gpt-bll", force=True)
result = gpt.evaluate(test_lines)
expected["gpt-bll"] = {
    "predictive_log_prob": gpt.predictive_log_prob(test_lines).tolist(),
    "cross_entropy_bits": result.cross_entropy_bits.values.ravel().tolist(),
    "score_log10": gpt.score(test_lines)["log10_prob"].tolist(),
    "entropy_total": gpt.entropy_split(test_lines)["total"].tolist(),
    "entropy_epistemic": gpt.entropy_split(test_lines)["epistemic"].tolist(),
    "id": gpt.id,
}
(HERE / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
