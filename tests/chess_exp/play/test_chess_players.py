"""Model players: the exact move distribution (both tokenizers) against brute force, the paper's
sampled character protocol (parsing, retries, forfeit, resignation), KV-cache generation."""

from __future__ import annotations

from collections.abc import Sequence

import chess
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from chess_exp.data.tokenizers import get_tokenizer
from chess_exp.model.gpt import GPT
from chess_exp.play.games import MatchConfig, ladder_specs, play_games
from chess_exp.play.players import (
    ModelPlayer,
    MoveRequest,
    PrefixCache,
    RandomPlayer,
    length_groups,
    parse_sampled_move,
)

OPENING = ("e4", "e5", "Qh5", "Nc6", "Bc4", "Nf6", "Qxf7#")


def _model(tiny_gpt, tokenizer_name: str, block_size: int = 128, seed: int = 0) -> GPT:
    # two layers, 32-dim embeddings: the prompt and KV caches are checked across more than one layer
    return tiny_gpt(tokenizer_name, block_size=block_size, n_layer=2, n_embd=32, seed=seed)


def _brute_force_logp(model: GPT, prefix: list[int], cand: list[int]) -> float:
    seq = torch.tensor([prefix + cand])
    with torch.no_grad():
        logits, _ = model(seq)
    logp = torch.log_softmax(logits[0].double(), dim=-1)
    return float(sum(logp[len(prefix) - 1 + k, t] for k, t in enumerate(cand)))


@pytest.mark.parametrize("tokenizer_name", ["char", "move"])
def test_exact_distribution_matches_brute_force(tokenizer_name: str, tiny_gpt) -> None:
    tok = get_tokenizer(tokenizer_name)
    model = _model(tiny_gpt, tokenizer_name)
    player = ModelPlayer(model, tok, policy="exact", temperature=1.0)
    histories = [(), OPENING[:3], OPENING[:4]]
    boards = []
    for sans in histories:
        board = chess.Board()
        for san in sans:
            board.push_san(san)
        boards.append(board)
    dists = player.move_distributions(boards, histories)
    for board, sans, (moves, probs) in zip(boards, histories, dists):
        assert set(moves) == set(board.legal_moves)
        assert probs.sum() == pytest.approx(1.0) and (probs > 0).all()
        prefix = tok.prefix(sans)
        logp = np.array([_brute_force_logp(model, prefix, tok.move_tokens(board, m)) for m in moves])
        expected = np.exp(logp - logp.max())
        np.testing.assert_allclose(probs, expected / expected.sum(), rtol=1e-4, atol=1e-7)


def test_exact_temperature_zero_plays_the_argmax(tiny_gpt) -> None:
    tok = get_tokenizer("move")
    model = _model(tiny_gpt, "move")
    board = chess.Board()
    (moves, probs), = ModelPlayer(model, tok).move_distributions([board], [()])
    best = moves[int(np.argmax(probs))]
    player = ModelPlayer(model, tok, policy="exact", temperature=0.0)
    for seed in range(5):
        (choice,) = player.choose([MoveRequest(board=board, sans=(), rng=np.random.default_rng(seed))])
        assert choice.move == best and choice.info["p_tempered"] == 1.0


def test_exact_temperature_per_player_key(tiny_gpt) -> None:
    tok = get_tokenizer("move")
    player = ModelPlayer(_model(tiny_gpt, "move"), tok, temperature={"cold": 0.0, "hot": 1.0})
    board = chess.Board()
    cold = {player.choose([MoveRequest(board=board, sans=(), rng=np.random.default_rng(s),
                                       player_key="cold")])[0].move for s in range(30)}
    hot = {player.choose([MoveRequest(board=board, sans=(), rng=np.random.default_rng(s),
                                      player_key="hot")])[0].move for s in range(30)}
    assert len(cold) == 1 and len(hot) > 5
    with pytest.raises(ValueError, match="no temperature"):
        player.choose([MoveRequest(board=board, sans=(), rng=np.random.default_rng(0), player_key="x")])


def test_parse_sampled_move_paper_rules() -> None:
    board = chess.Board()
    board.push_san("e4")
    assert parse_sampled_move("e5 2.Nf3", board) == ("move", chess.Move.from_uci("e7e5"))
    assert parse_sampled_move("Nc6;1.e4", board)[1] == chess.Move.from_uci("b8c6")
    assert parse_sampled_move(" 0-1", board) == ("resign", None)
    assert parse_sampled_move("1/2-1/2 ", board) == ("resign", None)
    assert parse_sampled_move("e4 ", board) == ("illegal", None)
    assert parse_sampled_move(";", board) == ("illegal", None)
    assert parse_sampled_move("Zz9", board) == ("illegal", None)
    for null in ("--", "Z0", "0000", "@@@@"):  # python-chess's null-move spellings are no move
        assert parse_sampled_move(null, board) == ("illegal", None)
    mate = chess.Board()
    for san in OPENING[:-1]:
        mate.push_san(san)
    assert parse_sampled_move("Qxf7+ Ke7", mate)[1] == chess.Move.from_uci("h5f7")  # cut at '+'
    assert parse_sampled_move("Qxf7#", mate)[1] == chess.Move.from_uci("h5f7")


class ScriptedText(ModelPlayer):
    """A sampled-policy player whose 'model' emits a fixed sequence of texts."""

    def __init__(self, texts: Sequence[str]) -> None:
        super().__init__(model=None, tokenizer=get_tokenizer("char"), policy="sampled", temperature=1.0)
        self.texts = list(texts)

    def generate(self, prompts, rngs, temperatures, *, keys=None):
        return [self.texts.pop(0) for _ in prompts]


def _request(sans: Sequence[str] = ()) -> MoveRequest:
    board = chess.Board()
    for san in sans:
        board.push_san(san)
    return MoveRequest(board=board, sans=tuple(sans), rng=np.random.default_rng(0))


def test_sampled_retries_then_plays() -> None:
    (choice,) = ScriptedText(["Ke2 ", "2.e4", "Nf3 Nc6"]).choose([_request()])
    assert choice.move == chess.Move.from_uci("g1f3") and choice.illegal_attempts == 2
    assert not choice.forfeit and not choice.resigned


def test_sampled_forfeits_after_five_illegal_attempts() -> None:
    (choice,) = ScriptedText(["xx"] * 5).choose([_request()])
    assert choice.move is None and choice.forfeit and choice.illegal_attempts == 5


def test_sampled_result_string_is_resignation() -> None:
    (choice,) = ScriptedText(["bad", "0-1 "]).choose([_request(["e4"])])
    assert choice.move is None and choice.resigned and choice.illegal_attempts == 1


def test_sampled_needs_char_tokenizer(tiny_gpt) -> None:
    with pytest.raises(ValueError, match="char tokenizer"):
        ModelPlayer(_model(tiny_gpt, "move"), get_tokenizer("move"), policy="sampled")


def test_sampled_generation_with_cache_equals_without(tiny_gpt) -> None:
    """The batched KV-cache loop samples the same characters as the paper's re-run-everything loop."""
    tok = get_tokenizer("char")
    model = _model(tiny_gpt, "char", block_size=64)
    prompts = [tok.prefix(()), tok.prefix(OPENING[:3]), tok.prefix(OPENING[:6])]
    cached = ModelPlayer(model, tok, policy="sampled", temperature=1.0, use_cache=True, max_chars=6)
    plain = ModelPlayer(model, tok, policy="sampled", temperature=1.0, use_cache=False, max_chars=6)
    a = cached.generate(prompts, [np.random.default_rng(i) for i in range(3)], [1.0] * 3)
    b = plain.generate(prompts, [np.random.default_rng(i) for i in range(3)], [1.0] * 3)
    for x, y in zip(a, b):  # the cached loop stops once the move is determined
        assert y.startswith(x) and len(x) >= 1
    assert all(len(t) <= 6 for t in a)


def test_model_games_record_checks_and_batch(tmp_path, tiny_gpt) -> None:
    tok = get_tokenizer("move")
    model = ModelPlayer(_model(tiny_gpt, "move", block_size=256), tok, policy="exact", temperature=1.0, name="tiny")
    records = play_games(ladder_specs("model", ["random"], 4, seed=2),
                         {"model": model, "random": RandomPlayer()}, out_dir=tmp_path,
                         config=MatchConfig(max_moves=60), progress=False)
    assert len(records) == 4
    for record in records:
        board = chess.Board()
        for san in record.sans:
            move = board.parse_san(san)
            assert san == board.san(move)  # full SAN, '+' and '#' included, for both sides
            board.push(move)
    assert any("+" in san for r in records for san in r.sans)


@pytest.mark.parametrize("tokenizer_name", ["char", "move"])
def test_prompt_cache_across_moves_matches_brute_force(tokenizer_name: str, tiny_gpt) -> None:
    """Invariant: keeping each game's prompt in the KV cache between moves (and batching games of
    different lengths) gives the same move distribution as scoring every prompt from scratch."""
    tok = get_tokenizer(tokenizer_name)
    model = _model(tiny_gpt, tokenizer_name, block_size=96)
    cached = ModelPlayer(model, tok, policy="exact", use_cache=True)
    scratch = ModelPlayer(model, tok, policy="exact", use_cache=False)
    games = {"a": ("e4", "e5", "Nf3", "Nc6", "Bb5", "a6", "Ba4", "Nf6"), "b": ("d4", "d5", "c4")}
    for step in range(1, 9):
        requests = []
        for game_id, moves in games.items():
            sans = moves[:min(step, len(moves))]
            board = chess.Board()
            for san in sans:
                board.push_san(san)
            requests.append(MoveRequest(board=board, sans=sans, rng=np.random.default_rng(0), game_id=game_id))
        got = cached.distributions(requests)
        want = scratch.move_distributions([r.board for r in requests], [r.sans for r in requests])
        for (m1, p1), (m2, p2) in zip(got, want):
            assert m1 == m2
            np.testing.assert_allclose(p1, p2, rtol=1e-4, atol=1e-7)
        if step == 4:
            cached.game_over("b")
    assert set(cached.prefix_cache.entries) == {"a", "b"}
    cached.game_over("a")
    assert "a" not in cached.prefix_cache.entries


def test_sampled_with_prompt_cache_equals_plain_loop(tiny_gpt) -> None:
    """Sampling with per-game cached prompts (a second call reuses them) draws the same characters."""
    tok = get_tokenizer("char")
    model = _model(tiny_gpt, "char", block_size=64)
    cached = ModelPlayer(model, tok, policy="sampled", temperature=1.0, use_cache=True, max_chars=6)
    plain = ModelPlayer(model, tok, policy="sampled", temperature=1.0, use_cache=False, max_chars=6)
    for n in (3, 5):
        prompts = [tok.prefix(OPENING[:n]), tok.prefix(OPENING[:n - 2])]
        a = cached.generate(prompts, [np.random.default_rng(i) for i in range(2)], [1.0] * 2, keys=["x", "y"])
        b = plain.generate(prompts, [np.random.default_rng(i) for i in range(2)], [1.0] * 2)
        for x, y in zip(a, b):
            assert y.startswith(x) and len(x) >= 1
    assert cached.prefix_cache.entries["x"].tokens == tok.prefix(OPENING[:5])


@given(st.lists(st.integers(1, 600), min_size=0, max_size=60))
def test_length_groups_partition_with_bounded_padding(lengths: list[int]) -> None:
    """Invariant: the groups partition the indices, and padding a group to its longest member costs
    at most 1.25 times its real tokens or 256 extra tokens, whichever is more."""
    groups = length_groups(lengths)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    for group in groups:
        real = sum(lengths[i] for i in group)
        assert max(lengths[i] for i in group) * len(group) <= max(1.25 * real, real + 256) + 1e-9


def test_prefix_cache_evicts_least_recently_used(tiny_gpt) -> None:
    tok = get_tokenizer("move")
    cache = PrefixCache(_model(tiny_gpt, "move"), max_games=2)
    with torch.no_grad():
        for key in ("a", "b", "c"):
            cache.prefill([key], [tok.prefix(("e4",))])
    assert list(cache.entries) == ["b", "c"]
    assert cache.new_tokens("c", tok.prefix(("e4", "e5"))) == 1
    assert cache.new_tokens("a", tok.prefix(("e4", "e5"))) == 3


def test_short_context_many_games_in_flight_exact_policy(tiny_gpt) -> None:
    """Regression: one game's prompt cropped to the context while another game of the same prefill
    batch is cached used to put the cached row's padding beyond block_size ("position 110 is
    beyond block_size=64"). A 64-token char model with 16 games in flight reaches it at once."""
    tok = get_tokenizer("char")
    player = ModelPlayer(_model(tiny_gpt, "char", block_size=64), tok, policy="exact", temperature=1.0)
    records = play_games(ladder_specs("model", ["random"], 16, seed=1), {"model": player, "random": RandomPlayer()},
                         config=MatchConfig(max_moves=30, in_flight=8), progress=False)
    assert len(records) == 16 and max(len(r.sans) for r in records) > 40  # prompts far beyond the context


def test_cropped_and_cached_rows_in_one_batch_match_scratch(tiny_gpt) -> None:
    """The same situation at the level of one call: game "a" cached with a short prompt, game "b"
    cropped; both distributions equal those computed from scratch."""
    tok = get_tokenizer("move")
    model = _model(tiny_gpt, "move", block_size=16)
    cached = ModelPlayer(model, tok, policy="exact", use_cache=True)
    scratch = ModelPlayer(model, tok, policy="exact", use_cache=False)
    long_game = ("e4", "e5", "Nf3", "Nc6", "Bb5", "a6", "Ba4", "Nf6", "O-O", "Be7", "Re1", "b5", "Bb3", "d6",
                 "c3", "O-O", "h3", "Nb8", "d4", "Nbd7")

    def request(sans: tuple[str, ...], game_id: str) -> MoveRequest:
        board = chess.Board()
        for san in sans:
            board.push_san(san)
        return MoveRequest(board=board, sans=sans, rng=np.random.default_rng(0), game_id=game_id)

    cached.distributions([request(long_game[:2], "a")])
    requests = [request(long_game[:3], "a"), request(long_game, "b")]
    got = cached.distributions(requests)
    want = scratch.move_distributions([r.board for r in requests], [r.sans for r in requests])
    for (m1, p1), (m2, p2) in zip(got, want):
        assert m1 == m2
        np.testing.assert_allclose(p1, p2, rtol=1e-5, atol=1e-8)
    assert set(cached.prefix_cache.entries) == {"a"}  # the cropped game is not cached


def test_sampled_policy_short_context_many_games_in_flight(tiny_gpt) -> None:
    """The sampled protocol's prefill batches cropped and cached prompts the same way."""
    tok = get_tokenizer("char")
    player = ModelPlayer(_model(tiny_gpt, "char", block_size=40), tok, policy="sampled", temperature=1.0, attempts=50)
    records = play_games(ladder_specs("model", ["random"], 12, seed=4), {"model": player, "random": RandomPlayer()},
                         config=MatchConfig(max_moves=15, in_flight=12), progress=False)
    assert len(records) == 12


def test_request_temperature_overrides_the_players(tiny_gpt) -> None:
    """The temperature travels in the request as a float; the player's own is the fallback."""
    tok = get_tokenizer("move")
    player = ModelPlayer(_model(tiny_gpt, "move"), tok, temperature=1.0)
    board = chess.Board()
    cold = {player.choose([MoveRequest(board=board, sans=(), rng=np.random.default_rng(s),
                                       temperature=0.0)])[0].move for s in range(30)}
    hot = {player.choose([MoveRequest(board=board, sans=(), rng=np.random.default_rng(s))])[0].move
           for s in range(30)}
    assert len(cold) == 1 and len(hot) > 5
    with pytest.raises(ValueError, match="temperature"):
        player.choose([MoveRequest(board=board, sans=(), rng=np.random.default_rng(0), temperature=-1.0)])


def test_no_cache_is_a_cache_of_size_zero(tiny_gpt) -> None:
    """use_cache=False runs the same arithmetic as the cache, keeping nothing: equal distributions."""
    tok = get_tokenizer("char")
    model = _model(tiny_gpt, "char", block_size=96)
    cached = ModelPlayer(model, tok, use_cache=True)
    plain = ModelPlayer(model, tok, use_cache=False)
    board = chess.Board()
    for san in OPENING[:4]:
        board.push_san(san)
    request = MoveRequest(board=board, sans=OPENING[:4], rng=np.random.default_rng(0), game_id="g")
    (m1, p1), = cached.distributions([request])
    (m2, p2), = plain.distributions([request])
    assert m1 == m2 and np.array_equal(p1, p2)
    assert plain.prefix_cache.entries == {} and set(cached.prefix_cache.entries) == {"g"}


@given(st.lists(st.integers(1, 600), min_size=0, max_size=60), st.integers(1, 5000))
def test_length_groups_respect_the_token_budget(lengths: list[int], budget: int) -> None:
    """Invariant: with max_tokens, a group of two or more pads to at most the budget; still a partition."""
    groups = length_groups(lengths, max_tokens=budget)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    for group in groups:
        assert len(group) == 1 or max(lengths[i] for i in group) * len(group) <= budget
