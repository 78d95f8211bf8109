"""The machine that computes a run, as recorded in its files (:mod:`rgnet.store.provenance` formats and reads it).

What can change a run's numbers at equal run_id and library versions: the CPU (its SIMD kernels), torch's BLAS,
LAPACK and threading backend, the intra-op thread count, the device, and the environment variables that steer
them. Everything is read from what is already loaded (torch, numpy), without new dependencies.
"""

from __future__ import annotations

import functools
import os
import platform
import re

import numpy as np
import torch

from rgnet.store.provenance import rgnet_version

# environment variables that change which kernels run or how many threads they use
_ENVIRONMENT = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_CBWR", "ATEN_CPU_CAPABILITY",
                "CUBLAS_WORKSPACE_CONFIG")


def machine(device: torch.device | str = "cpu", threads: int | None = None) -> dict:
    """The provenance record of work done now on ``device`` with ``threads`` intra-op threads (default: torch's
    current setting): CPU, torch and its BLAS/LAPACK, numpy's BLAS, threads, device (GPU name), python, platform."""
    dev = torch.device(device)
    record = dict(_static())
    record.update(threads=int(threads if threads is not None else torch.get_num_threads()),
                  interop_threads=torch.get_num_interop_threads(),
                  deterministic=torch.are_deterministic_algorithms_enabled(),
                  environment={k: os.environ[k] for k in _ENVIRONMENT if k in os.environ})
    if dev.type == "cuda":
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        record.update(device=f"cuda:{index}", gpu=torch.cuda.get_device_name(index), cuda=torch.version.cuda,
                      cudnn=torch.backends.cudnn.version())
    else:
        record["device"] = str(dev)
    return record


@functools.lru_cache(maxsize=1)
def _static() -> tuple[tuple[str, object], ...]:
    """What does not change within a process (read once: ``torch.__config__.show()`` takes milliseconds)."""
    config = torch.__config__.show()
    build = dict(re.findall(r"\b(BLAS_INFO|LAPACK_INFO)=(\w+)", config))
    backend = re.search(r"ATen parallel backend: (\S+)", torch.__config__.parallel_info())
    return tuple({
        "rgnet": rgnet_version(), "python": platform.python_version(), "platform": platform.platform(),
        "machine": platform.machine(), "cpu": _cpu_model(), "cpu_count": os.cpu_count(),
        "cpu_capability": _cpu_capability(), "torch": torch.__version__, "torch_blas": build.get("BLAS_INFO"),
        "torch_lapack": build.get("LAPACK_INFO"), "torch_parallel": backend.group(1) if backend else None,
        "mkl": torch.backends.mkl.is_available(), "mkldnn": torch.backends.mkldnn.is_available(),
        "openmp": torch.backends.openmp.is_available(), "numpy": np.__version__, "numpy_blas": _numpy_blas(),
    }.items())


def _cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux, else what ``platform`` knows)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "cpu model", "Hardware") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _cpu_capability() -> str | None:
    try:
        return torch.backends.cpu.get_cpu_capability()
    except (AttributeError, RuntimeError):  # torch before 2.1
        return None


def _numpy_blas() -> str | None:
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    except Exception:  # numpy before 1.25 prints its config instead; only informative
        return None
    return " ".join(str(blas[k]) for k in ("name", "version") if blas.get(k)) or None
