"""Every random stream derives from (seed, level, branch), so resuming needs no saved RNG state.

The data order is a counter-based stream: the order of the training examples in epoch ``e`` of a stream is
the argsort of integer hashes of (stream, e, example index). Integer arithmetic is exact on every device, so
the order is the same on CPU and GPU, for a run trained alone or in a stack, and any epoch can be generated
where it is needed without replaying the ones before it.
"""

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


# odd multipliers below 2**31: a 32-bit value times one of them stays below 2**63, so int64 never overflows
_MULTIPLIERS = (0x7FEB352D, 0x2C1B3C6D, 0x297A2D39)
_MASK32 = 0xFFFFFFFF


def _mix32(x):
    """A 32-bit integer hash (xorshift-multiply rounds); works alike on Python ints and int64 tensors."""
    for m in _MULTIPLIERS:
        x = x ^ (x >> 16)
        x = (x * m) & _MASK32
    return x ^ (x >> 15)


def epoch_permutation(stream: int | torch.Tensor, epoch: int, n: int, device=None) -> torch.Tensor:
    """The order of ``n`` examples in ``epoch`` of a data ``stream`` (from :func:`stream_seed`).

    ``stream`` may be a tensor of shape ``(K,)`` (K runs at once); the result then has shape ``(K, n)``.
    """
    s = torch.as_tensor(stream, dtype=torch.int64, device=device)
    lo, hi = s & _MASK32, (s >> 32) & _MASK32
    key1 = _mix32(lo ^ _mix32(hi ^ _mix32(torch.as_tensor(epoch, dtype=torch.int64, device=device) & _MASK32)))
    key2 = _mix32(key1 ^ 0x9E3779B9)
    i = torch.arange(n, dtype=torch.int64, device=s.device)
    k1, k2 = _mix32(i ^ key1[..., None]), _mix32(i ^ key2[..., None])
    return torch.argsort((k1 << 31) | (k2 >> 1), dim=-1, stable=True)  # ties (rare) fall back to index order
