"""Device choice and mixed precision. A device that was asked for but is absent is an
error, never a silent fallback."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from zoo.errors import InvalidInputError

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """'auto' → cuda, then mps, then cpu; 'cpu', 'cuda', 'cuda:1', 'mps' must exist."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InvalidInputError(f"unknown device '{name}' (use auto, cpu, cuda, cuda:N or mps)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InvalidInputError("device 'cuda' was asked for but no CUDA GPU is available")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise InvalidInputError(f"device '{name}' does not exist ({torch.cuda.device_count()} GPUs)")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise InvalidInputError("device 'mps' was asked for but MPS is not available")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise InvalidInputError(f"unsupported device '{name}' (use auto, cpu, cuda, cuda:N or mps)")
    return device


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """torch's global RNG seeded with `seed` inside; after it, every stream as it was before.
    `torch.manual_seed` seeds the GPUs' and MPS's generators too, so where they are in use
    theirs are restored as well, not only the CPU's (else each use would restart their noise)."""
    gpus = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with contextlib.ExitStack() as forks:
        forks.enter_context(torch.random.fork_rng(devices=gpus))
        if torch.backends.mps.is_available():
            forks.enter_context(torch.random.fork_rng(devices=[0], device_type="mps"))
        torch.manual_seed(seed)
        yield


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Autocast for 'bf16'/'fp16'; nothing for 'fp32'."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=_DTYPES[precision])


def check_speed_options(device: torch.device, channels_last: bool, compiled: bool) -> None:
    """Refuse speed options that torch cannot run together on `device`. Its compiler assumes
    a convolution's backward returns contiguous gradients, while cuda's and mps's return
    channels-last ones for channels-last inputs (pytorch/pytorch#171622; seen with torch 2.11
    on an H200), so such a run fails at its first step, deep inside the compiled code."""
    if channels_last and compiled and device.type in ("cuda", "mps"):
        raise InvalidInputError(
            f"train.channels_last and train.compile fail together on {device.type} (a torch compiler "
            "bug, pytorch/pytorch#171622): drop one of them, or train on the cpu (--device cpu)"
        )
