"""Stage 3 of the chess pipeline: players, Stockfish, games, ratings and the ladder.

Modules: ``players`` (the player protocol, the model player), ``engines`` (the Stockfish layer:
processes, pools, timeouts, restarts), ``games`` (the game loop and game records), ``ratings``
(Glicko-2, maximum-likelihood Elo), ``ladder`` (``transcendence chess eval``: the model against the
Stockfish ladder). Imports ``chess_exp.data`` and ``chess_exp.model`` only.
"""
