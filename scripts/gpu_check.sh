#!/usr/bin/env bash
# Check the GPU training path: a few hundred steps of the paper_50m preset in bf16 with torch.compile,
# tokens/s and MFU against the GPU's peak, and the loss against a float32 run of the same steps.
#
#   scripts/gpu_check.sh            (or: make gpu-check)
#
# Environment (all optional):
#   STEPS=300          optimizer steps per run
#   DATA=DIR           a prepared char dataset (`transcendence chess prepare --tokenizer char`); without it,
#   INPUT=FILE         ... this lichess file is prepared, and without that, seeded random legal games are
#                      generated (their loss still compares bf16 with float32; the speed does not depend on it)
#   NPROC=1            processes (GPUs) for torchrun; >1 runs both runs under torchrun --standalone
#   MICRO=0            --micro_batch_size (0 = the whole share of the 125-sequence step per GPU)
#   OUT=runs/gpu-check where the runs, and summary.json, go
#   PYTHON=.venv/bin/python
#   PRESET=paper_50m, COMPILE=true, ALLOW_CPU=0   (PRESET=tiny COMPILE=false ALLOW_CPU=1 checks this script's
#                      plumbing on a CPU in a minute; its figures mean nothing)
# Exit status: 0 when the bf16 run's final losses are within 2% of the float32 run's, 1 when not,
# 2 when there is no CUDA device (nothing is written then).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
STEPS=${STEPS:-300}
NPROC=${NPROC:-1}
MICRO=${MICRO:-0}
OUT=${OUT:-runs/gpu-check}
PRESET=${PRESET:-paper_50m}
COMPILE=${COMPILE:-true}

if [[ "${ALLOW_CPU:-0}" != 1 ]] && ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    version=$("$PY" -c 'import torch; print(torch.__version__)' 2>/dev/null || echo "not importable")
    echo "gpu-check: no CUDA device is usable (torch $version); run this on a machine with an NVIDIA GPU and a" \
         "CUDA build of torch" >&2
    exit 2
fi

mkdir -p "$OUT"
if [[ -z "${DATA:-}" ]]; then
    DATA="$OUT/data"
    if [[ ! -f "$DATA/meta.json" ]]; then
        if [[ -n "${INPUT:-}" ]]; then
            src="$INPUT"
        else
            src="$OUT/random-games.pgn"
            echo "gpu-check: generating ${GAMES:-4000} seeded random legal games into $src" >&2
            "$PY" - "$src" "${GAMES:-4000}" <<'EOF'
import random, sys
import chess
rng = random.Random(0)
with open(sys.argv[1], "w") as f:
    for g in range(int(sys.argv[2])):
        board, moves = chess.Board(), []
        while not board.is_game_over() and len(moves) < 160:
            move = rng.choice(list(board.legal_moves))
            moves.append(board.san(move))
            board.push(move)
        result = board.result() if board.is_game_over() else "1/2-1/2"
        text = " ".join((f"{i // 2 + 1}. " if i % 2 == 0 else "") + m for i, m in enumerate(moves))
        f.write(f'[Event "random {g}"]\n[WhiteElo "1000"]\n[BlackElo "1000"]\n[Result "{result}"]\n\n'
                f'{text} {result}\n\n')
EOF
        fi
        "$(dirname "$PY")/transcendence" chess prepare --input "$src" --out "$DATA" --tokenizer char --no-progress \
            --workers 0 --force
    fi
fi

common=(--preset "$PRESET" --data "$DATA" --max_iters="$STEPS" --eval_interval="$STEPS" --eval_iters=5
        --eval_acc_games=0 --log_interval=25 --keep_every=0 --warmup_iters=$((STEPS / 3)) --resume=false
        --micro_batch_size="$MICRO")
launch() {
    if [[ "$NPROC" -gt 1 ]]; then
        "$(dirname "$PY")/torchrun" --standalone --nproc_per_node="$NPROC" -m chess_exp.model.train "$@"
    else
        "$PY" -m chess_exp.model.train "$@"
    fi
}
echo "gpu-check: $PRESET in bf16 (torch.compile: $COMPILE), $STEPS steps" >&2
launch "${common[@]}" --out "$OUT/bf16" --dtype=bfloat16 --compile="$COMPILE"
echo "gpu-check: float32 (TF32 matmuls), no compile, $STEPS steps" >&2
launch "${common[@]}" --out "$OUT/fp32" --dtype=float32 --compile=false

"$PY" - "$OUT" <<'EOF'
import json, statistics, sys
from pathlib import Path
import torch
out = Path(sys.argv[1])

def summary(run):
    records = [json.loads(line) for line in (out / run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    steady = train[1:] or train  # the first window holds the compilation
    evals = [r for r in records if r["kind"] == "eval"]
    mfu = [r["mfu"] for r in steady if r.get("mfu") is not None]
    return {"tok_per_s": statistics.median(r["tok_per_s"] for r in steady),
            "mfu": statistics.median(mfu) if mfu else None,
            "final_train_loss": train[-1]["loss"], "final_val_loss": evals[-1]["val_loss"],
            "train_losses": [(r["step"], r["loss"]) for r in train]}

bf16, fp32 = summary("bf16"), summary("fp32")
gaps = [abs(a - b) / b for (_, a), (_, b) in zip(bf16["train_losses"], fp32["train_losses"])]
result = {"gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (CPU dry run)", "torch": torch.__version__, "bf16": bf16, "fp32": fp32,
          "max_rel_train_loss_gap": max(gaps),
          "final_val_loss_rel_gap": abs(bf16["final_val_loss"] - fp32["final_val_loss"]) / fp32["final_val_loss"]}
(out / "summary.json").write_text(json.dumps(result, indent=2) + "\n")
fmt = lambda m: "n/a (unknown GPU peak: pass --peak_tflops)" if m is None else f"{100 * m:.1f}%"
print(f"GPU {result['gpu']}, torch {result['torch']}")
print(f"bf16:    {bf16['tok_per_s']:,.0f} tok/s, MFU {fmt(bf16['mfu'])}, final val loss {bf16['final_val_loss']:.4f}")
print(f"float32: {fp32['tok_per_s']:,.0f} tok/s, MFU {fmt(fp32['mfu'])}, final val loss {fp32['final_val_loss']:.4f}")
print(f"speed-up bf16/fp32: {bf16['tok_per_s'] / fp32['tok_per_s']:.2f}x; largest train-loss gap "
      f"{100 * result['max_rel_train_loss_gap']:.2f}%, final val-loss gap {100 * result['final_val_loss_rel_gap']:.2f}%")
ok = result["final_val_loss_rel_gap"] < 0.02 and abs(bf16["final_train_loss"] - fp32["final_train_loss"]) \
    / fp32["final_train_loss"] < 0.02
print("gpu-check: " + ("OK" if ok else "FAILED: bf16 and float32 losses differ by more than 2%"))
sys.exit(0 if ok else 1)
EOF
