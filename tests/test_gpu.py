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


def test_cuda_resume_equals_an_uninterrupted_run(tmp_path, small_cfg, monkeypatch):
    """A CUDA run interrupted during its second level and resumed gives the uninterrupted run's masks and
    numbers (same seeded streams; CUDA kernels may round differently, hence allclose on floats)."""
    from conftest import record_interrupted, tensors

    path = tmp_path / "resumed.h5"
    record_interrupted(small_cfg, path, monkeypatch, stop_at=1, device="cuda")
    assert rgnet.open_run(path).sizes["level"] == 1
    rgnet.record(small_cfg, path, device="cuda", progress=False)
    whole = rgnet.record(small_cfg, tmp_path / "whole.h5", device="cuda", progress=False)
    a, b = rgnet.open_run(path), rgnet.open_run(whole)
    assert a.sizes["level"] == b.sizes["level"] == 4
    np.testing.assert_array_equal(a.layer_count, b.layer_count)
    np.testing.assert_allclose(a.val_loss, b.val_loss, rtol=1e-5)
    ma, mb = tensors(path, "mask"), tensors(whole, "mask")
    for name in ma:
        np.testing.assert_array_equal(ma[name], mb[name])


def test_data_order_is_the_same_on_cuda():
    from rgnet.engine.seeds import epoch_permutation, stream_seed

    streams = torch.tensor([stream_seed(k, "data", 1, "trunk") for k in range(8)])
    for epoch in (0, 17):
        assert torch.equal(epoch_permutation(streams, epoch, 4000),
                           epoch_permutation(streams.cuda(), epoch, 4000, device="cuda").cpu())
