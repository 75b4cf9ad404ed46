"""Settings are checked by type and range before any work, and a model id identifies the fitted model.

Issue 18: ``draws = "abc"``, ``target_accept = 2``, ``order = 50`` or a prior's ``sigma = "abc"``
gave tracebacks (some after sampling had started) or were accepted; the model id was a hash of
the configuration, shared by every model fitted with it. Here: every key of every section,
read from the pydantic models themselves, refuses a value of the wrong type and one just
outside its documented range with one line that names it, and accepts the range's ends; the
priors are checked against PyMC before any work; docs/config.md's table is the models'; and
ids differ between data, repeat with the seed, and survive save/load. (The command line:
tests/cli/test_config_errors.py.)
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from model_dirs import reseal, rewrite_attrs

import bayeslm as blm
from bayeslm.core.base import BayesianLM
from bayeslm.core.config import load_config
from bayeslm.core.settings import PriorSettings, SamplerSettings, TokenizerSettings, settings_reference
from bayeslm.core.storage import config_id
from bayeslm.exceptions import ConfigError, DifferentModelError, ModelFileError
from bayeslm.text.corpus import Corpus
from bayeslm.text.tokenize import Tokenizer

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "config.md"
FAMILIES = [blm.DirichletLM, blm.PitmanYorLM, blm.GPTLM, blm.MixtureLM]
QUICK = {"draws": 30, "tune": 30, "chains": 2, "cores": 1, "progressbar": False}
LINES_A = [f"the {a} {b} on the {c}" for a in ("cat", "dog", "bird") for b in ("sat", "ran", "slept")
           for c in ("mat", "log", "rug")]
LINES_B = [f"a {a} {b} by a {c}" for a in ("fox", "hen", "cow") for b in ("hid", "ate", "stood")
           for c in ("barn", "tree", "pond")]


# -- every key of every section, from the models' own rules --------------------------------
def _numbers(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", text)]


def rule_cases(rule: str) -> tuple[list, list]:
    """(values the rule refuses, values it accepts), read from the rule's own words."""
    optional = rule.endswith(" or none")
    core = rule[: -len(" or none")] if optional else rule
    good = [None] if optional else []
    if core.startswith("a whole number"):
        bad = ["abc", 2.5, True, None] if not optional else ["abc", 2.5, True]
        if m := re.fullmatch(r"a whole number in (-?\d+)\.\.(\d+)", core):
            low, high = int(m[1]), int(m[2])
            return bad + [low - 1, high + 1], good + [low, high]
        if m := re.fullmatch(r"a whole number >= (-?\d+)", core):
            low = int(m[1])
            return bad + [low - 1], good + [low, low + 7]
    elif core.startswith("a number"):
        bad = ["abc", True, math.nan, math.inf] + ([] if optional else [None])
        if m := re.fullmatch(r"a number in ([\[(])(\S+), (\S+)([\])])", core):
            low, high = float(m[2]), float(m[3])
            bad += [low if m[1] == "(" else low - 1.0, high if m[4] == ")" else high + 1.0]
            return bad, good + ([low] if m[1] == "[" else []) + [(low + high) / 2]
        if m := re.fullmatch(r"a number (>=?) (\S+)", core):
            low = float(m[2])
            return bad + [low if m[1] == ">" else low - 1.0], good + [low + 1.0] + ([low] if m[1] == ">=" else [])
    elif m := re.fullmatch(r"one of ('.*')", core):
        choices = re.findall(r"'([^']*)'", m[1])
        return ["no-such-choice", 3] + ([] if optional else [None]), good + choices
    elif core == "true or false":
        return ["yes", 1, None], [True, False]
    elif core == "a string":
        return [3, True] + ([] if optional else [None]), good + ["some text"]
    raise AssertionError(f"no generic cases for the rule {rule!r}: give them in CUSTOM")


# keys whose rules a generic reading cannot exercise: (refused, accepted, other settings they need)
CUSTOM = {
    ("dirichlet", "buckets"): ([[2, 5], [5, 3], [3, 3], "some", [3.5], [True], 3], ["auto", [], [3], [3, 10, 100]], {}),
    ("pitman-yor", "discount"): ([1.0, -0.1, [0.1, 0.2], [0.5, 1.0, 0.5], "abc", True], [0.0, 0.9, [0.1, 0.2, 0.3]],
                                 {"order": 3}),
    ("pitman-yor", "strength"): ([-0.1, [1.0, -1.0, 1.0], "abc", True], [0.0, 5.0, [0.0, 1.0, 2.0]], {"order": 3}),
    ("gpt-bll", "order"): (["abc", 2.5, 1, 2, 129 + 1], [None, 129], {}),
    ("gpt-bll", "n_embd"): (["abc", 0, 6], [4, 8], {"n_head": 4}),
    ("gpt-bll", "eval_stride"): (["abc", 0, 129], [None, 1, 128], {}),
    ("mixture", "components"): (["abc", [3], [True], 3, None], [[], ["0123456789abcdef", "fedcba9876543210"]], {}),
}


def section_cases():
    """(section, family, key, model class of the section) for every key the settings have."""
    for family in FAMILIES:
        for key in family.model_options.model_fields:
            yield "model", family, key, family.model_options
    for model, section in ((TokenizerSettings, "tokenizer"), (SamplerSettings, "sampler")):
        for key in model.model_fields:
            yield section, blm.DirichletLM, key, model
    for key in PriorSettings.model_fields:
        yield "prior", blm.DirichletLM, key, PriorSettings


def config_with(section: str, family, key: str, value, context: dict) -> dict:
    config = {"model": {"family": family.family, **context}}
    if section == "model":
        config["model"][key] = value
    elif section == "tokenizer":
        config["tokenizer"] = {**({"kind": "bpe"} if key in ("vocab_size", "min_frequency") else {}), key: value}
    elif section == "sampler":
        config["sampler"] = {key: value}
    else:
        config["prior"] = {"concentration": {"dist": "Gamma", "kwargs": {"alpha": 2.0, "beta": 1.0}, key: value}}
    return config


CASES = list(section_cases())


@pytest.mark.parametrize("section, family, key, model", CASES,
                         ids=[f"{s}-{f.family}-{k}" if s == "model" else f"{s}-{k}" for s, f, k, _ in CASES])
def test_every_key_refuses_a_bad_type_and_a_value_out_of_range(section, family, key, model):
    rule = model.rule_of(key).text
    if (family.family, key) in CUSTOM and section == "model":
        bad, good, context = CUSTOM[(family.family, key)]
    elif section == "prior" and key == "kwargs":
        bad, good, context = ["abc", {"alpha": "abc"}, {"alpha": True}, {"alpha": math.inf}], [{}, {"alpha": 1}], {}
    elif section == "prior" and key == "dims":
        bad, good, context = ["abc", [3]], [[], ["order"]], {}
    else:
        (bad, good), context = rule_cases(rule), {}
    if key == "order":  # order=None is the family's default (the Python API's default argument)
        bad = [value for value in bad if value is not None]
    shown = f"prior.concentration.{key}" if section == "prior" else f"{section}.{key}"
    for value in bad:
        with pytest.raises(ConfigError) as err:
            BayesianLM.from_config(config_with(section, family, key, value, context))
        message = str(err.value)
        assert "\n" not in message and message.startswith(shown), message
        if (family.family, key) not in CUSTOM and key not in ("kwargs", "dims") and section != "prior":
            assert message == f"{shown} must be {rule} (got {value!r})"
    for value in good:
        built = BayesianLM.from_config(config_with(section, family, key, value, context))
        if section == "model" and key != "order":
            assert built.options[key] == value


def test_the_cases_cover_every_key_of_every_section():
    covered = {(s, f.family if s == "model" else "", k) for s, f, k, _ in CASES}
    declared = {("model", f.family, k) for f in FAMILIES for k in f.model_options.model_fields}
    declared |= {(s, "", k) for m, s in ((TokenizerSettings, "tokenizer"), (SamplerSettings, "sampler"),
                                         (PriorSettings, "prior")) for k in m.model_fields}
    assert covered == declared
    assert {"progressbar", "random_seed", "cores", "target_accept"} <= set(SamplerSettings.model_fields)


@pytest.mark.parametrize("section, config, fragment", [
    ("model", {"model": {"family": "dirichlet", "smoothing": 1}},
     "model: the dirichlet family has no option 'smoothing'; known: order"),
    ("model", {"model": {"family": "dirichlet", "min_count": 2}}, "model: 'min_count' is not a [model] option"),
    ("tokenizer", {"tokenizer": {"colour": "red"}}, "tokenizer: unknown key 'colour'; known: kind, min_count"),
    ("tokenizer", {"tokenizer": {"kind": "word", "vocab_size": 100}},
     "tokenizer.vocab_size must be given only with kind = 'bpe'"),
    ("sampler", {"sampler": {"speed": 3}}, "sampler: unknown sampler setting 'speed'; known: draws, tune"),
    ("prior", {"prior": {"smoothing": {"dist": "Gamma"}}}, "unknown prior"),
    ("prior", {"prior": {"concentration": {"dist": "Gamma", "kwarg": {}}}}, "prior.concentration: unknown key 'kwarg'"),
    ("prior", {"prior": {"concentration": {"kwargs": {}}}}, "prior.concentration.dist must be a string (got None)"),
    ("sampler", {"sampler": 3}, "[sampler] must be a table"),
])
def test_unknown_keys_and_misplaced_settings_name_the_known_ones(section, config, fragment):
    with pytest.raises(ConfigError) as err:
        BayesianLM.from_config({"model": {"family": "dirichlet"}, **config} if "model" not in config else config)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_every_problem_of_a_section_in_one_line():
    with pytest.raises(ConfigError) as err:
        blm.DirichletLM(sampler_config={"draws": "abc", "chains": 0, "target_accept": 2})
    assert str(err.value) == ("sampler.draws must be a whole number >= 1 (got 'abc'); sampler.chains must be a "
                              "whole number >= 1 (got 0); sampler.target_accept must be a number in (0, 1) (got 2)")


def test_numpy_values_count_as_the_values_they_hold_and_floats_are_not_whole_numbers():
    lm = blm.PitmanYorLM(order=np.int64(2), discount=np.array([0.1, 0.2]), retain=np.int32(3),
                         table_step=np.bool_(False), sampler_config={"target_accept": np.float32(0.5)})
    assert lm.order == 2 and type(lm.order) is int and lm.options["discount"] == [0.1, 0.2]
    assert lm.options["retain"] == 3 and lm.options["table_step"] is False
    assert blm.DirichletLM(buckets=(3, 10)).options["buckets"] == [3, 10]
    with pytest.raises(ConfigError, match=r"model.order must be a whole number in 1..10 \(got 2.0\)"):
        blm.DirichletLM(order=2.0)
    assert blm.DirichletLM(sampler_config={"target_accept": 1 - 1e-9}).sampler_config["target_accept"] < 1


def test_the_tokenizer_kinds_are_the_tokenizers():
    kinds = set(TokenizerSettings.rule_of("kind").text.replace("one of ", "").replace("'", "").split(", "))

    def subclasses(cls):
        return {c for sub in cls.__subclasses__() for c in {sub, *subclasses(sub)}}

    assert kinds == {cls.kind for cls in subclasses(Tokenizer) if cls.kind}


def test_a_tokenizer_object_keeps_its_kind_and_the_limits_are_checked():
    lm = blm.DirichletLM(tokenizer=blm.CharTokenizer(), min_count=2, max_size=40)
    assert lm.tokenizer.kind == "char" and lm.min_count == 2 and lm.max_size == 40
    with pytest.raises(ConfigError, match=r"tokenizer.max_size must be a whole number >= 4 or none \(got 3\)"):
        blm.DirichletLM(tokenizer=blm.CharTokenizer(), max_size=3)
    with pytest.raises(ConfigError, match="tokenizer must be a kind"):
        blm.DirichletLM(tokenizer=3)
    bpe = blm.DirichletLM(tokenizer={"kind": "bpe", "vocab_size": 300, "min_frequency": 3})
    assert bpe.get_config()["tokenizer"] == {"kind": "bpe", "vocab_size": 300, "min_frequency": 3, "min_count": 1,
                                             "max_size": None}


@pytest.mark.parametrize("path", sorted((ROOT / "models").glob("*.toml")), ids=lambda p: p.stem)
def test_every_configuration_in_models_is_valid_and_round_trips(path):
    lm = BayesianLM.from_config(load_config(str(path)))
    lm.check_priors()
    again = BayesianLM.from_config(lm.get_config())
    assert type(again) is type(lm) and again.get_config() == lm.get_config() and again.config_id == lm.config_id


def test_a_family_with_untyped_options_checks_their_names_only():
    class Untyped(blm.DirichletLM):
        family = "test-untyped-options"
        model_options = {"order": 3, "anything": None}

    assert Untyped(anything=[1, "x"]).options == {"anything": [1, "x"]}
    with pytest.raises(ConfigError, match="has no option 'other'"):
        Untyped(other=1)
    with pytest.raises(ConfigError, match=r"model.order must be a whole number >= 1 \(got 0\)"):
        Untyped(order=0)


# -- priors against PyMC --------------------------------------------------------------------
@pytest.mark.parametrize("prior, message", [
    (blm.Prior("Gama", alpha=1.0, beta=1.0), "prior.concentration.dist must be a PyMC distribution (got 'Gama'); "
                                             "did you mean 'Gamma'?"),
    (blm.Prior("LogNormal", mu=0.0, sgima=1.0), "prior.concentration.kwargs: LogNormal has no parameter sgima; "
                                                "its parameters: mu, sigma, tau"),
    (blm.Prior("LogNormal", mu=0.0, sigma=-1.0), "prior.concentration: LogNormal(mu=0, sigma=-1) is not a valid "
                                                 "distribution: it needs sigma > 0"),
    (blm.Prior("Gamma", alpha=-1.0, beta=1.0), "prior.concentration: Gamma(alpha=-1, beta=1) is not a valid "
                                               "distribution: it needs alpha > 0, beta > 0"),
    (blm.Prior("Uniform", lower=2.0, upper=1.0), "it needs lower <= upper"),
    (blm.Prior("Gamma", alpha=1.0), "is not a valid distribution: Incompatible parameterization"),
])
def test_a_prior_pymc_cannot_use_is_refused_before_any_work(prior, message, monkeypatch):
    def no_work(self, *args, **kwargs):
        raise AssertionError("the fit read the training text before checking the priors")

    monkeypatch.setattr(BayesianLM, "_training_corpus", no_work)
    lm = blm.DirichletLM(model_config={"concentration": prior})  # made without PyMC
    with pytest.raises(ConfigError) as err:
        lm.fit(Corpus.from_texts(LINES_A))
    assert message in str(err.value) and "\n" not in str(err.value)
    assert str(err.value).startswith("prior.concentration")


def test_valid_priors_pass_and_a_prior_must_hold_finite_numbers():
    for prior in (blm.Prior("LogNormal", mu=2.0, sigma=3.0), blm.Prior("Beta", alpha=1, beta=1),
                  blm.Prior("HalfNormal", sigma=1.0), blm.Prior("Exponential", lam=0.5)):
        prior.validate()
    with pytest.raises(ConfigError, match=r"prior.kwargs.sigma must be a finite number \(got nan\)"):
        blm.Prior("HalfNormal", sigma=math.nan)
    with pytest.raises(ConfigError, match=r"prior.kwargs.sigma must be a finite number \(got 'abc'\)"):
        blm.Prior("HalfNormal", sigma="abc")


def test_making_a_model_does_not_import_pymc():
    code = ("import sys, bayeslm as blm; blm.DirichletLM(order=2, model_config={'concentration': "
            "{'dist': 'Gamma', 'kwargs': {'alpha': 2, 'beta': 1}}}); blm.PitmanYorLM(); blm.GPTLM(); "
            "assert 'pymc' not in sys.modules, 'pymc imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                            env={"PYTHONPATH": str(ROOT), "PATH": ""}, timeout=120)
    assert result.returncode == 0, result.stderr


def test_fit_checks_its_sampler_keywords_before_any_work(monkeypatch):
    monkeypatch.setattr(BayesianLM, "_training_corpus", lambda *a: pytest.fail("the fit started"))
    lm = blm.DirichletLM(order=2)
    for settings, fragment in (({"draws": 0}, "sampler.draws must be a whole number >= 1 (got 0)"),
                               ({"random_seed": -1}, "sampler.random_seed must be a whole number in 0..4294967295"),
                               ({"n_draws": 10}, "unknown sampler setting 'n_draws'")):
        with pytest.raises(ConfigError, match=re.escape(fragment)):
            lm.fit(Corpus.from_texts(LINES_A), **settings)
    assert not lm.is_fitted_ and lm.sampler_config["draws"] == 1000


# -- docs/config.md ---------------------------------------------------------------------------
START, END = "<!-- generated: settings reference -->\n", "<!-- end of the generated settings reference -->\n"


def documented_reference(text: str) -> str:
    return text[text.index(START) + len(START): text.index(END)]


def test_the_reference_in_docs_is_the_settings_models():
    expected = settings_reference(FAMILIES)
    assert documented_reference(DOCS.read_text(encoding="utf-8")) == expected, \
        "docs/config.md's reference is out of date: PYTHONPATH=. python tests/core/test_settings.py writes it"
    for key in ("progressbar", "random_seed", "nuts_sampler", "max_size", "vocab_size", "retain", "eval_stride"):
        assert f"| `{key}` |" in expected


# -- model ids --------------------------------------------------------------------------------
def fitted(lines, family=blm.DirichletLM, seed=1, **options):
    lm = family(order=2, tokenizer="whitespace", sampler_config={**QUICK, "random_seed": seed}, **options)
    lm.fit(Corpus.from_texts(lines, tokenizer=blm.WhitespaceTokenizer()))
    return lm


@pytest.fixture(scope="module")
def dirichlet_a():
    return fitted(LINES_A)


@pytest.mark.parametrize("family, options", [(blm.DirichletLM, {}), (blm.PitmanYorLM, {"inference": "ikn"}),
                                             (blm.PitmanYorLM, {"inference": "gibbs", "retain": 3})],
                         ids=["dirichlet", "pitman-yor-ikn", "pitman-yor-gibbs"])
def test_same_seed_same_data_same_id_other_data_other_id(family, options, tmp_path):
    a, again = fitted(LINES_A, family, **options), fitted(LINES_A, family, **options)
    b = fitted(LINES_B, family, **options)
    assert a.config_id == again.config_id == b.config_id  # one configuration
    assert a.id == again.id and a.id != b.id and a.id != a.config_id
    attrs_a, attrs_b = a.idata["posterior"].attrs, b.idata["posterior"].attrs
    assert attrs_a["data_fingerprint"] != attrs_b["data_fingerprint"]
    assert attrs_a["config_id"] == a.config_id and attrs_a["id"] == a.id
    back = blm.load(a.save(tmp_path / "m"))
    assert back.id == a.id and back.config_id == a.config_id
    assert back.idata["posterior"].attrs["posterior_fingerprint"] == attrs_a["posterior_fingerprint"]
    if family is blm.DirichletLM:  # another seed: other draws, another model
        assert fitted(LINES_A, family, seed=2, **options).id != a.id


def test_the_demo_model_and_a_shakespeare_model_have_different_ids(shakespeare_dir):
    config = {"model": {"family": "dirichlet", "order": 2}, "tokenizer": {"min_count": 2},
              "sampler": {**QUICK, "random_seed": 1}}
    demo, shakespeare = BayesianLM.from_config(config), BayesianLM.from_config(config)
    assert demo.id == shakespeare.id  # not fitted: each is its configuration
    demo.fit(blm.demo_corpus())
    shakespeare.fit(Corpus.from_paths(sorted((shakespeare_dir / "test").glob("*.txt"))[:1]))
    assert demo.id != shakespeare.id and demo.config_id == shakespeare.config_id


def test_an_unfitted_model_is_its_configuration_and_update_makes_another_model(dirichlet_a):
    lm = blm.DirichletLM(order=2, tokenizer="whitespace", sampler_config={**QUICK, "random_seed": 1})
    assert lm.id == lm.config_id == dirichlet_a.config_id
    assert len(dirichlet_a.id) == 16
    before = dirichlet_a.id
    updated = fitted(LINES_A)
    updated.update(Corpus.from_texts(LINES_B, tokenizer=blm.WhitespaceTokenizer()))
    assert updated.id != before and updated.config_id == dirichlet_a.config_id


def test_a_posterior_edited_in_memory_is_another_model(tmp_path):
    lm = fitted(LINES_A)
    before = lm.id
    lm.idata["posterior"]["concentration"].values[...] *= 2
    back = blm.load(lm.save(tmp_path / "m"))
    assert lm.id != before and back.id == lm.id


def copy_of(model_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(model_dir, target)
    return target


def test_a_posterior_changed_in_the_file_is_refused(dirichlet_a, tmp_path):
    import copy

    from bayeslm.core.idata import netcdf_bytes

    saved = dirichlet_a.save(tmp_path / "m")
    target = copy_of(saved, tmp_path)
    idata = copy.deepcopy(dirichlet_a.idata)  # as saved, one draw changed
    idata["posterior"]["concentration"].values[0, 0, 0] += 1.0
    (target / "model.nc").write_bytes(netcdf_bytes(idata))
    reseal(target)  # the manifest cannot tell: the id can
    with pytest.raises(ModelFileError, match="the posterior .* changed since the model was saved"):
        blm.load(target)
    shutil.rmtree(target)
    target = copy_of(saved, tmp_path)
    with np.load(target / "arrays.npz") as data:
        arrays = {k: data[k] for k in data.files}
    arrays["base_concentration"] = arrays["base_concentration"] * 1.5
    np.savez_compressed(target / "arrays.npz", **arrays)
    reseal(target)
    with pytest.raises(ModelFileError, match="the posterior .* changed since the model was saved"):
        blm.load(target)


@pytest.mark.parametrize("changes, error, match", [
    ({"data_fingerprint": "0" * 64}, DifferentModelError, "id does not match its configuration, training data"),
    ({"config_id": "0123456789abcdef"}, DifferentModelError, "id does not match its configuration"),
    ({"posterior_fingerprint": None}, ModelFileError, "'posterior_fingerprint' is missing"),
    ({"config_id": None}, ModelFileError, "'config_id' is missing"),
])
def test_the_parts_of_the_id_are_checked_on_load(dirichlet_a, tmp_path, changes, error, match):
    target = copy_of(dirichlet_a.save(tmp_path / "m"), tmp_path)
    rewrite_attrs(target, **changes)
    reseal(target)
    with pytest.raises(error, match=match):
        blm.load(target)


def test_a_format1_directory_keeps_its_configuration_id(tmp_path):
    source = ROOT / "tests" / "data" / "format1" / "dirichlet"
    lm = blm.load(source)
    attrs = lm.idata["posterior"].attrs
    assert lm.id == attrs["id"] == config_id(attrs_config(attrs), "dirichlet", format_version=1)
    target = copy_of(source, tmp_path)
    rewrite_attrs(target, id="0123456789abcdef")
    with pytest.raises(DifferentModelError, match="id does not match its configuration"):
        blm.load(target)


def attrs_config(attrs) -> dict:
    import json

    return json.loads(attrs["config"])


def test_a_gpt_keeps_its_id_through_save_and_load(tmp_path):
    lines = [line for line in LINES_A for _ in range(3)]
    options = dict(block_size=8, n_layer=1, n_head=2, n_embd=8, train_steps=5, batch_size=4, eval_interval=5,
                   eval_batches=1, fit_positions=200, valid_positions=50, fit_holdout=0.0)
    lm = blm.GPTLM(**options, sampler_config={"draws": 5, "random_seed": 0, "progressbar": False})
    lm.fit(Corpus.from_texts(lines, tokenizer=blm.CharTokenizer()))
    back = blm.load(lm.save(tmp_path / "gpt"))
    assert back.id == lm.id != lm.config_id


if __name__ == "__main__":  # write docs/config.md's reference table from the settings models
    text = DOCS.read_text(encoding="utf-8")
    DOCS.write_text(text.replace(documented_reference(text), settings_reference(FAMILIES)), encoding="utf-8")
    print(f"wrote the settings reference of {DOCS}")
