"""Checks that need a CUDA GPU (run with `python -m pytest -m gpu`); skipped elsewhere."""

import numpy as np
import pytest
import torch

import rgnet

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_record_on_cuda_matches_cpu_closely(tmp_path, small_cfg):
    gpu = rgnet.open_run(rgnet.record(small_cfg, tmp_path / "gpu.h5", device="cuda", progress=False))
    cpu = rgnet.open_run(rgnet.record(small_cfg, tmp_path / "cpu.h5", device="cpu", progress=False))
    # same init, same data order (seeded CPU streams); float results differ only by kernel rounding
    np.testing.assert_allclose(gpu.val_loss.isel(level=0), cpu.val_loss.isel(level=0), rtol=1e-2)
    np.testing.assert_allclose(gpu.density, cpu.density)
    masks, trained = rgnet.open_tensors(tmp_path / "gpu.h5", "mask"), rgnet.open_tensors(tmp_path / "gpu.h5", "trained")
    for layer in gpu.layer.values:
        assert (trained[f"{layer}.weight"].values[masks[layer].values == 0] == 0).all()


def test_cuda_resume(tmp_path, small_cfg):
    path = tmp_path / "run.h5"
    rgnet.record(small_cfg.replace(prune={"levels": 1}), tmp_path / "short.h5", device="cuda", progress=False)
    rgnet.record(small_cfg, path, device="cuda", progress=False)
    assert rgnet.open_run(path).sizes["level"] == 4
