"""Checkpoints: saving, naming, loading (ours and the peers'), and weights-only export.

One loader, :func:`load_checkpoint`, serves every command that reads a model. It accepts

- a checkpoint written by ``chess_exp.model.train`` (``{model, optimizer, step, config, tokenizer,
  train_config, ...}``), a run directory holding one (``checkpoints/ckpt.pt``), or a step-numbered
  copy (``checkpoints/ckpt-0005000.pt``);
- a nanoGPT-style checkpoint as written by nanoGPT, the paper's training code and Karvonen's chess
  GPT (``{model, model_args, iter_num, config, ...}``, parameter names possibly prefixed
  ``_orig_mod.`` by ``torch.compile`` or ``module.`` by DDP). These carry no tokenizer: it defaults
  to ``char``, the paper's 32-character vocabulary and ``;1.e4 e5 2.Nf3`` transcript format, and
  the step is ``iter_num``;
- a weights-only export (:func:`export_weights`): ``.safetensors`` (needs the optional
  ``safetensors`` package) or a torch file with only tensors and plain metadata.

Every file is read with ``torch.load(weights_only=True)``: tensors and plain containers only, so a
checkpoint from elsewhere cannot run code while it is read. ``tokenizer=`` and ``step=`` override
what the file says (the ``--tokenizer`` / ``--step`` flags of the commands).

Files this module writes are atomic (:mod:`transcendence.io`): a reader never sees half a file.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from chess_exp.model.gpt import GPT, GPTConfig
from transcendence.config import config_to_dict
from transcendence.io import atomic_open

__all__ = ["LoadedModel", "load_checkpoint", "load_model", "read_checkpoint_step", "save_checkpoint",
           "load_training_state", "checkpoint_path", "step_checkpoint_path", "step_checkpoints", "keep_step_copy",
           "export_weights", "PEER_TOKENIZER"]

#: the tokenizer of checkpoints that do not name one (nanoGPT, the paper's code, Karvonen's chess GPT)
PEER_TOKENIZER = "char"
_STEP_NAME = re.compile(r"^ckpt-(\d+)\.pt$")


def checkpoint_path(out_dir: str | os.PathLike[str]) -> Path:
    """The run's latest checkpoint: ``out_dir/checkpoints/ckpt.pt``."""
    return Path(out_dir) / "checkpoints" / "ckpt.pt"


def step_checkpoint_path(out_dir: str | os.PathLike[str], step: int) -> Path:
    """The kept copy of step ``step``: ``out_dir/checkpoints/ckpt-0005000.pt``."""
    return Path(out_dir) / "checkpoints" / f"ckpt-{step:07d}.pt"


def step_checkpoints(out_dir: str | os.PathLike[str]) -> dict[int, Path]:
    """The run's step-numbered checkpoints, ``{step: path}`` in step order."""
    folder = Path(out_dir) / "checkpoints"
    found = {}
    if folder.is_dir():
        for p in folder.iterdir():
            m = _STEP_NAME.match(p.name)
            if m:
                found[int(m.group(1))] = p
    return dict(sorted(found.items()))


def save_checkpoint(path: str | os.PathLike[str], model: GPT, optimizer: torch.optim.Optimizer | None,
                    step: int, train_config: Any, tokenizer: str,
                    extra: dict[str, Any] | None = None) -> None:
    """Write a training checkpoint atomically (temporary file, fsync, rename)."""
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "step": int(step),  # optimizer steps completed
        "config": dataclasses.asdict(model.config),
        "train_config": config_to_dict(train_config) if dataclasses.is_dataclass(train_config) else train_config,
        "tokenizer": tokenizer,
        **(extra or {}),
    }
    with atomic_open(path, "wb") as fh:
        torch.save(state, fh)


def keep_step_copy(latest: str | os.PathLike[str], out_dir: str | os.PathLike[str], step: int) -> Path:
    """Keep the checkpoint just written at ``latest`` as ``ckpt-<step>.pt`` (a hard link when possible)."""
    dest = step_checkpoint_path(out_dir, step)
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(latest, tmp)
    except OSError:
        shutil.copyfile(latest, tmp)
    os.replace(tmp, dest)
    return dest


# ----------------------------------------------------------------------------- loading

@dataclass
class LoadedModel:
    """What :func:`load_checkpoint` returns."""

    model: GPT  # in eval mode, on the requested device
    tokenizer: str  # tokenizer name ("char" or "move")
    step: int | None  # optimizer steps the weights were trained for (None if the file does not say)
    meta: dict[str, Any]  # everything else: "config", "path", "format", "train_config", ...


def _resolve_file(path: Path) -> Path:
    if path.is_dir():
        for candidate in (path / "checkpoints" / "ckpt.pt", path / "ckpt.pt"):
            if candidate.exists():
                return candidate
        raise ValueError(f"no checkpoint in {path}: expected checkpoints/ckpt.pt (written by "
                         "`transcendence chess train`) or ckpt.pt")
    if not path.exists():
        raise ValueError(f"checkpoint {path} does not exist")
    return path


def _torch_load(path: Path, device: str | torch.device) -> Any:
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if not (magic.startswith(b"PK") or magic[:1] == b"\x80"):  # a zip archive, or a legacy pickle
        raise ValueError(f"{path} is not a torch checkpoint (it starts with {magic!r}); pass a file "
                         "written by `transcendence chess train`, a run directory, or a nanoGPT ckpt.pt")
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc) or type(exc).__name__
        if "unsupported global" in text.lower():
            raise ValueError(f"checkpoint {path} holds Python objects besides tensors; it is not loaded "
                             "since that could run code. Re-save it with plain containers "
                             "(torch.save({'model': state_dict, 'model_args': {...}}, ...))") from None
        raise ValueError(f"{path} is not a torch checkpoint ({text.splitlines()[0][:120]}); pass a file "
                         "written by `transcendence chess train` or a run directory") from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        first = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise ValueError(f"checkpoint {path} cannot be read ({first}): the file is truncated or is not "
                         "a torch checkpoint; restore it, or use a step-numbered copy in the same "
                         "folder") from None


def _load_safetensors(path: Path, device: str | torch.device) -> dict[str, Any]:
    try:
        from safetensors import safe_open
        from safetensors.torch import load_file
    except ImportError:
        raise ValueError(f"{path}: reading .safetensors needs the safetensors package: "
                         "pip install 'transcendence[export]'") from None
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
        state = load_file(str(path), device=str(device))
    except Exception as exc:  # the library raises its own error types for damaged files
        raise ValueError(f"checkpoint {path} cannot be read as safetensors ({exc})") from None
    if "config" not in header:
        raise ValueError(f"{path} has no 'config' metadata; export it with `transcendence chess train "
                         "--export`")
    step = header.get("step")
    return {"model": state, "config": json.loads(header["config"]), "tokenizer": header.get("tokenizer"),
            "step": int(step) if step not in (None, "", "None") else None, "format": "safetensors"}


def _clean_state(state: dict[str, Any], model: GPT) -> dict[str, torch.Tensor]:
    """Strip ``_orig_mod.`` / ``module.`` prefixes, drop nanoGPT's causal-mask buffers, re-tie."""
    clean = {}
    for key, value in state.items():
        while key.startswith(("_orig_mod.", "module.")):
            key = key.removeprefix("_orig_mod.").removeprefix("module.")
        clean[key] = value
    wanted = set(model.state_dict())
    for key in list(clean):
        if key not in wanted and key.endswith((".attn.bias", ".attn.masked_bias")):
            del clean[key]  # nanoGPT's registered causal mask, not a parameter
    if "lm_head.weight" not in clean and "transformer.wte.weight" in clean:
        clean["lm_head.weight"] = clean["transformer.wte.weight"]  # tied: stored once
    if "transformer.wte.weight" not in clean and "lm_head.weight" in clean:
        clean["transformer.wte.weight"] = clean["lm_head.weight"]
    return clean


def load_checkpoint(path: str | os.PathLike[str], device: str | torch.device = "cpu", *,
                    tokenizer: str | None = None, step: int | None = None) -> LoadedModel:
    """Load any checkpoint this project reads (see the module docstring) as a model in eval mode.

    ``tokenizer`` and ``step`` override the file's (a nanoGPT file has no tokenizer: ``char``).
    Raises ``ValueError`` with a one-line reason for anything that is not a readable checkpoint.
    """
    from chess_exp.data.tokenizers import get_tokenizer

    file = _resolve_file(Path(path))
    device = resolve_device(device)
    if file.suffix == ".safetensors":
        ckpt: Any = _load_safetensors(file, device)
    else:
        ckpt = _torch_load(file, device)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict):
        raise ValueError(f"{file} is not a model checkpoint: expected a dict with the weights under 'model' "
                         "and the shape under 'config' (ours) or 'model_args' (nanoGPT)")
    names = {f.name for f in dataclasses.fields(GPTConfig)}
    if isinstance(ckpt.get("model_args"), dict):  # nanoGPT, the paper's code, Karvonen's chess GPT
        fmt, shape = "nanogpt", ckpt["model_args"]
        file_tokenizer, file_step = ckpt.get("tokenizer"), ckpt.get("iter_num")
    elif isinstance(ckpt.get("config"), dict):
        fmt, shape = ckpt.get("format", "transcendence"), ckpt["config"]
        file_tokenizer, file_step = ckpt.get("tokenizer"), ckpt.get("step")
    else:
        raise ValueError(f"{file} has no model shape: expected 'config' (ours) or 'model_args' (nanoGPT)")
    try:
        config = GPTConfig(**{k: v for k, v in shape.items() if k in names})
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{file}: the model shape {shape} is not a GPT this project builds ({exc})") from None
    name = tokenizer or (file_tokenizer if isinstance(file_tokenizer, str) else None) or PEER_TOKENIZER
    tok = get_tokenizer(name)  # ValueError naming the choices
    if name != file_tokenizer and config.vocab_size < tok.vocab_size:  # a default or an override
        raise ValueError(f"{file}: the model has {config.vocab_size} token ids but tokenizer {name!r} needs "
                         f"{tok.vocab_size}; pass the tokenizer it was trained with (--tokenizer)")
    model = GPT(config)
    state = _clean_state(ckpt["model"], model)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"{file}: the weights do not fit the model {config}: "
                         f"{str(exc).splitlines()[0][:200]}") from None
    model.to(device).eval()
    if step is None and file_step is not None:
        step = int(file_step)
    meta = {k: v for k, v in ckpt.items() if k not in ("model", "optimizer", "model_args")}
    meta.update(config=dataclasses.asdict(config), tokenizer=name, step=step, path=str(file), format=fmt)
    return LoadedModel(model=model, tokenizer=name, step=step, meta=meta)


def load_model(path: str | os.PathLike[str], device: str | torch.device = "cpu", *,
               tokenizer: str | None = None, step: int | None = None) -> tuple[GPT, dict[str, Any]]:
    """:func:`load_checkpoint` as ``(model, meta)``; ``meta`` always has "tokenizer", "step", "config"."""
    loaded = load_checkpoint(path, device, tokenizer=tokenizer, step=step)
    return loaded.model, loaded.meta


def load_training_state(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> dict[str, Any]:
    """The raw dict of a training checkpoint (weights, optimizer, step, ...), read weights-only."""
    file = _resolve_file(Path(path))
    ckpt = _torch_load(file, device)
    if not isinstance(ckpt, dict) or not {"model", "config", "step"} <= set(ckpt):
        raise ValueError(f"{file} is not a training checkpoint of this project (no model/config/step); "
                         "use another --out or --resume=false")
    return ckpt


def read_checkpoint_step(path: str | os.PathLike[str]) -> int | None:
    """The step a checkpoint file records (``step`` or nanoGPT's ``iter_num``), without building the model."""
    file = _resolve_file(Path(path))
    if file.suffix == ".safetensors":
        return _load_safetensors(file, "cpu")["step"]
    ckpt = _torch_load(file, "cpu")
    value = ckpt.get("step", ckpt.get("iter_num")) if isinstance(ckpt, dict) else None
    return None if value is None else int(value)


def resolve_device(device: str | torch.device) -> torch.device:
    """``device`` as a torch device that is usable here (``"auto"``: CUDA when present, else CPU);
    ValueError naming ``--device`` otherwise."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"--device={device!r} is not a torch device; use cpu, cuda, cuda:1, mps, auto") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device={device}: no CUDA device is usable here (torch {torch.__version__}); "
                         "use --device=cpu or --device=auto")
    if dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ValueError(f"--device={device}: MPS is not available here; use --device=cpu")
    return dev


# ----------------------------------------------------------------------------- export

def export_weights(source: str | os.PathLike[str], dest: str | os.PathLike[str]) -> Path:
    """Write the weights of ``source`` (any checkpoint :func:`load_checkpoint` reads) for sharing.

    ``dest`` ending in ``.safetensors``: the safetensors format (no code can run when it is read;
    needs ``pip install 'transcendence[export]'``), the tied output matrix stored once, with the
    shape, tokenizer and step as metadata. Any other name: a torch file holding only tensors and
    plain values (``{model, config, tokenizer, step, format}``), readable with
    ``torch.load(weights_only=True)``. No optimizer state either way.
    """
    loaded = load_checkpoint(source)
    dest = Path(dest)
    config = dataclasses.asdict(loaded.model.config)
    state = {k: v.detach().cpu().contiguous() for k, v in loaded.model.state_dict().items()}
    if dest.suffix == ".safetensors":
        try:
            from safetensors.torch import save as st_save
        except ImportError:
            raise ValueError(f"--export {dest}: writing .safetensors needs the safetensors package: "
                             "pip install 'transcendence[export]' (or export to a .pt name)") from None
        state.pop("lm_head.weight")  # tied to transformer.wte.weight; the loader re-ties it
        data = st_save(state, metadata={"format": "transcendence-gpt", "config": json.dumps(config),
                                        "tokenizer": loaded.tokenizer, "step": str(loaded.step)})
        with atomic_open(dest, "wb") as fh:
            fh.write(data)
    else:
        with atomic_open(dest, "wb") as fh:
            torch.save({"model": state, "config": config, "tokenizer": loaded.tokenizer,
                        "step": loaded.step, "format": "weights"}, fh)
    return dest
