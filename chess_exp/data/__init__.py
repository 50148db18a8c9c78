"""Stage 1 of the chess pipeline: reading games, tokenising them, and the prepared format.

Modules: ``readers`` (PGN, .zst/.xz/.gz, CSV, the lichess sample), ``_pgn`` (the fast text PGN
parser), ``_pgn_replay`` (SAN replay on bitboards), ``tokenizers`` (char and move), ``prepare``
(games -> memory-mapped token arrays). Imports nothing of the later stages.
"""
