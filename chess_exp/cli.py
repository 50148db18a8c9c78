"""``transcendence chess ...``: the chess experiment's subcommands.

Each subcommand lives in its own module, which provides ``add_arguments(parser)`` and
``main(args) -> int``. ``transcendence chess --help`` lists :data:`COMMANDS` without importing
them; the module of the subcommand being run is imported when the parser is built, and an import
that fails is an error (never a subcommand silently missing from ``--help``).
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "prepare": ("chess_exp.data.prepare", "lichess PGN/CSV -> filtered, tokenised, memory-mapped arrays"),
    "train": ("chess_exp.model.train", "train a GPT on prepared games (CPU, one GPU, or torchrun DDP)"),
    "eval": ("chess_exp.play.ladder", "play Stockfish at several temperatures and rate the model"),
    "experts": ("chess_exp.experts.cli", "synthetic experts with known policies: panels, generate, measure, demo"),
    "favor": ("chess_exp.analysis.favor", "denoising: favor of low temperature over tau=1 (Fig. 4, Table 1)"),
    "majority": ("chess_exp.analysis.majority", "human majority vote vs the human mixture on real games"),
    "diversity": ("chess_exp.analysis.diversity", "normalised action entropy of common states (Fig. 5)"),
    "tsne": ("chess_exp.analysis.tsne", "t-SNE of the model's last hidden layer (Fig. 3)"),
    "check": ("chess_exp.analysis.check", "per-position transcendence check: experts, exact mixture, model (core maths)"),
    "map": ("chess_exp.analysis.transcendence_map", "where a trained learner transcends: expert noise x training budget, resumable"),
    "tournament": ("chess_exp.analysis.tournament", "experts, exact mixture, model and anchors in games: one joint Elo with intervals, resumable"),
}


def register(subparsers: argparse._SubParsersAction, argv: Sequence[str] | None = None) -> None:
    """Add ``chess``. ``argv`` (the arguments after ``chess``) names the subcommand to import;
    ``None`` imports every subcommand."""
    chess = subparsers.add_parser("chess", help="the chess experiment: data, training, play, analyses",
                                  description="The chess experiment of the paper, and its extensions.")
    chess_sub = chess.add_subparsers(dest="chess_command", metavar="CHESS_COMMAND")
    wanted = set(COMMANDS) if argv is None else {argv[0]} if argv and argv[0] in COMMANDS else set()
    for name, (module_name, help_text) in COMMANDS.items():
        if name not in wanted:
            chess_sub.add_parser(name, help=help_text, add_help=False)   # listed, not imported
            continue
        module = importlib.import_module(module_name)   # a failure here is reported, not hidden
        p = chess_sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(p)
        if p.get_default("func") is None:
            p.set_defaults(func=module.main)

    def no_command(args: argparse.Namespace) -> int:
        chess.print_help()
        return 0

    chess.set_defaults(func=no_command)
