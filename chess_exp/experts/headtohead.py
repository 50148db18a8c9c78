"""Head-to-head: a trained model (exact policy) at several temperatures against a panel's experts.

A check that needs no Elo anchor: when the model loses every game against the Stockfish ladder, its
score against the panel's own (weaker) experts still shows where it stands and whether lowering the
temperature helps. Games go to ``<run>/h2h/`` (resumable, as every ``chess_exp.play.games`` run).

::

    python -m chess_exp.experts.headtohead --run runs/experts-noisy3-long --games 40 \\
        --opponents noisy-eps0.3,noisy-eps0.2 --temperatures 0,1
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

__all__ = ["head_to_head", "main"]


def head_to_head(run: Path, *, panel_name: str, opponents: Sequence[str], temperatures: Sequence[float],
                 games: int, seed: int = 7, cache_dir: Path | None = None) -> dict[str, dict[str, dict]]:
    """``{model@tau: {expert: {"score", "games", "wdl"}}}`` over ``games`` games per pairing."""
    import torch

    from chess_exp.data.tokenizers import get_tokenizer
    from chess_exp.experts.oracle import Oracle
    from chess_exp.experts.panel import build_experts, get_panel
    from chess_exp.model.checkpoints import load_model
    from chess_exp.play.games import MatchConfig, ladder_specs, play_games, score_for
    from chess_exp.play.players import DistributionPlayer, ModelPlayer

    torch.set_num_threads(1)
    panel = get_panel(panel_name)
    with Oracle(panel.engine, cache_dir=cache_dir or run / "cache") as oracle:
        experts = {e.name: e for e in build_experts(panel, oracle)}
        unknown = [o for o in opponents if o not in experts]
        if unknown:
            raise ValueError(f"opponents: {unknown} not in panel {panel.name} ({sorted(experts)})")
        model, meta = load_model(run / "model")
        temps = {f"model@{t:g}": float(t) for t in temperatures}
        player = ModelPlayer(model, get_tokenizer(meta["tokenizer"]), policy="exact", temperature=temps)
        players = {key: player for key in temps}
        players.update({o: DistributionPlayer(experts[o], 1.0, name=o) for o in opponents})
        specs = []
        for j, key in enumerate(temps):
            specs += ladder_specs(key, list(opponents), games, seed=seed, prefix=f"{key}-vs-", seed_key=(j,),
                                  tags={"player": key})
        records = play_games(specs, players, out_dir=run / "h2h", config=MatchConfig(in_flight=40),
                             progress=False)
    out: dict[str, dict[str, dict]] = {}
    for key in temps:
        for o in opponents:
            scores = [score_for(r, r.tags["player_colour"]) for r in records
                      if r.tags["player"] == key and r.tags["opponent"] == o]
            wdl = [sum(s == v for s in scores) for v in (1.0, 0.5, 0.0)]
            out.setdefault(key, {})[o] = {"score": sum(scores) / len(scores), "games": len(scores), "wdl": wdl}
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m chess_exp.experts.headtohead", description=__doc__.split("\n\n")[0])
    p.add_argument("--run", type=Path, required=True, help="a `chess experts measure` directory (with model/)")
    p.add_argument("--panel", default="noisy3", help="the run's panel (default noisy3)")
    p.add_argument("--opponents", default="noisy-eps0.3,noisy-eps0.2", help="comma-separated expert names")
    p.add_argument("--temperatures", default="0,1", help="comma-separated model temperatures")
    p.add_argument("--games", type=int, default=40, help="games per (temperature, opponent), colours alternating")
    args = p.parse_args(argv)
    results = head_to_head(args.run, panel_name=args.panel, opponents=args.opponents.split(","),
                           temperatures=[float(t) for t in args.temperatures.split(",")], games=args.games)
    for key, row in results.items():
        for o, r in row.items():
            w, d, l = r["wdl"]
            print(f"{key} vs {o}: score {r['score']:.3f} over {r['games']} games (W/D/L {w}/{d}/{l})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
