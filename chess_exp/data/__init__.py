"""Stage 1 of the chess pipeline: reading games, tokenising them, and the prepared format.

Modules: ``readers`` (PGN, .zst/.xz/.gz/.bz2, CSV, the paper's shards, Karvonen's blocks, the lichess
sample), ``_pgn`` (the fast text PGN parser), ``_pgn_replay`` (SAN replay on bitboards), ``tokenizers``
(char and move), ``prepare`` (games -> memory-mapped token arrays, over all cores), ``prepared`` (the
prepared format: writing, checked reading, game spans, schema version). Imports nothing of the later
stages.
"""
