"""Synthetic chess experts with known policies.

An expert is a chess policy whose move distribution is known exactly on every board: Stockfish's
move at a fixed search limit (the *oracle*) with probability 1 - eps, otherwise a uniformly random
legal move (Prop. 3 on chess), or a *biased* expert that is accurate in one class of positions and
noisy elsewhere (Prop. 4 on chess). A panel (experts + weights) plays games against itself to make
training data, and its exact ideal mixture, tempered, is a player whose rating can be measured
directly. See docs/synthetic-experts.md.
"""

from chess_exp.experts.generate import GameRecord, generate_games, play_game, scan_pgn
from chess_exp.experts.oracle import EngineSpec, Oracle, position_key
from chess_exp.experts.panel import PANELS, MixturePolicy, Panel, TemperedPolicy, build_experts, get_panel
from chess_exp.experts.policies import Expert, ExpertSpec, legal_moves

__all__ = ["EngineSpec", "Oracle", "position_key", "Expert", "ExpertSpec", "legal_moves", "Panel",
           "PANELS", "get_panel", "build_experts", "MixturePolicy", "TemperedPolicy", "GameRecord",
           "play_game", "generate_games", "scan_pgn"]
