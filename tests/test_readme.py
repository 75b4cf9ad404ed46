"""The README's Python snippets run as written.

Each ```python block of README.md is executed on its own (a fresh namespace per block, so
every block must define what it uses) in a temporary directory. Where a snippet would
sample or train for minutes, small settings are injected: every family's default sampler
settings become ``sampling.QUICK``, and a GPTLM is built with ``sampling.TINY_GPT``'s body
and a few training steps whatever the snippet asks for. Everything else runs as written.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sampling import QUICK, TINY_GPT

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), flags=re.S | re.M)
#: a GPT body that trains in a second or two (the snippet asks for minutes)
README_GPT = {**TINY_GPT, "train_steps": 30, "eval_interval": 10}


@pytest.fixture
def small_settings(monkeypatch):
    """QUICK sampler defaults for every family; GPTLM with README_GPT's options."""
    from bayeslm.core.base import BayesianLM
    from bayeslm.core.storage import family_class, known_families

    classes = {BayesianLM} | {family_class(name) for name in known_families()}
    for cls in classes:
        monkeypatch.setattr(cls, "default_sampler_config", {**cls.default_sampler_config, **QUICK})
    gpt = family_class("gpt-bll")
    real_init = gpt.__init__

    def tiny_gpt(self, order=None, **kwargs):
        real_init(self, order, **{**kwargs, **README_GPT})

    monkeypatch.setattr(gpt, "__init__", tiny_gpt)


def test_the_readme_has_its_python_snippets():
    """The extraction finds the snippets (a changed fence would otherwise run nothing)."""
    assert len(BLOCKS) >= 3 and all(block.strip() for block in BLOCKS)


@pytest.mark.parametrize("index", range(len(BLOCKS)), ids=[f"block{i + 1}" for i in range(len(BLOCKS))])
def test_a_readme_snippet_runs(index, small_settings, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # snippets write model directories where they run
    if "GPTLM" in BLOCKS[index]:
        pytest.importorskip("torch")
    namespace = {"__name__": "readme"}
    exec(compile(BLOCKS[index], f"README.md python block {index + 1}", "exec"), namespace)
