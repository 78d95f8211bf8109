"""Every random stream derives from (seed, level, branch), so resuming needs no saved RNG state."""

from __future__ import annotations

import hashlib

import torch


def stream_seed(seed: int, *keys: object) -> int:
    """A 63-bit seed for the stream named by ``keys`` (e.g. ``("data", level, "trunk")``)."""
    blob = repr((int(seed), *keys)).encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:8], "little") >> 1


def generator(seed: int, *keys: object) -> torch.Generator:
    """A CPU ``torch.Generator`` for the named stream (CPU so that CPU and GPU runs draw the same numbers)."""
    return torch.Generator().manual_seed(stream_seed(seed, *keys))
