"""Training throughput of chess_exp.model.gpt.GPT, as a ratio against torch.nn.TransformerEncoder.

CPU (always): tokens/s of one full training step (forward, backward, AdamW step) of our GPT and
of a baseline of the same size built from ``torch.nn.TransformerEncoder`` (pre-LN, GELU, no
biases, 4x MLP, causal mask, learned positions, tied head), measured in the same process,
alternating between the two, median of the repeats. Target: ratio >= 1.

GPU (when CUDA is present): tokens/s and model FLOPs utilisation (MFU) of ``paper_50m`` in bf16
autocast with ``torch.compile``, FLOPs per token from PaLM's 6N + 12·L·T·C, against the peak bf16
dense throughput given by ``--peak-tflops`` (989 for an H100 SXM). Target: MFU >= 40%.

    python benchmarks/train.py                       # CPU ratio at the small_cpu shape
    python benchmarks/train.py --shape paper_50m --batch 2 --repeats 3
    python benchmarks/train.py --gpu                 # also the GPU part (needs CUDA)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from chess_exp.model.gpt import GPT, GPTConfig  # noqa: E402
from chess_exp.model.train import PRESETS  # noqa: E402


class EncoderLM(nn.Module):
    """The baseline: the same network built from torch.nn.TransformerEncoder."""

    def __init__(self, c: GPTConfig) -> None:
        super().__init__()
        self.wte = nn.Embedding(c.vocab_size, c.n_embd)
        self.wpe = nn.Embedding(c.block_size, c.n_embd)
        layer = nn.TransformerEncoderLayer(c.n_embd, c.n_head, dim_feedforward=4 * c.n_embd, dropout=0.0,
                                           activation="gelu", batch_first=True, norm_first=True, bias=False)
        self.encoder = nn.TransformerEncoder(layer, c.n_layer, norm=nn.LayerNorm(c.n_embd, bias=False),
                                             enable_nested_tensor=False)
        self.head = nn.Linear(c.n_embd, c.vocab_size, bias=False)
        self.head.weight = self.wte.weight

    def forward(self, idx: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        T = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))
        mask = nn.Transformer.generate_square_subsequent_mask(T, device=idx.device)
        x = self.encoder(x, mask=mask, is_causal=True)
        logits = self.head(x)
        return logits, F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


def _step_time(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
               autocast, sync) -> float:
    t = time.perf_counter()
    with autocast():
        _, loss = model(x, y)
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    sync()
    return time.perf_counter() - t


def cpu_ratio(c: GPTConfig, batch: int, repeats: int, warmup: int) -> dict:
    torch.manual_seed(0)
    ours, base = GPT(c), EncoderLM(c)
    n_ours = ours.num_params()
    n_base = sum(p.numel() for p in base.parameters())
    opts = {"gpt": torch.optim.AdamW(ours.parameters(), lr=1e-4, betas=(0.9, 0.95)),
            "encoder": torch.optim.AdamW(base.parameters(), lr=1e-4, betas=(0.9, 0.95))}
    models = {"gpt": ours, "encoder": base}
    x = torch.randint(0, c.vocab_size, (batch, c.block_size))
    y = torch.randint(0, c.vocab_size, (batch, c.block_size))
    null = torch.autocast("cpu", enabled=False)
    times: dict[str, list[float]] = {"gpt": [], "encoder": []}
    for i in range(warmup + repeats):
        for name in ("gpt", "encoder") if i % 2 == 0 else ("encoder", "gpt"):  # alternate the order
            dt = _step_time(models[name], opts[name], x, y, lambda: null, lambda: None)
            if i >= warmup:
                times[name].append(dt)
    tokens = batch * c.block_size
    rate = {k: tokens / statistics.median(v) for k, v in times.items()}
    return {"shape": c.__dict__, "batch": batch, "threads": torch.get_num_threads(),
            "params_gpt": n_ours, "params_encoder": n_base,
            "tok_per_s_gpt": rate["gpt"], "tok_per_s_encoder": rate["encoder"],
            "ratio": rate["gpt"] / rate["encoder"], "repeats": repeats}


def gpu_mfu(batch: int, repeats: int, warmup: int, peak_tflops: float, compile: bool) -> dict:
    c = PRESETS["paper_50m"].model
    device = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.manual_seed(0)
    model = GPT(c).to(device)
    opt = model.configure_optimizers(0.1, 3e-4, (0.9, 0.95), "cuda")
    fwd = torch.compile(model) if compile else model
    x = torch.randint(0, c.vocab_size, (batch, c.block_size), device=device)
    y = torch.randint(0, c.vocab_size, (batch, c.block_size), device=device)
    times = []
    for i in range(warmup + repeats):
        dt = _step_time(fwd, opt, x, y, lambda: torch.autocast("cuda", dtype=torch.bfloat16),
                        torch.cuda.synchronize)
        if i >= warmup:
            times.append(dt)
    rate = batch * c.block_size / statistics.median(times)
    mfu = rate * model.flops_per_token() / (peak_tflops * 1e12)
    return {"device": torch.cuda.get_device_name(), "batch": batch, "compile": compile,
            "tok_per_s": rate, "flops_per_token": model.flops_per_token(), "peak_tflops": peak_tflops,
            "mfu": mfu}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shape", choices=sorted(PRESETS), default="small_cpu", help="model shape for the CPU part")
    p.add_argument("--batch", type=int, default=8, help="sequences per step (CPU part)")
    p.add_argument("--repeats", type=int, default=10, help="timed steps per model")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per model")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    p.add_argument("--gpu", action="store_true", help="also measure paper_50m on CUDA")
    p.add_argument("--gpu-batch", type=int, default=32, help="sequences per step on the GPU")
    p.add_argument("--peak-tflops", type=float, default=989.0, help="peak bf16 dense TFLOP/s of the GPU")
    p.add_argument("--no-compile", action="store_true", help="GPU part without torch.compile")
    p.add_argument("--out", type=Path, help="write the results as JSON here")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    shape = PRESETS[args.shape].model
    shape = GPTConfig(**{**shape.__dict__, "dropout": 0.0})
    result = {"cpu": cpu_ratio(shape, args.batch, args.repeats, args.warmup)}
    cpu = result["cpu"]
    print(f"CPU ({cpu['threads']} threads), {args.shape} shape, batch {args.batch} x {shape.block_size}: "
          f"GPT {cpu['tok_per_s_gpt']:,.0f} tok/s, TransformerEncoder {cpu['tok_per_s_encoder']:,.0f} tok/s, "
          f"ratio {cpu['ratio']:.2f}x (target >= 1)")
    if args.gpu:
        if not torch.cuda.is_available():
            print("GPU part: no CUDA device here; not measured", file=sys.stderr)
            result["gpu"] = None
        else:
            result["gpu"] = gpu_mfu(args.gpu_batch, args.repeats, max(args.warmup, 3), args.peak_tflops,
                                    not args.no_compile)
            g = result["gpu"]
            print(f"GPU {g['device']}: paper_50m bf16{' compiled' if g['compile'] else ''}, batch "
                  f"{g['batch']} x 1023: {g['tok_per_s']:,.0f} tok/s, MFU {100 * g['mfu']:.1f}% "
                  f"(of {g['peak_tflops']:.0f} TFLOP/s; target >= 40%)")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
