"""Help that explains every option: its text, its default, its units and limits; the README lists every command."""

from __future__ import annotations

import argparse
import contextlib
import io
import re
from pathlib import Path

import pytest

from bayeslm.cli import main
from bayeslm.cli.parser import Range, build_parser

README = Path(__file__).resolve().parents[2] / "README.md"


def commands() -> dict[str, argparse.ArgumentParser]:
    """Each command's parser, by name (argparse keeps them in the subparsers action's choices)."""
    (sub,) = [a for a in build_parser()._actions if isinstance(a.choices, dict)]
    return dict(sub.choices)


def options():
    """(command, action) for every argument of every command except -h."""
    for name, parser in commands().items():
        for action in parser._actions:
            if action.dest != "help":
                yield name, action


def has_default(action) -> bool:
    """Whether the option has a value by default (None, an empty list or string mean "none given")."""
    return not (action.default is None or action.default is argparse.SUPPRESS or
                (isinstance(action.default, (list, str)) and len(action.default) == 0))


def expanded(action) -> str:
    """The help text as --help prints it (``%(default)s`` and ``%(type)s`` filled in)."""
    return action.help % {**vars(action), "prog": "bayeslm"}


@pytest.mark.parametrize("command, action", list(options()), ids=lambda x: getattr(x, "dest", x))
def test_every_option_is_explained_with_its_default_and_limits(command, action):
    where = f"bayeslm {command} {'/'.join(action.option_strings) or action.dest}"
    assert action.help and action.help.strip() and action.help != argparse.SUPPRESS, f"{where}: no help"
    text = expanded(action)
    takes_value = action.nargs != 0  # not a flag
    if action.option_strings and takes_value and not action.required:
        if has_default(action):
            assert f"(default: {action.default})" in text, f"{where}: help does not show the default: {text!r}"
        else:  # "none given": the help says what happens then
            assert "(default: " in text, f"{where}: help does not say what happens by default: {text!r}"
    if isinstance(action.type, Range):
        assert str(action.type) in text, f"{where}: help does not show the limits {action.type}: {text!r}"


def test_limits_in_help_are_the_limits_enforced():
    n = next(a for c, a in options() if c == "generate" and a.dest == "n")
    assert str(n.type) == "1..100" and n.type("100") == 100
    with pytest.raises(argparse.ArgumentTypeError, match=r"must be a whole number in 1\.\.100, got '101'"):
        n.type("101")
    hdi = next(a for c, a in options() if c == "score" and a.dest == "hdi_prob")
    assert str(hdi.type) == "(0, 1)" and hdi.type("0.5") == 0.5
    with pytest.raises(argparse.ArgumentTypeError, match=r"must be a number in \(0, 1\), got '1'"):
        hdi.type("1")


@pytest.mark.parametrize("command", sorted(commands()))
def test_each_command_help_renders(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: bayeslm {command}") and "%(" not in text
    for action in commands()[command]._actions:
        for option in action.option_strings:
            assert option in text


def test_units_are_named_in_the_help_of_what_prints_numbers():
    helps = {name: parser.format_help() for name, parser in commands().items()}
    for name in ("evaluate", "score", "generate"):
        assert "bits" in helps[name], name
    assert "log10" in helps["score"] and "KenLM" in helps["score"]
    assert "nats" not in "".join(helps.values())
    # generate explains its output line and its colours
    assert "log p: log2 probability" in helps["generate"] and "white" in helps["generate"] and "red" in helps["generate"]


def test_top_level_help_and_readme_list_every_command():
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    top = buffer.getvalue()
    readme = README.read_text(encoding="utf-8")
    for name, parser in commands().items():
        assert re.search(rf"^\s+{name}\s+\S", top, flags=re.M), f"'bayeslm --help' does not list {name}"
        assert re.search(rf"(^|\| )bayeslm {name}\b", readme, flags=re.M), f"README's command list lacks {name}"
