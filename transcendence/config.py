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
"""

from __future__ import annotations

import dataclasses
import os
import platform
import subprocess
import sys
import types
import typing
from collections.abc import Iterable
from datetime import UTC
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

from transcendence.io import atomic_write_json

__all__ = ["apply_overrides", "config_to_dict", "config_from_dict", "parse_overrides",
           "write_run_metadata"]

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
