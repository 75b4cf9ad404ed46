"""Writes the adapted Dirichlet model directory that tests/core/test_format1.py loads.

Run once, with the code of commit 9022a11 (the last that read and wrote model directories
through ArviZ), from the repository root: ``python tests/data/adapted_9022a11/make.py``. The
directory and ``expected.json`` (what that code computed on format1's ``test.txt``) are
committed; the test checks that today's code loads it and scores ``test.txt`` identically.
Re-running it with newer code would defeat the test.
"""

import json
from pathlib import Path

import bayeslm as blm

HERE = Path(__file__).parent
FORMAT1 = HERE.parent / "format1"
lines = (FORMAT1 / "train.txt").read_text().splitlines()
test_lines = (FORMAT1 / "test.txt").read_text().splitlines()
quick = {"draws": 60, "tune": 60, "chains": 2, "cores": 1, "progressbar": False, "random_seed": 7}
general = blm.DirichletLM(order=3, sampler_config=quick)
general.fit(blm.Corpus.from_texts(lines[:200]))
domain = [line.replace("cat", "fox").replace("sees", "hunts") for line in lines[200:260]]
valid = [line.replace("cat", "fox").replace("sees", "hunts") for line in lines[260:]]
adapted = general.adapt(general.encode(domain), valid=general.encode(valid), random_seed=3)
adapted.save(HERE / "dirichlet-adapted", force=True)
split = adapted.entropy_split(test_lines)
expected = {"dirichlet-adapted": {
    "predictive_log_prob": adapted.predictive_log_prob(test_lines).tolist(),
    "cross_entropy_bits": adapted.evaluate(test_lines).cross_entropy_bits.values.ravel().tolist(),
    "score_log10": adapted.score(test_lines)["log10_prob"].tolist(),
    "entropy_total": split["total"].tolist(),
    "entropy_epistemic": split["epistemic"].tolist(),
    "id": adapted.id,
}}
(HERE / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
