"""The game loop with scripted fake players: results, move-limit draws, forfeits, resignations,
PGN headers, JSONL records and resume."""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Sequence
from pathlib import Path

import chess
import chess.pgn
import numpy as np
import pytest

from chess_exp.play.games import (
    GameSpec,
    MatchConfig,
    engine_adjudicator,
    ladder_specs,
    load_records,
    play_games,
    score_for,
)
from chess_exp.play.players import DistributionPlayer, MoveChoice, MoveRequest, RandomPlayer

FOOLS_MATE = ["f3", "e5", "g4", "Qh4#"]


class Scripted:
    """Plays the SAN moves of a script (indexed by ply); ``None`` = resign, ``"forfeit"`` = forfeit."""

    def __init__(self, name: str, script: Sequence[str | None], *, illegal: int = 0) -> None:
        self.name = name
        self.script = list(script)
        self.illegal = illegal
        self.calls: list[int] = []

    def choose(self, requests: Sequence[MoveRequest]) -> list[MoveChoice]:
        self.calls.append(len(requests))
        out = []
        for r in requests:
            ply = len(r.sans)
            entry = self.script[ply] if ply < len(self.script) else "random"
            if entry is None:
                out.append(MoveChoice(move=None, resigned=True, illegal_attempts=self.illegal))
            elif entry == "forfeit":
                out.append(MoveChoice(move=None, forfeit=True, illegal_attempts=5))
            elif entry == "random":
                out.append(MoveChoice(move=RandomPlayer().play(r.board, rng=r.rng)))
            else:
                out.append(MoveChoice(move=r.board.parse_san(entry), illegal_attempts=self.illegal))
        return out


def Shuffler() -> Scripted:
    """Knights out and back: a game that only ends by repetition or the move limit."""
    return Scripted("shuffler", ["Nf3", "Nf6", "Ng1", "Ng8"] * 60)


def _spec(game_id: str, white: str = "w", black: str = "b", **kw) -> GameSpec:
    return GameSpec(game_id=game_id, white=white, black=black, seed=(0, len(game_id)), **kw)


def test_checkmate_result_and_record(tmp_path: Path) -> None:
    players = {"w": Scripted("white-bot", FOOLS_MATE[0::2] and FOOLS_MATE),
               "b": Scripted("black-bot", FOOLS_MATE)}
    (record,) = play_games([_spec("g1", headers={"Model": "m", "Temperature": "0.1"})], players,
                           out_dir=tmp_path, progress=False)
    assert record.result == "0-1" and record.termination == "checkmate"
    assert record.sans == FOOLS_MATE  # '#' kept
    assert score_for(record, "black") == 1.0 and score_for(record, "white") == 0.0
    line = json.loads((tmp_path / "games.jsonl").read_text())
    assert line["result"] == "0-1" and line["sans"] == FOOLS_MATE and line["termination"] == "checkmate"
    game = chess.pgn.read_game(io.StringIO((tmp_path / "games.pgn").read_text()))
    assert game.headers["Model"] == "m" and game.headers["Temperature"] == "0.1"
    assert game.headers["White"] == "white-bot" and game.headers["Result"] == "0-1"
    assert game.headers["Termination"] == "checkmate" and game.headers["GameId"] == "g1"
    assert [m.uci() for m in game.mainline_moves()] == ["f2f3", "e7e5", "g2g4", "d8h4"]


def test_checks_recorded_for_both_sides() -> None:
    script = ["e4", "f5", "Qh5+", "g6"]
    (record,) = play_games([_spec("g")], {"w": Scripted("w", script), "b": Scripted("b", script)},
                           config=MatchConfig(max_moves=2), progress=False)
    assert record.sans == ["e4", "f5", "Qh5+", "g6"]


def test_move_limit_is_a_draw() -> None:
    config = MatchConfig(max_moves=6, claim_draw=False)  # 12 plies: a fourfold repetition, not five
    (record,) = play_games([_spec("g", "s", "s")], {"s": Shuffler()}, config=config, progress=False)
    assert record.result == "1/2-1/2" and record.termination == "move_limit"
    assert record.plies == 12


def test_move_limit_paper_default_is_89_moves() -> None:
    assert MatchConfig().max_moves == 89
    records = play_games(ladder_specs("r", ["r"], 6, seed=0), {"r": RandomPlayer()}, progress=False)
    limited = [r for r in records if r.termination == "move_limit"]
    assert limited and all(r.plies == 178 and r.result == "1/2-1/2" for r in limited)
    assert all(r.plies <= 178 for r in records)


def test_repetition_ends_game_when_claimed() -> None:
    (record,) = play_games([_spec("g", "s", "s")], {"s": Shuffler()}, progress=False,
                           config=MatchConfig(claim_draw=True))
    assert record.termination == "threefold_repetition" and record.plies == 7  # claimable with move 8
    (record,) = play_games([_spec("g", "s", "s")], {"s": Shuffler()}, progress=False)
    assert record.termination == "fivefold_repetition" and record.plies == 16  # automatic


def test_engine_adjudication_at_move_limit() -> None:
    class Score:
        def __init__(self, cp: int) -> None:
            self.cp = cp

        def white(self) -> Score:
            return self

        def score(self, mate_score: int) -> int:
            return self.cp

    config = MatchConfig(max_moves=3, adjudicate="engine", claim_draw=False)
    for cp, result in ((500, "1-0"), (-500, "0-1"), (50, "1/2-1/2")):
        (record,) = play_games([_spec("g", "s", "s")], {"s": Shuffler()}, config=config, progress=False,
                               adjudicator=engine_adjudicator(lambda board, cp=cp: Score(cp)))
        assert record.result == result and record.termination == "adjudication"
    with pytest.raises(ValueError, match="adjudicator"):
        play_games([_spec("g", "s", "s")], {"s": Shuffler()}, config=config, progress=False)


def test_forfeit_loses_and_counts_illegal_attempts() -> None:
    players = {"w": Scripted("w", ["e4", "e5", "forfeit"]), "b": Scripted("b", ["e4", "e5"], illegal=2)}
    (record,) = play_games([_spec("g")], players, progress=False)
    assert record.result == "0-1" and record.termination == "forfeit"
    assert record.illegal_attempts == {"white": 5, "black": 2}
    assert record.sans == ["e4", "e5"]


def test_resignation_string_loses() -> None:
    players = {"w": Scripted("w", ["e4"]), "b": Scripted("b", ["e4", None])}
    (record,) = play_games([_spec("g")], players, progress=False)
    assert record.result == "1-0" and record.termination == "resign"


def test_illegal_move_from_a_player_is_an_error() -> None:
    class Bad:
        name = "bad"

        def choose(self, requests):
            return [MoveChoice(move=chess.Move.from_uci("e2e5")) for _ in requests]

    with pytest.raises(ValueError, match="illegal move"):
        play_games([_spec("g", "x", "x")], {"x": Bad()}, progress=False)


def test_ladder_alternates_colours_and_batches_across_games() -> None:
    specs = ladder_specs("model", ["L1", "L3"], 4, seed=7, tags={"temperature": 0.1})
    assert [s.white for s in specs[:4]] == ["model", "L1", "model", "L1"]
    assert {s.tags["player_colour"] for s in specs} == {"white", "black"}
    assert len({s.game_id for s in specs}) == 8 and specs[0].tags["temperature"] == 0.1
    model = Scripted("model", [])
    records = play_games(specs, {"model": model, "L1": RandomPlayer(), "L3": RandomPlayer()},
                         config=MatchConfig(max_moves=5, in_flight=8), progress=False)
    assert len(records) == 8 and [r.game_id for r in records] == [s.game_id for s in specs]
    assert max(model.calls) == 4  # the four games where it is the model's turn, in one call


def test_same_seed_same_games_regardless_of_in_flight(tmp_path: Path) -> None:
    specs = ladder_specs("r1", ["r2"], 6, seed=3)
    players = {"r1": RandomPlayer("r1"), "r2": RandomPlayer("r2")}
    a = play_games(specs, players, config=MatchConfig(in_flight=6), out_dir=tmp_path / "a", progress=False)
    b = play_games(specs, players, config=MatchConfig(in_flight=1), out_dir=tmp_path / "b", progress=False)
    assert [r.sans for r in a] == [r.sans for r in b]
    play_games(specs, players, config=MatchConfig(in_flight=6), out_dir=tmp_path / "c", progress=False)
    assert (tmp_path / "a" / "games.pgn").read_text() == (tmp_path / "c" / "games.pgn").read_text()


def test_resume_keeps_finished_games_and_plays_only_missing(tmp_path: Path) -> None:
    specs = ladder_specs("r1", ["r2"], 6, seed=1)
    players = {"r1": RandomPlayer("r1"), "r2": RandomPlayer("r2")}
    full = play_games(specs, players, out_dir=tmp_path / "full", progress=False)
    out = tmp_path / "run"
    first = play_games(specs[:4], players, out_dir=out, progress=False)
    # simulate a crash: a half-written JSONL line and a PGN game that never got its JSONL line
    with open(out / "games.jsonl", "a") as f:
        f.write('{"game_id": "r2-0004", "res')
    with open(out / "games.pgn", "a") as f:
        f.write('[Event "torn"]\n\n1. e4 *\n\n')
    counting = {k: Scripted(p.name, []) for k, p in players.items()}
    resumed = play_games(specs, counting, out_dir=out, progress=False)
    assert [r.game_id for r in resumed] == [s.game_id for s in specs]
    assert [r.sans for r in resumed[:4]] == [r.sans for r in first]  # kept, not replayed
    assert [r.sans for r in resumed] == [r.sans for r in full]  # the missing ones replayed identically
    records = load_records(out)
    assert sorted(r.game_id for r in records) == sorted(s.game_id for s in specs)  # none lost or doubled
    pgn_text = (out / "games.pgn").read_text()
    assert pgn_text.count("[Event ") == 6 and "torn" not in pgn_text
    blocks = lambda text: sorted(text.split("[Event ")[1:])  # noqa: E731  (one block per game)
    assert blocks(pgn_text) == blocks((tmp_path / "full" / "games.pgn").read_text())
    again = play_games(specs, counting, out_dir=out, progress=False)
    assert len(load_records(out)) == 6 and [r.sans for r in again] == [r.sans for r in resumed]


def test_distribution_player_temperature_zero_is_argmax_with_uniform_ties() -> None:
    board = chess.Board()
    moves = list(board.legal_moves)

    def policy(b):
        p = np.full(len(moves), 0.01)
        p[0] = p[1] = 0.5 - 0.01 * (len(moves) - 2) / 2
        return moves, p / p.sum()

    player = DistributionPlayer(policy, 0.0, name="d")
    rng = np.random.default_rng(0)
    picks = [player.choose([MoveRequest(board=board, sans=(), rng=rng)])[0].move for _ in range(400)]
    counts = {m: picks.count(m) for m in set(picks)}
    assert set(counts) == {moves[0], moves[1]}
    assert 150 < counts[moves[0]] < 250
    hot = DistributionPlayer(policy, 1.0)
    picks = {hot.choose([MoveRequest(board=board, sans=(), rng=rng)])[0].move for _ in range(400)}
    assert len(picks) > 2


def test_bad_specs_rejected() -> None:
    with pytest.raises(ValueError, match="unique"):
        play_games([_spec("g"), _spec("g")], {"w": Shuffler(), "b": Shuffler()}, progress=False)
    with pytest.raises(ValueError, match="no player named"):
        play_games([_spec("g", "w", "zz")], {"w": Shuffler()}, progress=False)


# -- one loop, one record, one writer, one rule set for evaluation and expert games ---------------

def test_rules_are_one_typed_object() -> None:
    from chess_exp.play.games import EVALUATION_RULES, EXPERT_RULES, GameRules

    assert EVALUATION_RULES == GameRules(max_moves=89, claim_draw=False, adjudicate="draw", adjudicate_cp=300)
    assert EXPERT_RULES == GameRules(max_moves=89, claim_draw=True, adjudicate="draw", adjudicate_cp=300)
    config = MatchConfig(max_moves=40, adjudicate="engine")  # shorthands land in the rules
    assert config.rules == GameRules(max_moves=40, adjudicate="engine") and config.max_moves == 40
    assert MatchConfig(rules=EXPERT_RULES).claim_draw is True
    for bad in ({"max_moves": 0}, {"adjudicate": "coin"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            GameRules(**bad)


def test_expert_games_and_evaluation_games_share_the_loop_and_record() -> None:
    """The experts' ``play_game`` is the same loop: the same record type, termination names and rules."""
    from chess_exp.experts.generate import play_game
    from chess_exp.play.games import TERMINATIONS, GameRecord

    def shuffle_policy(board: chess.Board):
        script = ["Nf3", "Nf6", "Ng1", "Ng8"]
        move = board.parse_san(script[len(board.move_stack) % 4])
        return [move], np.array([1.0])

    claimed = play_game(shuffle_policy, shuffle_policy, rng=np.random.default_rng(0))
    assert isinstance(claimed, GameRecord) and claimed.termination == "threefold_repetition"
    assert claimed.plies == 7  # as in test_repetition_ends_game_when_claimed: same rule, same ply
    limited = play_game(shuffle_policy, shuffle_policy, rng=np.random.default_rng(0), max_moves=1)
    assert limited.termination == "move_limit" and limited.plies == 2 and limited.result == "1/2-1/2"
    assert {claimed.termination, limited.termination} <= set(TERMINATIONS)
    # from a position (not the initial one) the limit counts full moves of that position
    board = chess.Board("r1bqk2r/1pppbppp/p1n2n2/4p3/B3P3/5N2/PPPP1PPP/RNBQR1K1 b kq - 5 6")
    random_policy = lambda b: (list(b.legal_moves), np.full(b.legal_moves.count(), 1 / b.legal_moves.count()))
    one = play_game(random_policy, random_policy, rng=np.random.default_rng(1), max_moves=6, board=board.copy())
    assert one.plies == 1 and one.fen == board.fen() and one.moves[0] in board.legal_moves


def test_pgn_writer_styles() -> None:
    from chess_exp.play.games import GameRecord, record_to_pgn

    record = GameRecord(game_id="7", white="a", black="b", result="1/2-1/2", termination="move_limit",
                        sans=["e4", "e5"], illegal_attempts={"white": 0, "black": 0}, engine_restarts=0,
                        seed=[3, 7], headers={"Round": "7", "Zeta": "z", "Alpha": "x"}, tags={})
    evaluation = chess.pgn.read_game(io.StringIO(record_to_pgn(record)))
    assert list(evaluation.headers)[7:] == ["Alpha", "Zeta", "GameId", "Seed", "Termination"]
    assert evaluation.headers["Termination"] == "move_limit" and evaluation.headers["Seed"] == "[3, 7]"
    text = record_to_pgn(record, style="lichess")
    lichess = chess.pgn.read_game(io.StringIO(text))
    assert list(lichess.headers)[7:] == ["Zeta", "Alpha", "PlyCount", "Termination", "Ending"]
    assert lichess.headers["Termination"] == "Adjudication" and lichess.headers["Ending"] == "max moves"
    assert lichess.headers["PlyCount"] == "2" and text.endswith("1. e4 e5 1/2-1/2\n\n")
    mate = dataclasses.replace(record, termination="checkmate", result="0-1", sans=FOOLS_MATE)
    assert chess.pgn.read_game(io.StringIO(record_to_pgn(mate, style="lichess"))).headers["Termination"] == "Normal"
    with pytest.raises(ValueError, match="style"):
        record_to_pgn(record, style="fancy")  # type: ignore[arg-type]


def test_shared_board_requests_cannot_corrupt_the_game() -> None:
    """With ``share_board`` a player gets one board kept in step with the game; a player that leaves
    it changed does not change the game (the loop keeps its own board and starts again from a copy)."""
    from chess_exp.play.games import Game, run_games

    class Vandal:
        name = "vandal"

        def __init__(self) -> None:
            self.seen: list[int] = []

        def choose(self, requests: Sequence[MoveRequest]) -> list[MoveChoice]:
            out = []
            for r in requests:
                self.seen.append(len(r.board.move_stack))
                move = RandomPlayer().play(r.board, rng=r.rng)
                r.board.push(move)  # left on the board
                out.append(MoveChoice(move=move))
            return out

    spec = _spec("g", "v", "v")
    vandal = Vandal()
    shared = run_games([Game(spec, rng=np.random.default_rng(4), share_board=True)], {"v": vandal},
                       rules=MatchConfig(max_moves=10).rules)
    copied = run_games([Game(spec, rng=np.random.default_rng(4))], {"v": Vandal()}, rules=MatchConfig(max_moves=10).rules)
    assert shared[0].sans == copied[0].sans and shared[0].plies == 20
    assert vandal.seen == list(range(20))  # every request showed the game's true position
