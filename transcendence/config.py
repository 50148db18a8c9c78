"""Typed configs for experiments: nanoGPT-style ``--key=value`` overrides and self-describing run dirs.

Every experiment (a sweep, a training run, an evaluation) is described by one frozen, keyword-only
dataclass, possibly nested (``TrainConfig(model=GPTConfig(...))``). This module turns command-line
overrides such as ``--model.n_layer=4`` into a new config, checked against the dataclass: unknown
keys and values that do not parse as the field's type are errors that name the key.

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True, kw_only=True)
... class Sweep:
...     seed: int = 0
...     taus: tuple[float, ...] = (0.1, 1.0)
>>> apply_overrides(Sweep(), ["--seed=3", "--taus=0.5,2"])
Sweep(seed=3, taus=(0.5, 2.0))

Nested configs are reached with dots: ``--model.n_layer=4``.

A command's options can also be generated from its config (:func:`add_config_arguments`, then
:func:`config_from_args`): one option per field, spelled ``--max_games`` and ``--max-games``, typed by
the field's annotation, with the help text taken from the comment after the field on its line.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import inspect
import io
import os
import platform
import subprocess
import sys
import textwrap
import tokenize
import types
import typing
from collections.abc import Callable, Iterable
from datetime import UTC
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

from transcendence.io import atomic_write_json

__all__ = ["apply_overrides", "config_to_dict", "config_from_dict", "parse_overrides",
           "write_run_metadata", "add_config_arguments", "config_from_args", "field_comments"]

C = TypeVar("C")


def parse_overrides(args: Iterable[str]) -> dict[str, str]:
    """Parse ``["--a.b=1", "--c", "2"]`` into ``{"a.b": "1", "c": "2"}``."""
    out: dict[str, str] = {}
    items = list(args)
    i = 0
    while i < len(items):
        item = items[i]
        if not item.startswith("--"):
            raise ValueError(f"override {item!r}: expected --key=value (for example --seed=1)")
        body = item[2:]
        if "=" in body:
            key, value = body.split("=", 1)
        elif i + 1 < len(items) and not items[i + 1].startswith("--"):
            key, value = body, items[i + 1]
            i += 1
        else:
            raise ValueError(f"override {item!r} has no value: write --{body}=VALUE")
        out[key.replace("-", "_")] = value
        i += 1
    return out


def _parse_value(text: str, tp: Any, key: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return text
    if origin is Literal:
        choices = get_args(tp)
        for choice in choices:
            if str(choice) == text:
                return choice
        raise ValueError(f"--{key}={text!r}: must be one of {', '.join(map(str, choices))}")
    if origin in (typing.Union, types.UnionType):
        members = get_args(tp)
        if type(None) in members and text.lower() in ("none", "null", ""):
            return None
        errors = []
        for member in members:
            if member is type(None):
                continue
            try:
                return _parse_value(text, member, key)
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError(f"--{key}={text!r}: " + "; ".join(errors))
    if origin in (tuple, list):
        args = get_args(tp)
        inner = args[0] if args else str
        parts = [p for p in text.strip("()[] ").split(",") if p.strip() != ""]
        values = [_parse_value(p.strip(), inner, key) for p in parts]
        return tuple(values) if origin is tuple else values
    if tp is bool:
        low = text.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"--{key}={text!r}: expected true or false")
    if tp in (int, float, str):
        try:
            return tp(text)
        except ValueError:
            raise ValueError(f"--{key}={text!r}: expected a value of type {tp.__name__}") from None
    if tp is Path:
        return Path(text)
    raise ValueError(f"--{key}: fields of type {tp!r} cannot be set from the command line")


def apply_overrides(config: C, overrides: Iterable[str] | dict[str, str]) -> C:
    """Return a copy of the dataclass ``config`` with ``--dotted.key=value`` overrides applied.

    Raises ``ValueError`` naming the key when it is unknown or its value does not parse.
    """
    pairs = overrides if isinstance(overrides, dict) else parse_overrides(overrides)
    for key, text in pairs.items():
        config = _set(config, key.split("."), text, key)
    return config


def _set(obj: Any, path: list[str], text: str, full_key: str) -> Any:
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        raise ValueError(f"--{full_key}: {'.'.join(path)} is not a nested config")
    names = {f.name for f in dataclasses.fields(obj)}
    head = path[0]
    if head not in names:
        raise ValueError(
            f"unknown config key --{full_key}; known keys here: {', '.join(sorted(names))}")
    current = getattr(obj, head)
    if len(path) > 1:
        new = _set(current, path[1:], text, full_key)
    else:
        hints = get_type_hints(type(obj))
        if dataclasses.is_dataclass(current):
            raise ValueError(f"--{full_key} is a group of settings; set one of its fields, "
                             f"for example --{full_key}.{dataclasses.fields(current)[0].name}=...")
        new = _parse_value(text, hints[head], full_key)
    return dataclasses.replace(obj, **{head: new})


# ---------------------------------------------------------------- options generated from a config
@functools.cache
def field_comments(cls: type) -> dict[str, str]:
    """``{field: comment}``: the ``# comment`` after each field of the dataclass ``cls`` on its line
    (the field's last line when its default spans several), read once from the source."""
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        comments = {tok.start[0]: tok.string.lstrip("#").strip()
                    for tok in tokenize.generate_tokens(io.StringIO(source).readline)
                    if tok.type == tokenize.COMMENT}
        node = ast.parse(source).body[0]
        if not isinstance(node, ast.ClassDef):
            continue
        for stmt in node.body:
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                text = comments.get(stmt.end_lineno or stmt.lineno) or comments.get(stmt.lineno)
                if text:
                    out[stmt.target.id] = text
    return out


def _show(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value))
    return str(value)


def _is_bool(tp: Any) -> bool:
    if tp is bool:
        return True
    if get_origin(tp) in (typing.Union, types.UnionType):
        members = [m for m in get_args(tp) if m is not type(None)]
        return members == [bool]
    return False


def _literal_choices(tp: Any) -> tuple[Any, ...] | None:
    if get_origin(tp) is Literal:
        return get_args(tp)
    if get_origin(tp) in (typing.Union, types.UnionType):
        members = [m for m in get_args(tp) if m is not type(None)]
        if len(members) == 1 and get_origin(members[0]) is Literal:
            return get_args(members[0])
    return None


def _option_type(tp: Any, key: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            return _parse_value(text, tp, key)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    parse.__name__ = key
    return parse


class _Each(argparse.Action):
    """``nargs="+"`` for a tuple field: the values are parsed one by one into a tuple."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        setattr(namespace, self.dest, tuple(values))


def add_config_arguments(parser: argparse.ArgumentParser | Any, cls: type,
                         *, exclude: Iterable[str] = (), aliases: dict[str, str] | None = None,
                         required: Iterable[str] = (), defaults: Any = None) -> None:
    """Add one option per field of the dataclass ``cls`` to ``parser`` (a parser or argument group).

    ``--max-games`` and ``--max_games`` both set the field ``max_games``, as ``--key=value`` or
    ``--key value``. Values are parsed by the field's type (bool, int, float, str, Path, ``Literal``
    choices, ``X | None`` with ``none``, tuples as comma lists; a field whose metadata has
    ``{"nargs": "+"}`` takes one value per word instead; one with ``{"parse": fn}`` is parsed by
    ``fn``, which raises ``argparse.ArgumentTypeError`` for a bad value). A bool field ``flag`` is
    also set by a bare ``--flag`` and cleared by ``--no-flag``. A field without a default (or named
    in ``required``) is required. ``aliases`` maps more option spellings to field names. Defaults
    are the config's (or those of ``defaults``, an instance of ``cls``: a preset), so the parsed
    namespace holds every field. The help text is the comment after the field in its class.
    Type errors, unknown options and missing required ones are argparse errors: one line, exit 2.
    """
    hints = get_type_hints(cls)
    comments = field_comments(cls)
    skip, must = set(exclude), set(required)
    extra: dict[str, list[str]] = {}
    for option, name in (aliases or {}).items():
        extra.setdefault(name, []).append(option)
    for f in dataclasses.fields(cls):
        if f.name in skip or not f.init:
            continue
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            raise TypeError(f"{cls.__name__}.{f.name}: nested configs have no generated options")
        names = [f"--{f.name.replace('_', '-')}"]
        names += [a for a in extra.pop(f.name, []) if a not in names]
        hidden = [f"--{f.name}"] if "_" in f.name else []  # accepted, not listed in --help
        if defaults is not None:
            default: Any = getattr(defaults, f.name)
        elif f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        is_required = f.name in must or (defaults is None and f.default is dataclasses.MISSING
                                          and f.default_factory is dataclasses.MISSING)
        if is_required:
            names, hidden = names + hidden, []
        text = comments.get(f.name, "")
        shown = not (default is None or default is False or default in ("", ()))
        if not is_required and shown and "(default" not in text:
            text = f"{text} (default {_show(default)})".strip()
        kw: dict[str, Any] = {"dest": f.name}
        if is_required:
            kw["required"] = True
        else:
            kw["default"] = default
        if _is_bool(tp):
            kw.update(nargs="?", const=True, metavar="BOOL")
            negations = [f"--no-{n[2:]}" for n in names + hidden]
            parser.add_argument(*negations, dest=f.name, action="store_const", const=False,
                                default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        choices = _literal_choices(tp)
        if choices is not None:
            kw["choices"] = choices
        if f.metadata.get("nargs") and get_origin(tp) in (tuple, list):
            tp = get_args(tp)[0] if get_args(tp) else str
            kw.update(nargs=f.metadata["nargs"], action=_Each)
        kw["type"] = f.metadata.get("parse") or _option_type(tp, f.name.replace("_", "-"))
        parser.add_argument(*names, help=text.replace("%", "%%") or None, **kw)  # argparse formats help
        if hidden:
            kw["default"] = argparse.SUPPRESS
            parser.add_argument(*hidden, help=argparse.SUPPRESS, **kw)
    if extra:
        raise TypeError(f"aliases for unknown fields of {cls.__name__}: {', '.join(sorted(extra))}")


def config_from_args(cls: type[C], args: argparse.Namespace, **fixed: Any) -> C:
    """The ``cls`` config from a namespace parsed with :func:`add_config_arguments`: every field the
    namespace holds, then ``fixed`` (values set by the command itself)."""
    kwargs = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)  # type: ignore[arg-type]
              if f.init and hasattr(args, f.name)}
    kwargs.update(fixed)
    return cls(**kwargs)


def config_to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a (nested) dataclass config; tuples become lists, paths strings."""
    def convert(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: convert(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, (tuple, list)):
            return [convert(v) for v in value]
        if isinstance(value, Path):
            return str(value)
        return value
    return convert(config)


def config_from_dict(cls: type[C], data: dict[str, Any]) -> C:
    """Rebuild a (nested) dataclass config written by :func:`config_to_dict`."""
    hints = get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name not in data:
            continue
        value, tp = data[f.name], hints[f.name]
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            value = config_from_dict(tp, value)
        elif get_origin(tp) is tuple and isinstance(value, list):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        elif tp is Path:
            value = Path(value)
        kwargs[f.name] = value
    return cls(**kwargs)


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parent, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def write_run_metadata(run_dir: str | os.PathLike[str], config: Any,
                       extra: dict[str, Any] | None = None) -> Path:
    """Write ``run_dir/config.json``: resolved config, command line, commit, versions and time.

    Returns the path written. The write is atomic (:func:`transcendence.io.atomic_write_json`).
    """
    from datetime import datetime
    from importlib import metadata

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    versions = {}
    for pkg in ("numpy", "scipy", "torch", "chess", "matplotlib", "transcendence"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    record = {
        "config": config_to_dict(config) if dataclasses.is_dataclass(config) else config,
        "command": sys.argv,
        "commit": _git_commit(),
        "python": platform.python_version(),
        "versions": versions,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if extra:
        record.update(extra)
    path = run_dir / "config.json"
    atomic_write_json(path, record, indent=2)
    return path
