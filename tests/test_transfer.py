"""Ticket export and transfer: what moves, what is re-initialised, what is refused."""

import h5netcdf
import numpy as np
import pytest
import xarray as xr
from conftest import small_config, tensors

import rgnet
from rgnet.cli import main
from rgnet.errors import ConfigError, StoreError
from rgnet.imp.tickets import load_ticket, read_ticket, ticket_from_run, write_ticket
from rgnet.imp.transfer import target_config, transfer


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return rgnet.record(small_config(), tmp_path_factory.mktemp("src") / "source.h5", progress=False)


@pytest.fixture(scope="module")
def five_class_target(tmp_path_factory, source):
    cfg = target_config(source, "teacher", {"classes": 5})
    return rgnet.record(cfg, tmp_path_factory.mktemp("tgt") / "teacher5.h5", progress=False)


def _group(path, group):
    with h5netcdf.File(path, "r") as f:
        return {k: np.asarray(v[...]) for k, v in f[group].variables.items()}


def test_exported_ticket_is_mask_times_rewind_weights(source, tmp_path):
    out = write_ticket(ticket_from_run(source, 2), tmp_path / "ticket.h5")
    masks, weights = _group(out, "mask"), _group(out, "weights")
    run_masks, rewind = tensors(source, "mask"), tensors(source, "rewind")
    for layer in ("fc1", "fc2", "fc3"):
        np.testing.assert_array_equal(masks[layer], run_masks[layer][2])
        np.testing.assert_array_equal(weights[f"{layer}.weight"], run_masks[layer][2] * rewind[f"{layer}.weight"])
        np.testing.assert_array_equal(weights[f"{layer}.bias"], rewind[f"{layer}.bias"])
        assert (weights[f"{layer}.weight"][masks[layer] == 0] == 0).all()
    t = read_ticket(out)
    assert t.level == 2 and t.run_id == xr.open_dataset(source, engine="h5netcdf").attrs["run_id"]
    np.testing.assert_allclose(t.density, float(rgnet.open_run(source).density[2]))
    with pytest.raises(StoreError, match="already exists"):  # replaced only with overwrite=True
        write_ticket(t, out)
    with pytest.raises(StoreError, match="not one of them"):
        ticket_from_run(source, 9)


def test_transfer_with_a_class_count_change(source, five_class_target):
    group = transfer(source, five_class_target, [1, 2], progress=False)
    tree = rgnet.open_tree(five_class_target)
    b = tree[group]
    assert b.attrs["source_run_id"] == xr.open_dataset(source, engine="h5netcdf").attrs["run_id"]
    assert np.isnan(b.test_acc.values[[0, 3]]).all() and np.isfinite(b.test_acc.values[1:3]).all()
    start = tensors(five_class_target, "rewind", group)
    src_rewind, tgt_init = tensors(source, "rewind"), tensors(five_class_target, "init")
    np.testing.assert_array_equal(start["fc1.weight"], src_rewind["fc1.weight"])   # the ticket's weights move
    np.testing.assert_array_equal(start["fc3.weight"], tgt_init["fc3.weight"])     # the head is the target's
    assert start["fc3.weight"].shape == (5, 32)
    masks, src_masks = tensors(five_class_target, "mask", group), tensors(source, "mask")
    for level in (1, 2):
        np.testing.assert_array_equal(masks["fc2"][level], src_masks["fc2"][level])
        assert abs(masks["fc3"][level].mean() - src_masks["fc3"][level].mean()) < 0.02  # head pruned alike
    np.testing.assert_allclose(b.density.values[1:3], tree.density.values[1:3], rtol=0.05)
    # the dense-head variant is another branch, beside it
    dense = transfer(source, five_class_target, [1], output="dense", progress=False)
    assert dense.endswith("_dense_output")
    assert tensors(five_class_target, "mask", dense)["fc3"][1].all()


def test_transfer_from_a_ticket_file_equals_transfer_from_the_run(source, five_class_target, tmp_path):
    fresh = rgnet.record(target_config(source, "teacher", {"classes": 5}), tmp_path / "fresh.h5", progress=False)
    ticket = write_ticket(ticket_from_run(source, 2), tmp_path / "t2.h5")
    a = transfer(ticket, fresh, progress=False)
    assert list(rgnet.open_run(fresh, group=a).level.values) == [2]
    transfer(source, five_class_target, [2], progress=False)
    from_run = rgnet.open_run(five_class_target, group=a).sel(level=2)
    from_ticket = rgnet.open_run(fresh, group=a).sel(level=2)
    assert float(from_ticket.test_acc) == float(from_run.test_acc)
    with pytest.raises(ConfigError, match="ticket of level 2"):
        transfer(ticket, fresh, [1], progress=False)


def test_mismatched_input_shape_and_model_are_refused(source, tmp_path):
    narrow = rgnet.record(target_config(source, "teacher", {"input_dim": 30}), tmp_path / "narrow.h5", progress=False)
    before = narrow.read_bytes()
    with pytest.raises(ConfigError, match="input shapes differ"):
        transfer(source, narrow, [1], progress=False)
    wide = rgnet.record(small_config(model={"params": {"widths": [16, 16]}}), tmp_path / "wide.h5", progress=False)
    with pytest.raises(ConfigError, match="same architecture"):
        transfer(source, wide, [1], progress=False)
    assert narrow.read_bytes() == before
    with pytest.raises(ConfigError, match="say which level"):
        load_ticket(source)


def test_cli_ticket_transfer_tickets(source, tmp_path, capsys):
    out = tmp_path / "t.h5"
    assert main(["ticket", str(source), "--level", "1", "--out", str(out)]) == 0
    assert main(["ticket", str(source), "--level", "1", "--out", str(out)]) == 2
    target = tmp_path / "shuffled.h5"
    assert main(["transfer", str(source), "--task", "mnist1d", "--task-param", "shuffle_seq=true",
                 "--target", str(target), "--levels", "1", "--quiet"]) == 0
    assert rgnet.open_run(target).sizes["level"] == 4   # the target run was recorded first
    capsys.readouterr()
    assert main(["transfer", str(source), "--task", "teacher", "--task-param", "input_dim=30",
                 "--target", str(tmp_path / "n.h5"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "input shapes differ" in err[0] and "Traceback" not in err[0]
    assert main(["transfer", str(source), "--quiet"]) == 2
    assert main(["transfer", str(tmp_path / "missing.h5"), "--target", str(target), "--quiet"]) == 2
    assert "does not exist" in capsys.readouterr().err
    capsys.readouterr()
    (tmp_path / "junk.h5").write_text("not hdf5")
    for bad in (out, tmp_path / "missing.h5", tmp_path / "junk.h5"):   # a ticket file is not a run file
        assert main(["tickets", str(bad)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "Traceback" not in err[0]
    assert main(["tickets", str(source), "--metric", "test_loss"]) == 2
    assert "choose one of" in capsys.readouterr().err
    assert main(["tickets", str(source), str(target)]) == 0
    printed = capsys.readouterr().out
    assert "winning ticket" in printed and "source \\ target" in printed
