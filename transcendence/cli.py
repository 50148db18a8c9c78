"""The ``transcendence`` command line.

Commands come from one static table, :data:`COMMANDS`: a name, the ``module:function`` that
registers it, and its one-line help. ``transcendence --help`` lists the table without importing
anything; a command's module is imported only when that command is run (or its ``--help`` asked
for). A module that fails to import is an error that names it, never a command silently missing.
The core names the other packages only as strings here, so ``transcendence/`` imports none of them.

A register function takes the ``subparsers`` object and adds one subcommand whose parser has a
``func`` default taking the parsed arguments and returning an exit code. It may also accept a
keyword ``argv`` (the arguments after the command's name) to import only what they need.

A negative ``--seed`` (an option or a ``--seed=N`` override) is refused for every command before it
runs: every seed ends up in NumPy, which takes only integers >= 0.

One error handler for every command: a ``ValueError`` (including :class:`UsageError`) or an
``OSError`` about a path (missing file, unwritable or misplaced output) raised by a command prints
``transcendence <command>: error: <message>`` on stderr and exits 2, with no traceback (set
``TRANSCENDENCE_TRACEBACK=1`` to see it). Ctrl-C exits 130.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["main", "build_parser", "COMMANDS", "UsageError", "check_output_dir", "check_output_file"]

#: name -> (``module:register_function``, one-line help). The whole command set, in help order.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("transcendence.cli:_register_demo",
             "show transcendence on built-in examples (table + plot, < 1 minute)"),
    "theory": ("theory.cli:register", "check the paper's results on random instances (< 1 minute)"),
    "sweep": ("sims.cli:register", "run a synthetic sweep into runs/<name>/ (--list to see them)"),
    "chess": ("chess_exp.cli:register", "the chess experiment: data, training, play, analyses"),
}


class UsageError(ValueError):
    """A bad argument or option value: printed as one line naming it, exit status 2."""


class CommandImportError(RuntimeError):
    """A command's module could not be imported (a broken install or a broken module)."""


# ---------------------------------------------------------------- output paths, checked up front
def _probe_writable(directory: Path, arg: str, target: Path) -> None:
    """Create and remove a temporary file in ``directory`` (works for root and read-only mounts)."""
    try:
        fd, name = tempfile.mkstemp(prefix=".transcendence-probe-", dir=directory)
    except OSError as exc:
        raise UsageError(f"{arg}: cannot write to {target}: {exc.strerror or exc} in {directory}; "
                         f"choose a writable location") from None
    os.close(fd)
    os.unlink(name)


def _first_existing(path: Path, arg: str) -> Path:
    """The nearest existing ancestor of ``path``; it must be a directory."""
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UsageError(f"{arg}: {path} lies under {parent}, which is a file, not a directory; "
                                 f"choose another path")
            return parent
    return Path.cwd()  # pragma: no cover - a relative path always has '.'


def check_output_dir(path: str | os.PathLike[str], arg: str = "--out") -> Path:
    """Check, before any work, that ``path`` can be (or already is) a writable output directory.

    Refused with a :class:`UsageError` naming ``arg``: ``path`` is an existing file, lies under a
    file, or is in a place this process cannot write. Nothing is created (a probe file is written
    and removed in the nearest existing directory).
    """
    p = Path(path)
    if str(path) == "":
        raise UsageError(f"{arg}: is empty; give a directory path")
    if p.exists():
        if not p.is_dir():
            raise UsageError(f"{arg}: {p} is a file, not a directory; give a directory path")
        _probe_writable(p, arg, p)
        return p
    _probe_writable(_first_existing(p, arg), arg, p)
    return p


def check_output_file(path: str | os.PathLike[str], arg: str) -> Path:
    """Check, before any work, that the file ``path`` can be written (it may not exist yet).

    Refused with a :class:`UsageError` naming ``arg``: ``path`` is a directory, lies under a file,
    or is in a place this process cannot write. Nothing is created.
    """
    p = Path(path)
    if str(path) == "":
        raise UsageError(f"{arg}: is empty; give a file path")
    if p.is_dir():
        raise UsageError(f"{arg}: {p} is a directory; give a file path")
    parent = p.parent if p.parent.exists() else _first_existing(p, arg)
    if not parent.is_dir():
        raise UsageError(f"{arg}: {p} lies under {parent}, which is a file, not a directory; "
                         f"choose another path")
    _probe_writable(parent, arg, p)
    return p


# ---------------------------------------------------------------- the demo command
def _register_demo(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo", help=COMMANDS["demo"][1],
        description="The main job on built-in defaults: the paper's three-action example and a "
                    "panel of noisy experts, with a table and a plot of reward against temperature.")
    p.add_argument("--out", default="runs/demo", help="directory for the table and plot (default: runs/demo)")
    p.add_argument("--seed", type=int, default=0, help="seed for the noisy-expert panel, >= 0 (default 0)")

    def run(args: argparse.Namespace) -> int:
        if args.seed < 0:
            raise UsageError(f"--seed: must be >= 0, got {args.seed}")
        check_output_dir(args.out, "--out")
        from transcendence.demo import run_demo
        run_demo(out_dir=args.out, seed=args.seed)
        return 0

    p.set_defaults(func=run)


# ---------------------------------------------------------------- the parser
def _load(name: str) -> Callable[..., None]:
    target, _ = COMMANDS[name]
    module_name, _, func_name = target.partition(":")
    return getattr(importlib.import_module(module_name), func_name)


def _register(name: str, subparsers: argparse._SubParsersAction, argv: Sequence[str]) -> None:
    """Import command ``name`` and add it; an import that fails becomes a :class:`CommandImportError`."""
    try:
        register = _load(name)
        if "argv" in inspect.signature(register).parameters:
            register(subparsers, argv=list(argv))
        else:
            register(subparsers)
    except ImportError as exc:
        missing = f"module {exc.name!r} is missing" if exc.name else str(exc)
        raise CommandImportError(
            f"cannot load the command: {missing} ({type(exc).__name__}: {exc}). Install the project "
            f"with its dependencies (pip install -e .) or fix the module") from exc


def _command_of(argv: Sequence[str]) -> str | None:
    """The command named by ``argv`` (its first argument, when it is one of :data:`COMMANDS`)."""
    return argv[0] if argv and argv[0] in COMMANDS else None


def build_parser(argv: Sequence[str] | None = None, *, load: str | Sequence[str] = ()) -> argparse.ArgumentParser:
    """The ``transcendence`` parser.

    Every command of :data:`COMMANDS` is listed; only the one named by ``argv`` (and any named in
    ``load``, or all of them with ``load="all"``) is imported and built in full. The others are
    placeholders that carry their help line.
    """
    argv = list(argv or [])
    wanted = set(COMMANDS) if load == "all" else {load} if isinstance(load, str) and load else set(load)
    command = _command_of(argv)
    if command is not None:
        wanted.add(command)
    parser = argparse.ArgumentParser(
        prog="transcendence",
        description="Exact, testable transcendence: when does a model trained on experts beat them?")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        if name in wanted:
            _register(name, subparsers, argv[1:] if name == command else [])
        else:
            subparsers.add_parser(name, help=help_text, add_help=False)
    return parser


def _prog(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    """``transcendence chess experts generate``: the prog of the deepest subcommand that ran."""
    while True:
        sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        chosen = getattr(args, sub.dest, None) if sub is not None else None
        if sub is None or chosen not in sub.choices:
            return parser.prog
        parser = sub.choices[chosen]


def _option_for(filename: object, args: argparse.Namespace) -> str | None:
    """The option whose path value is ``filename`` or a folder above it (``--out`` for ``out/x``)."""
    name = os.fsdecode(filename) if isinstance(filename, (str, bytes, os.PathLike)) else None
    if not name:
        return None
    for key, value in vars(args).items():
        if key.endswith("command") or not isinstance(value, (str, os.PathLike)):
            continue
        text = os.fspath(value)
        if text and (name == text or name.startswith(text.rstrip(os.sep) + os.sep)):
            return "--" + key.replace("_", "-")
    return None


def _message(exc: BaseException, args: argparse.Namespace | None = None) -> str:
    if isinstance(exc, OSError) and exc.filename is not None:
        where = exc.filename if exc.filename2 is None else f"{exc.filename} -> {exc.filename2}"
        option = _option_for(exc.filename, args) if args is not None else None
        return f"{option + ': ' if option else ''}{exc.strerror or exc}: {where}"
    text = str(exc).strip() or type(exc).__name__
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def _fail(prog: str, exc: BaseException, args: argparse.Namespace | None = None) -> int:
    if os.environ.get("TRANSCENDENCE_TRACEBACK"):
        raise exc
    print(f"{prog}: error: {_message(exc, args)}", file=sys.stderr)
    return 2


def _check_seeds(args: argparse.Namespace) -> None:
    """Every seed ends up in NumPy, which takes only integers >= 0: refuse a negative one up front,
    before a command creates any output (``--seed -1`` as an option or ``--seed=-1`` as an override)."""
    seed = getattr(args, "seed", None)
    if isinstance(seed, int) and not isinstance(seed, bool) and seed < 0:
        raise UsageError(f"--seed: must be >= 0, got {seed}")
    extra = list(getattr(args, "overrides", None) or [])
    for i, item in enumerate(extra):
        key, eq, value = item.partition("=")
        if not eq and i + 1 < len(extra):
            value = extra[i + 1]
        name = key.lstrip("-").replace("-", "_")
        if key.startswith("--") and (name == "seed" or name.endswith(".seed")):
            try:
                bad = int(value) < 0
            except ValueError:
                continue               # not a number: the command's own parser names it
            if bad:
                raise UsageError(f"--{name}: must be >= 0, got {value}")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = _command_of(argv)
    prog = f"transcendence {command}" if command else "transcendence"
    try:
        parser = build_parser(argv)
    except CommandImportError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    args, extra = parser.parse_known_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    # Subcommands that accept --key=value overrides declare `accepts_overrides=True`.
    if extra and not getattr(args, "accepts_overrides", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.overrides = extra
    prog = _prog(parser, args)
    try:
        _check_seeds(args)
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except ValueError as exc:
        return _fail(prog, exc)
    except OSError as exc:
        if exc.filename is None:   # not about a path (a broken pipe, a socket): a real failure
            raise
        return _fail(prog, exc, args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
