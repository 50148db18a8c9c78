"""chess_exp.model.train on synthetic prepared data: schedule, data order, CLI overrides, resume after
SIGKILL, DDP under torchrun (gloo, 2 processes)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from chess_exp.model.gpt import load_model
from chess_exp.model.train import (PRESETS, TrainConfig, get_batch, learning_rate, load_split, resolve_config,
                             step_rows, train, add_arguments)

REPO = Path(__file__).resolve().parents[3]
VOCAB = 24


def write_prepared(out: Path, n_games: int = 300, seed: int = 0) -> Path:
    """A prepared dir in the format of `chess prepare`: games from a noisy Markov chain on tokens
    2..VOCAB-1, each ``[0, ..., 1]`` (start and end tokens as in the move tokenizer)."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_games), ("val", max(20, n_games // 10))):
        tokens: list[int] = []
        offsets = []
        for _ in range(n):
            t = int(rng.integers(2, VOCAB))
            game = [0]
            for _ in range(int(rng.integers(5, 50))):
                game.append(t)
                t = 2 + (3 * t + int(rng.integers(0, 2))) % (VOCAB - 2)
            offsets.append(len(tokens))
            tokens.extend(game + [1])
        np.asarray(tokens, dtype=np.uint16).tofile(out / f"{split}.bin")
        np.save(out / f"{split}_offsets.npy", np.asarray(offsets, dtype=np.int64))
    (out / "meta.json").write_text(json.dumps({"tokenizer": "move", "vocab_size": VOCAB}))
    return out


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return write_prepared(tmp_path_factory.mktemp("prepared"))


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny(data_dir: Path, out: Path, **changes) -> TrainConfig:
    import dataclasses
    return dataclasses.replace(PRESETS["tiny"], data_dir=data_dir, out_dir=out, num_threads=1, **changes)


def records(run: Path, kind: str) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


def test_learning_rate_schedule():
    cfg = TrainConfig(learning_rate=1e-3, min_lr=1e-4, warmup_iters=10, max_iters=100)
    lrs = [learning_rate(cfg, s) for s in range(120)]
    assert lrs[0] > 0 and all(a < b for a, b in zip(lrs[:10], lrs[1:11]))  # warm-up rises
    assert max(lrs) == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))  # then decays
    assert lrs[100] == lrs[119] == pytest.approx(1e-4)


def test_data_order_is_a_function_of_seed_and_step(data_dir):
    split = load_split(data_dir, "train")
    starts = split.offsets[:-5]
    a = step_rows(starts, 3, 17, 8)
    assert np.array_equal(a, step_rows(starts, 3, 17, 8))
    assert not np.array_equal(a, step_rows(starts, 3, 18, 8))
    assert not np.array_equal(a, step_rows(starts, 4, 17, 8))
    x, y = get_batch(split, a, 16)
    assert x.shape == y.shape == (8, 16)
    assert (x[:, 0] == 0).all()  # every window starts at a game start
    assert torch.equal(x[:, 1:], y[:, :-1])


def test_weight_decay_on_matrices_only():
    from chess_exp.model.gpt import GPT
    model = GPT(PRESETS["tiny"].model)
    opt = model.configure_optimizers(0.1, 1e-3, (0.9, 0.95), "cpu")
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() == 2 for p in decay["params"]) and all(p.dim() == 1 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))
    assert opt.defaults["betas"] == (0.9, 0.95)


def test_cli_overrides_resolve_into_the_config(tmp_path):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args, extra = parser.parse_known_args(["--preset", "tiny", "--data", str(tmp_path), "--model.n_layer=3",
                                           "--max_iters=7"])
    args.overrides = extra
    cfg = resolve_config(args)
    assert cfg.model.n_layer == 3 and cfg.max_iters == 7 and cfg.data_dir == tmp_path
    assert cfg.out_dir == Path("runs/tiny")
    args.overrides = ["--model.n_layers=3"]
    with pytest.raises(ValueError, match="n_layers"):
        resolve_config(args)


def test_missing_data_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="prepare"):
        train(tiny(tmp_path, tmp_path / "run"))


def test_empty_validation_split_is_a_clear_error(data_dir, tmp_path):
    empty = tmp_path / "data"
    shutil.copytree(data_dir, empty)
    (empty / "val.bin").write_bytes(b"")
    with pytest.raises(ValueError, match="val split is empty"):
        train(tiny(empty, tmp_path / "run"))


def test_tiny_training_beats_the_unigram_baseline(data_dir, tmp_path):
    """Validation loss after 60 steps is below the entropy of the train unigram distribution."""
    run = train(tiny(data_dir, tmp_path / "run", max_iters=60, eval_interval=30))
    train_tokens = np.asarray(load_split(data_dir, "train").tokens)
    val_tokens = np.asarray(load_split(data_dir, "val").tokens)
    freq = np.bincount(train_tokens, minlength=VOCAB) + 1.0
    unigram = float(-np.log(freq / freq.sum())[val_tokens].mean())
    evals = records(run, "eval")
    assert [e["step"] for e in evals] == [0, 30, 60]
    assert evals[0]["val_loss"] > unigram  # untrained: about log(VOCAB)
    assert evals[-1]["val_loss"] < unigram - 0.3
    assert evals[-1]["val_move_acc"] > evals[0]["val_move_acc"]
    model, meta = load_model(run)
    assert meta["step"] == 60 and meta["tokenizer"] == "move" and meta["config"]["vocab_size"] == VOCAB
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["config"]["max_iters"] == 60 and cfg["commit"] is not None


def _cmd(data_dir: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "chess_exp.model.train", "--preset", "tiny", "--data", str(data_dir),
            "--out", str(out), "--num_threads=1", "--batch_size=32", "--max_iters=60",
            "--ckpt_interval=5", "--eval_interval=20", "--log_interval=1", *extra]


@pytest.mark.slow
def test_resume_after_sigkill_reproduces_the_uninterrupted_losses(data_dir, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    full = tmp_path / "full"
    subprocess.run(_cmd(data_dir, full), check=True, env=env, capture_output=True, cwd=REPO)

    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cmd(data_dir, killed), env=env, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = killed / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline:
        done = [r for r in (json.loads(x) for x in metrics.read_text().splitlines()[:-1]) if "loss" in r] \
            if metrics.exists() else []
        if done and done[-1]["step"] >= 13:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    last_step = max(r["step"] for r in map(json.loads, metrics.read_text().splitlines()[:-1]))
    assert last_step < 60

    out = subprocess.run(_cmd(data_dir, killed), check=True, env=env, capture_output=True, text=True,
                         cwd=REPO)
    resumed_from = int(out.stderr.split("from step ")[1].split()[0])
    assert 10 <= resumed_from < 60 and resumed_from % 5 == 0
    for kind, key in (("train", "loss"), ("eval", "val_loss")):
        a = [(r["step"], r[key]) for r in records(full, kind)]
        b = [(r["step"], r[key]) for r in records(killed, kind)]
        assert a == b  # exactly: same data, same arithmetic
    assert len(records(full, "train")) == 60


@pytest.mark.long
def test_ddp_two_processes_match_one_process_with_the_same_global_batch(data_dir, tmp_path):
    """torchrun, gloo, 2 CPU processes, no accumulation flag: the global batch (16) is split 8 + 8 and
    the losses and weights equal one process's on the same 16 sequences."""
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    common = ["--preset", "tiny", "--data", str(data_dir), "--num_threads=1", "--batch_size=16",
              "--max_iters=8", "--eval_interval=4", "--log_interval=1"]
    subprocess.run([torchrun, "--standalone", "--nproc_per_node=2", "-m", "chess_exp.model.train", *common,
                    "--out", str(tmp_path / "ddp")], check=True, env=env, capture_output=True, cwd=REPO)
    subprocess.run([sys.executable, "-m", "chess_exp.model.train", *common, "--out", str(tmp_path / "one")],
                   check=True, env=env, capture_output=True, cwd=REPO)
    ddp = [(r["step"], r["loss"]) for r in records(tmp_path / "ddp", "train")]
    one = [(r["step"], r["loss"]) for r in records(tmp_path / "one", "train")]
    assert [s for s, _ in ddp] == list(range(1, 9))
    np.testing.assert_allclose([l for _, l in ddp], [l for _, l in one], rtol=1e-5)
    ddp_eval = [r["val_loss"] for r in records(tmp_path / "ddp", "eval")]
    np.testing.assert_allclose(ddp_eval, [r["val_loss"] for r in records(tmp_path / "one", "eval")], rtol=1e-5)
    assert json.loads((tmp_path / "ddp" / "config.json").read_text())["world_size"] == 2
    m_ddp, _ = load_model(tmp_path / "ddp")
    m_one, _ = load_model(tmp_path / "one")
    for a, b in zip(m_ddp.parameters(), m_one.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_micro_batches_sum_to_the_global_batch_gradient(data_dir):
    """In-process stand-in for the DDP test (cheap, in `make test`): accumulating 3 uneven micro-batches
    (16 = 6 + 5 + 5) gives the same loss and the same weights after 3 steps as one batch of 16."""
    import dataclasses
    from chess_exp.model.train import build_run, train_step
    results = []
    for micro in (0, 6):
        cfg = tiny(data_dir, Path("unused"), batch_size=16, micro_batch_size=micro, resume=False)
        run = build_run(cfg, torch.device("cpu"), 0, 1)
        assert run.plan.micro == ((16,) if micro == 0 else (6, 5, 5))
        losses = [train_step(run)[0] for _ in range(3)]
        results.append((losses, [p.detach().clone() for p in run.model.parameters()]))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-5)
    for a, b in zip(results[0][1], results[1][1]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_bf16_training_matches_float32_loss(data_dir, tmp_path):
    """On a GPU, bf16 autocast training follows the float32 run closely (same data, same init)."""
    bf16 = train(tiny(data_dir, tmp_path / "bf16", device="cuda", dtype="bfloat16", max_iters=20))
    fp32 = train(tiny(data_dir, tmp_path / "fp32", device="cuda", dtype="float32", max_iters=20))
    a = [r["loss"] for r in records(bf16, "train")]
    b = [r["loss"] for r in records(fp32, "train")]
    np.testing.assert_allclose(a, b, rtol=0.05)
