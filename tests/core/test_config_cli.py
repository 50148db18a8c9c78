"""The options generated from a config: help from field comments, typed values, aliases, errors."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from transcendence.config import add_config_arguments, config_from_args, field_comments


@dataclass(frozen=True, kw_only=True)
class Demo:
    out: Path  # where the results go
    max_games: int | None = None  # stop after this many games
    rate: float = 0.5  # a fraction (default half)
    seed: int = 0  # numpy default_rng(seed)
    mode: Literal["fast", "slow"] = "fast"  # how to run
    progress: bool = True  # show a progress bar
    force: bool = False
    shard: str | None = None  # play game j when j % N == i
    temps: tuple[float, ...] = (0.1, 1.0)  # temperatures
    inputs: tuple[str, ...] = field(default=("a",), metadata={"nargs": "+"})  # files


def _parser(**kw) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="demo")
    add_config_arguments(p, Demo, **kw)
    return p


def _parse(argv: list[str], **kw) -> Demo:
    return config_from_args(Demo, _parser(**kw).parse_args(argv))


def test_help_text_is_the_field_comment():
    assert field_comments(Demo)["max_games"] == "stop after this many games"
    assert "force" not in field_comments(Demo)
    text = _parser().format_help()
    assert "--max-games MAX_GAMES" in text  # the hyphenated spelling is the one shown
    assert "where the results go" in text
    assert "temperatures (default 0.1,1.0)" in text
    assert "(default False)" not in text and "(default None)" not in text
    assert "a fraction (default half)" in text
    assert "numpy default_rng(seed) (default 0)" in text
    assert "j % N == i" in text  # a percent sign in a comment is text, not a format  # a comment naming its default is left alone


def test_defaults_and_both_spellings():
    assert _parse(["--out", "o"]) == Demo(out=Path("o"))
    cfg = _parse(["--out=o", "--max-games=7", "--rate", "0.25", "--mode=slow", "--temps=0.5,2"])
    assert cfg == Demo(out=Path("o"), max_games=7, rate=0.25, mode="slow", temps=(0.5, 2.0))
    assert _parse(["--out", "o", "--max_games", "3"]).max_games == 3
    assert _parse(["--out", "o", "--max-games=none"]).max_games is None


def test_bools_bare_valued_and_negated():
    assert _parse(["--out", "o", "--force"]).force is True
    assert _parse(["--out", "o", "--force=false"]).force is False
    assert _parse(["--out", "o", "--no-progress"]).progress is False
    assert _parse(["--out", "o", "--progress", "no"]).progress is False


def test_nargs_field_takes_words():
    assert _parse(["--out", "o", "--inputs", "x", "y,z"]).inputs == ("x", "y,z")


def test_alias_sets_its_field():
    assert _parse(["--out", "o", "-n", "4"], aliases={"-n": "max_games"}).max_games == 4
    with pytest.raises(TypeError, match="nope"):
        _parser(aliases={"--x": "nope"})


@pytest.mark.parametrize("argv, named", [
    (["--out", "o", "--max-games=abc"], "--max-games='abc': expected a value of type int"),
    (["--out", "o", "--max_games=abc"], "argument --max_games: --max-games='abc'"),
    (["--out", "o", "--rate=x"], "--rate='x'"),
    (["--out", "o", "--force=maybe"], "--force='maybe': expected true or false"),
    (["--out", "o", "--mode=medium"], "--mode='medium': must be one of fast, slow"),
    (["--out", "o", "--temps=1,a"], "--temps='a'"),
    (["--out", "o", "--colour=red"], "unrecognized arguments: --colour=red"),
    ([], "the following arguments are required: --out"),
])
def test_bad_values_exit_2_naming_the_field(argv, named, capsys):
    with pytest.raises(SystemExit) as exc:
        _parse(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert named in err
    assert "Traceback" not in err


def test_excluded_and_fixed_fields():
    p = _parser(exclude=("out",))
    assert "--out" not in p.format_help()
    assert config_from_args(Demo, p.parse_args([]), out=Path("fixed")).out == Path("fixed")


def test_defaults_from_a_preset():
    preset = Demo(out=Path("preset"), rate=0.75)
    p = argparse.ArgumentParser()
    add_config_arguments(p, Demo, defaults=preset)
    assert config_from_args(Demo, p.parse_args([])) == preset  # --out is no longer required
    assert config_from_args(Demo, p.parse_args(["--rate=0.1"])).rate == 0.1
    assert "where the results go (default preset)" in p.format_help()
