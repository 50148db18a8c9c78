"""Training `tiny` on real lichess games (prepared with chess_exp.data.prepare) beats the unigram baseline."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from chess_exp.model.checkpoints import load_model
from chess_exp.model.train import PRESETS, evaluate_run, load_split, train

pytestmark = pytest.mark.data


@pytest.mark.parametrize("tokenizer", ["move", "char"])
def test_tiny_on_real_games_beats_unigram_and_random_legal_moves(shared_data_dir, tmp_path, tokenizer):
    from chess_exp.data.prepare import prepare
    from chess_exp.data.readers import Filters

    data = tmp_path / "data"
    source = shared_data_dir / "lichess_rapid_2014-2022_ahmed-ghaf-404.transcripts.csv.xz"
    prepare([source], data, tokenizer=tokenizer, filters=Filters(cap=1300), max_games=400, progress=False)
    block = 64 if tokenizer == "move" else 128
    config = dataclasses.replace(
        PRESETS["tiny"], data_dir=data, out_dir=tmp_path / "run", num_threads=1, max_iters=120,
        eval_interval=60, eval_iters=8, batch_size=16, log_interval=20,
        model=dataclasses.replace(PRESETS["tiny"].model, block_size=block))
    run = train(config)

    train_tokens = np.asarray(load_split(data, "train").tokens)
    val_tokens = np.asarray(load_split(data, "val").tokens)
    vocab = json.loads((data / "meta.json").read_text())["vocab_size"]
    freq = np.bincount(train_tokens, minlength=vocab) + 1.0
    unigram = float(-np.log(freq / freq.sum())[val_tokens].mean())
    evals = [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r["kind"] == "eval"]
    assert evals[0]["val_loss"] > unigram
    assert evals[-1]["val_loss"] < unigram - 0.1

    model, meta = load_model(run)
    assert meta["tokenizer"] == tokenizer and model.config.vocab_size == vocab
    if tokenizer == "move":  # the exact policy's argmax beats a uniformly random legal move
        result = evaluate_run(run, data, legal_games=10)
        assert result["val_loss"] < result["unigram_loss"]
        assert result["val_legal_move_acc_n"] > 200
        import chess

        from chess_exp.data.tokenizers import get_tokenizer
        from chess_exp.model.train import split_games_sans
        games = split_games_sans(load_split(data, "val"), get_tokenizer("move"), 10)
        chance = []
        for sans in games:
            board = chess.Board()
            for san in sans:
                chance.append(1 / board.legal_moves.count())
                board.push_san(san)
        assert result["val_legal_move_acc"] > np.mean(chance) + 0.03
