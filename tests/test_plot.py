"""rgnet.plot on synthetic inputs: every figure function returns Axes/Figures holding the expected artists."""

import ast
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import networkx as nx  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.collections import LineCollection, PathCollection, PolyCollection  # noqa: E402
from matplotlib.patches import Rectangle, StepPatch  # noqa: E402
from scipy import stats  # noqa: E402

from rgnet import ConfigError, plot, rg  # noqa: E402
from rgnet.rg._synthetic import synthetic_run  # noqa: E402
from rgnet.rg.flow import bin_edges  # noqa: E402
from rgnet.rg.toy import MK_EIGENVALUE, MK_FIXED_POINT  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def tickets(metric="test_acc", experiments=("toy",)) -> xr.Dataset:
    """A hand-made ``rgnet.winning_tickets`` Dataset: 7 levels, four arms, baselines untrained at level 0."""
    arms = ["imp", "reinit", "random_prune_layerwise", "rewind_50"]
    level = np.arange(7)
    density = 0.8**level
    acc = np.array([0.90 - 0.001 * level, 0.90 - 0.02 * level, 0.90 - 0.03 * level, 0.91 - 0.001 * level])
    acc[1:, 0] = np.nan
    std = np.full_like(acc, 0.01)
    seeds = np.where(np.isnan(acc), 0, 3)
    n_exp = len(experiments)
    return xr.Dataset(
        {
            "acc_mean": (("experiment", "arm", "level"), np.broadcast_to(acc, (n_exp, *acc.shape))),
            "acc_std": (("experiment", "arm", "level"), np.broadcast_to(std, (n_exp, *acc.shape))),
            "seeds": (("experiment", "arm", "level"), np.broadcast_to(seeds, (n_exp, *acc.shape))),
            "dense_mean": (("experiment",), np.full(n_exp, 0.90)),
            "dense_std": (("experiment",), np.full(n_exp, 0.01)),
            "winning_level": (("experiment", "arm"), np.tile([6, 1, 1, 6], (n_exp, 1))),
            "winning_density": (("experiment", "arm"), np.tile(density[[6, 1, 1, 6]], (n_exp, 1))),
            "density": (("experiment", "level"), np.tile(density, (n_exp, 1))),
        },
        coords={"experiment": list(experiments), "arm": arms, "level": level},
        attrs={"metric": metric},
    )


def runs(n=3, levels=6) -> xr.Dataset:
    ds = xr.concat([synthetic_run(levels=levels, sizes=(2000, 1000, 300), seed=s) for s in range(n)], dim="run",
                   coords="different", compat="equals")
    return ds.assign_coords(seed=("run", np.arange(n)))


def planted(starts, a, fixed, levels=6) -> xr.DataArray:
    """Trajectories of the linear map ``g' = g* + A (g - g*)``."""
    out = []
    for g in np.asarray(starts, dtype=float):
        traj = [g]
        for _ in range(levels - 1):
            traj.append(fixed + a @ (traj[-1] - fixed))
        out.append(traj)
    return xr.DataArray(np.array(out), dims=("run", "level", "coupling"),
                        coords={"coupling": ["log_std:fc1", "log_std:fc2"]}, attrs={"scale_factor": 1.25})


A = np.array([[0.8, 0.1], [0.0, 0.5]])
G_STAR = np.array([-1.0, 0.5])
STARTS = [[0.0, 0.0], [-2.0, 1.0], [-0.5, 2.0], [-1.5, -1.0]]


def labelled_lines(ax):
    return [line for line in ax.get_lines() if not line.get_label().startswith("_")]


# --- ladder and early stopping ---------------------------------------------------------------------------------------

def test_ladder_draws_each_arm_with_its_band_on_an_inverted_log_density_axis():
    ds = tickets()
    ax = plot.ladder(ds)
    labels = [line.get_label() for line in labelled_lines(ax)]
    assert labels[:4] == ["IMP ticket", "IMP, rewind to step 50", "random re-init", "random mask (layerwise)"]
    reinit = labelled_lines(ax)[2]
    keep = np.isfinite(ds.acc_mean.sel(arm="reinit").values[0])
    np.testing.assert_allclose(reinit.get_xdata(), ds.density.values[0][keep])
    np.testing.assert_allclose(reinit.get_ydata(), 100 * ds.acc_mean.sel(arm="reinit").values[0][keep])
    assert sum(isinstance(c, PolyCollection) for c in ax.collections) == 4  # one std band per arm
    assert ax.get_xscale() == "log"
    left, right = ax.get_xlim()
    assert left > right  # dense on the left
    assert "early stop" in ax.get_ylabel() and "%" in ax.get_ylabel()
    assert "(%)" in ax.get_xlabel()
    winning = [line for line in ax.get_lines() if "winning" in line.get_label()]
    assert winning and winning[0].get_xdata()[0] == pytest.approx(0.8**6)


def test_ladder_labels_end_of_training_and_picks_arms():
    ax = plot.ladder(tickets("test_acc_final"), arms=["imp", "reinit"])
    assert "end of training" in ax.get_ylabel()
    assert len([line for line in labelled_lines(ax) if "winning" not in line.get_label()]) == 2


def test_ladder_asks_which_experiment_and_names_unknown_arms():
    with pytest.raises(ConfigError, match="experiment="):
        plot.ladder(tickets(experiments=("a", "b")))
    with pytest.raises(ConfigError, match="nope"):
        plot.ladder(tickets(), arms=["nope"])


def test_ladder_panels_one_axes_per_dataset():
    fig = plot.ladder_panels(tickets(), tickets("test_acc_final"))
    axes = [ax for ax in fig.axes if ax.get_xscale() == "log"]
    assert len(axes) == 2
    assert "early stop" in axes[0].get_ylabel() and "end of training" in axes[1].get_ylabel()


def test_early_stop_draws_each_run_and_the_mean():
    ds = runs()
    stop = np.array([[250, 250, 500, 500, 750, 1000], [250, 500, 500, 750, 750, 1500],
                     [250, 250, 250, 500, 1000, 2000]])
    ds["stop_iteration"] = (("run", "level"), stop)
    ax = plot.early_stop(ds)
    lines = ax.get_lines()
    assert len(lines) == 4  # three runs and their mean
    np.testing.assert_allclose(labelled_lines(ax)[0].get_ydata(), stop.mean(0))
    assert ax.get_xscale() == "log" and "iteration" in ax.get_ylabel()
    grouped = plot.early_stop(ds.assign_coords(group=("run", ["a", "a", "b"])), by="group")
    assert [line.get_label() for line in labelled_lines(grouped)] == ["a (2)", "b (1)"]
    with pytest.raises(ConfigError, match="run coordinate"):
        plot.early_stop(ds, by="nope")
    titled = plot.early_stop(ds, rule="max. validation accuracy")
    assert titled.get_title() == "early stopping (max. validation accuracy)"


def stopping_study() -> xr.Dataset:
    """A hand-made early-stopping study: 2 models x 3 seeds x 4 levels; val_loss loses 5 points, val_acc 1."""
    shape = (2, 3, 4, 2, 2)
    best = np.full(shape, 0.70)
    picked = best - np.array([0.01, 0.05])[None, None, None, :, None]
    picked[1, :, 3] = np.nan  # the second model has only 3 levels
    return xr.Dataset(
        {"best": (("model", "seed", "level", "criterion", "interval"), best),
         "picked": (("model", "seed", "level", "criterion", "interval"), picked),
         "final": (("model", "seed", "level", "criterion", "interval"), best - 0.02),
         "density": (("model", "level"), np.tile(0.8 ** np.arange(4), (2, 1)))},
        coords={"model": ["cnn", "mlp"], "seed": [0, 1, 2], "level": np.arange(4),
                "criterion": ["val_acc", "val_loss"], "interval": [50, 100]})


def test_stopping_rules_one_panel_per_model_with_the_accuracy_each_rule_gives_up():
    fig = plot.stopping_rules(stopping_study())
    axes = fig.axes
    assert len(axes) == 2 and axes[0].get_xscale() == "log"
    lines = {line.get_label(): line for line in labelled_lines(axes[0])}
    assert set(lines) == {"max. validation accuracy", "min. validation loss", "end of training"}
    np.testing.assert_allclose(lines["min. validation loss"].get_ydata(), 5.0)
    np.testing.assert_allclose(lines["max. validation accuracy"].get_ydata(), 1.0)
    np.testing.assert_allclose(lines["end of training"].get_ydata(), 2.0)
    assert len(labelled_lines(axes[1])[0].get_xdata()) == 3  # the missing level is left out
    assert "every 100 steps" in axes[0].get_title()
    assert "every 50 steps" in plot.stopping_rules(stopping_study(), interval=50).axes[0].get_title()
    with pytest.raises(ConfigError, match="choose one of"):
        plot.stopping_rules(stopping_study(), interval=7)


# --- the flow --------------------------------------------------------------------------------------------------------

def test_layer_densities_integrate_to_one_raw_rescaled_and_merged():
    ds = synthetic_run(levels=5, sizes=(3000, 500, 60))
    for layer in ("fc1", "fc3"):
        raw = plot.layer_densities(ds, layer)
        shape = plot.layer_densities(ds, layer, rescaled=True)
        merged = plot.layer_densities(ds, layer, min_count=20)
        for (e, d), (es, dsh), (em, dm) in zip(raw, shape, merged):
            assert np.sum(d * np.diff(e)) == pytest.approx(1.0)
            assert np.sum(dsh * np.diff(es)) == pytest.approx(1.0)
            assert np.sum(dm * np.diff(em)) == pytest.approx(1.0)
        sigma = ds.w_std.sel(layer=layer).values
        np.testing.assert_allclose(shape[2][0], raw[2][0] / sigma[2])
    # 60 weights thinned by 0.8 per level cannot fill 64 bins: the last level of fc3 is merged
    assert len(plot.layer_densities(ds, "fc3", min_count=20)[-1][0]) < 65


def test_layer_densities_follow_a_per_level_grid_from_bin_edges():
    ds = synthetic_run(levels=4)
    scale = ds.bin_scale * xr.DataArray(0.5 + 0.1 * np.arange(4), dims="level")
    ds = ds.assign(bin_scale=scale.transpose("level", "layer"))
    edges = bin_edges(ds).sel(layer="fc2").transpose("level", "edge").values
    for level, (e, _) in enumerate(plot.layer_densities(ds, "fc2")):
        np.testing.assert_allclose(e, edges[level])


def test_weight_flow_has_raw_and_rescaled_panels_per_layer():
    ds = runs(n=2, levels=5)
    fig = plot.weight_flow(ds, run=1)
    panels = [ax for ax in fig.axes if ax.patches]
    assert len(panels) == 6  # 3 layers x (raw, rescaled)
    assert all(sum(isinstance(p, StepPatch) for p in ax.patches) == 5 for ax in panels)
    assert panels[0].get_yscale() == "log"
    assert any("IMP level" in ax.get_ylabel() for ax in fig.axes)  # the colour bar
    ax = plot.weight_distributions(ds.isel(run=0), "fc2", rescaled=True, levels=[0, 4], logy=False, colorbar=False)
    assert len(ax.patches) == 2 and "σ" in ax.get_xlabel()
    with pytest.raises(ConfigError, match="layers"):
        plot.weight_distributions(ds, "fc9")
    with pytest.raises(ConfigError, match="out of range"):
        plot.weight_flow(ds, run=5)


def test_flow_speed_draws_layers_and_total_speed():
    ds = runs()
    flow = rg.wasserstein_flow(ds)
    ax = plot.flow_speed(flow)
    lines = labelled_lines(ax)
    assert [line.get_label() for line in lines] == ["fc1", "fc2", "fc3", "speed (all layers)"]
    np.testing.assert_allclose(lines[1].get_ydata(), flow.w1_shape.sel(layer="fc2").mean("run").values)
    np.testing.assert_allclose(lines[0].get_xdata(), flow.level.values)
    assert sum(isinstance(c, PolyCollection) for c in ax.collections) == 4
    assert len(labelled_lines(plot.flow_speed(flow, "w1"))) == 3
    with pytest.raises(ConfigError, match="w1_shape"):
        plot.flow_speed(flow, "speed")


def test_coupling_flow_marks_the_planted_fixed_point_and_its_eigen_directions():
    traj = planted(STARTS, A, G_STAR)
    lin = rg.linearise(traj, n_boot=20)
    ax = plot.coupling_flow(traj, lin)
    star = [line for line in ax.get_lines() if line.get_label().startswith("fixed point g*")]
    assert star and np.allclose(star[0].get_xydata()[0], G_STAR, atol=1e-8)
    bars = [line for line in ax.get_lines() if line.get_gid() == "interval"]
    assert len(bars) == 2  # the bootstrap interval along each axis
    np.testing.assert_allclose(bars[0].get_xdata(), lin.fixed_point_ci.isel(coupling=0).values)
    directions = [line for line in ax.get_lines() if line.get_label().startswith("λ =")]
    assert sorted(line.get_label().split()[2] for line in directions) == ["0.5", "0.8"]
    for line in directions:  # each segment lies along its eigenvector, through g*
        lam = float(line.get_label().split()[2])
        v = np.linalg.eig(A)[1][:, np.argmin(abs(np.linalg.eigvals(A) - lam))]
        d = np.diff(np.c_[line.get_xdata(), line.get_ydata()], axis=0)[0]
        assert abs(d[0] * v[1] - d[1] * v[0]) < 1e-8 * np.linalg.norm(d)
        assert np.allclose(np.mean(np.c_[line.get_xdata(), line.get_ydata()], axis=0), G_STAR)
    assert "ln σ (fc1)" == ax.get_xlabel()
    assert sum(isinstance(c, PathCollection) for c in ax.collections) == len(STARTS)  # level-coloured points


#: A map with a conjugate pair of eigenvalues 0.8 e^{±0.3i} and non-orthogonal, unequal axes: a rotation seen
#: through a shear, whose invariant curves are tilted ellipses.
SHEAR = np.array([[1.0, 0.6], [0.0, 0.7]])
ROTATION = SHEAR @ (0.8 * np.array([[np.cos(0.3), -np.sin(0.3)], [np.sin(0.3), np.cos(0.3)]])) @ np.linalg.inv(SHEAR)


def test_coupling_flow_draws_a_conjugate_pair_as_the_plane_it_rotates():
    traj = planted(STARTS, ROTATION, G_STAR, levels=8)
    lin = rg.linearise(traj, n_boot=0)
    assert list(lin["partner"].values) == [1, 0]
    ax = plot.coupling_flow(traj, lin)
    modes = [line for line in ax.get_lines() if line.get_label().startswith("λ =")]
    assert len(modes) == 1  # one mode, not one direction per half of the pair (nor Re v as if it were real)
    assert "a rotation: 17.2° per level" in modes[0].get_label()
    ring = np.c_[modes[0].get_xdata(), modes[0].get_ydata()] - G_STAR
    assert len(ring) > 100 and np.allclose(ring[0], ring[-1])  # a closed curve around g*
    # the map carries the drawn curve onto itself, shrunk by |λ| and turned one step along it: it is the invariant
    # ellipse of the rotation, and the arrowhead points the way the map turns it
    image = ring @ ROTATION.T / 0.8
    nearest = np.argmin(np.linalg.norm(ring[None, :, :] - image[:, None, :], axis=2), axis=1)
    assert np.max(np.linalg.norm(ring[nearest] - image, axis=1)) < 0.02 * np.abs(ring).max()
    arrow = [a for a in ax.texts if getattr(a, "arrow_patch", None) is not None and a.xy is not None
             and np.any(np.isclose(np.asarray(a.xy) - G_STAR, ring).all(axis=1))]
    assert len(arrow) == 1
    head, tail = np.asarray(arrow[0].xy) - G_STAR, np.asarray(arrow[0].xyann) - G_STAR
    k = int(np.argmin(np.linalg.norm(ring - tail, axis=1)))
    assert np.linalg.norm(ring[(k + 6) % 180] - head) < 1e-9  # six samples further along θ, the map's sense
    step = int(np.round(np.median((nearest - np.arange(len(ring))) % 180)))
    assert 0 < step < 90  # the map moves points forward along the drawn curve (17.2° ≈ 8.6 samples of 2°)


def test_exponents_draw_a_conjugate_pair_as_one_mode():
    lin_pair = rg.linearise(planted(STARTS, ROTATION, G_STAR, levels=8), n_boot=0)
    lin_real = rg.linearise(planted(STARTS, A, G_STAR), n_boot=0)
    ax = plot.exponents({"pair": lin_pair, "real": lin_real})
    points = labelled_lines(ax)
    assert [line.get_label() for line in points] == ["mode 0 (largest |λ|)", "mode 1"]
    assert len(points[1].get_xdata()) == 1  # the pair's second half is not a second mode
    open_ = [line for line in ax.get_lines() if line.get_gid() == "conjugate pair"]
    assert len(open_) == 1 and open_[0].get_markerfacecolor() == "white"
    np.testing.assert_allclose(open_[0].get_ydata(), [np.log(0.8) / np.log(1.25)], rtol=1e-6)
    assert "open: a conjugate pair (one mode)" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_coupling_flow_notes_a_fixed_point_far_off_the_trajectories_and_handles_one_coupling():
    traj = planted(STARTS, A, G_STAR)
    lin = rg.linearise(traj, n_boot=0).assign(fixed_point=("coupling", [100.0, 100.0]))
    ax = plot.coupling_flow(traj, lin)
    assert any("off-panel" in t.get_text() for t in ax.texts)
    assert not [line for line in ax.get_lines() if line.get_label().startswith("fixed point")]
    mk = rg.migdal_kadanoff_2d(MK_FIXED_POINT + np.array([-0.01, 0.01]), levels=4)
    ax = plot.coupling_flow(mk, rg.linearise(mk, n_boot=0))
    assert len(ax.get_lines()) == 3 and ax.get_xlabel() == "level"
    with pytest.raises(ConfigError, match="coupling"):
        plot.coupling_flow(traj, x="nope")


# --- spectra ---------------------------------------------------------------------------------------------------------

def test_spectrum_one_scatter_per_task_and_the_unit_circle():
    eigs = {"a": [0.5, 0.9 + 0.1j, 0.9 - 0.1j], "b": np.array([1.1])}
    ax = plot.spectrum(eigs)
    scatters = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert [c.get_label() for c in scatters] == ["a", "b"]
    np.testing.assert_allclose(scatters[0].get_offsets(), [[0.5, 0], [0.9, 0.1], [0.9, -0.1]])
    circle = [line for line in ax.get_lines() if "unit circle" in line.get_label()][0]
    np.testing.assert_allclose(np.hypot(circle.get_xdata(), circle.get_ydata()), 1.0)
    assert ax.get_xlabel() == "Re λ" and ax.get_ylabel() == "Im λ"
    assert ax.get_xlim()[1] >= 1.1


def test_spectrum_accepts_xarray_with_a_task_dim_or_coordinate_and_dmd_outputs():
    da = xr.DataArray([[0.5, 0.2 + 0.3j, np.nan], [0.9, 0.1, 0.3]], dims=("task", "mode"),
                      coords={"task": ["x", "y"]})
    sets = plot.eigenvalue_sets(da)
    assert list(sets) == ["x", "y"] and sets["x"].size == 2  # NaN padding dropped
    flat = xr.Dataset({"eigenvalues": ("mode", [0.5, 0.6, 0.7])}, coords={"task": ("mode", ["p", "q", "p"])})
    assert {k: v.size for k, v in plot.eigenvalue_sets(flat).items()} == {"p": 2, "q": 1}
    dmd = rg.dmd(planted(STARTS, A, np.zeros(2)), rank=2)  # a linear map: DMD recovers its eigenvalues
    ax = plot.spectrum({"planted": dmd})
    offsets = ax.collections[0].get_offsets()
    np.testing.assert_allclose(sorted(offsets[:, 0]), [0.5, 0.8], atol=1e-8)
    with pytest.raises(ConfigError):
        plot.spectrum({"empty": []})


def test_exponents_with_bootstrap_intervals_per_task():
    lin_a = rg.linearise(planted(STARTS, A, G_STAR), n_boot=20)
    lin_b = rg.linearise(planted(STARTS, np.diag([1.2, 0.6]), G_STAR), n_boot=20)
    ax = plot.exponents({"a": lin_a, "b": lin_b})
    points = labelled_lines(ax)
    assert [line.get_label() for line in points] == ["mode 0 (largest |λ|)", "mode 1"]
    y0 = points[0].get_ydata()
    np.testing.assert_allclose(y0, [np.log(0.8) / np.log(1.25), np.log(1.2) / np.log(1.25)], rtol=1e-6)
    bars = [line for line in ax.get_lines() if line.get_gid() == "interval"]
    assert len(bars) == 4  # two modes x two tasks
    np.testing.assert_allclose(bars[0].get_ydata(), lin_a.exponents_ci.isel(mode=0).values)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"]
    assert "ln|λ|" in ax.get_ylabel()
    stacked = xr.concat([lin_a, lin_b], dim="task").assign_coords(task=["a", "b"])
    ax2 = plot.exponents(stacked, modes=1)
    assert len(labelled_lines(ax2)) == 1


# --- transfer --------------------------------------------------------------------------------------------------------

def transfer() -> xr.Dataset:
    tasks = ["t1", "t2", "t3"]
    gap = np.array([[0.0, -0.02, np.nan], [-0.05, 0.0, 0.01], [-0.1, -0.03, 0.0]])
    transfers = np.array([[1.0, 1.0, 1.0], [0.0, 1.0, 1.0], [0.0, 0.0, np.nan]])
    return xr.Dataset({"gap_at_winning": (("source", "target"), gap), "transfers": (("source", "target"), transfers)},
                      coords={"source": tasks, "target": tasks})


def test_transfer_matrix_colours_the_gap_and_marks_the_verdicts():
    tm = transfer()
    ax = plot.transfer_matrix(tm, labels={"t1": "first"})
    image = ax.get_images()[0]
    data = image.get_array()
    np.testing.assert_allclose(data.filled(np.nan), 100 * tm.gap_at_winning.values)
    assert data.mask[0, 2]
    texts = [t.get_text() for t in ax.texts]
    assert sum(plot.transfer.YES in t for t in texts) == 5 and sum(plot.transfer.NO in t for t in texts) == 3
    assert "n/a" in texts[2] and texts[1] == "-2.0\n" + plot.transfer.YES
    assert sum(isinstance(p, Rectangle) and not p.get_fill() and p.get_hatch() is None for p in ax.patches) == 3
    assert image.norm.vmin == -image.norm.vmax == -10
    assert ax.get_xticklabels()[0].get_text() == "first"
    with pytest.raises(ConfigError, match="gap_at_winning"):
        plot.transfer_matrix(tm, value="nope")


def aligned_matrix() -> xr.Dataset:
    """A transfer matrix with an unaligned and an aligned source into one target, 4 levels."""
    sources, targets = ["a", "a [aligned inputs]", "b"], ["a", "b"]
    gap = np.full((3, 2, 4), np.nan)
    gap[0, 1] = [np.nan, -0.01, -0.05, -0.08]  # a -> b unaligned
    gap[1, 1] = [np.nan, 0.00, 0.01, -0.01]  # a -> b aligned
    gap[0, 0] = gap[2, 1] = 0.0  # own tickets
    match = np.nan_to_num(gap) > -0.03
    return xr.Dataset(
        {"gap": (("source", "target", "level"), gap),
         "gap_std": (("source", "target", "level"), np.full(gap.shape, 0.01)),
         "transfer_matching": (("source", "target", "level"), match),
         "density": (("target", "level"), np.tile(0.8 ** np.arange(4), (2, 1))),
         "winning_density": (("target",), [0.512, 0.64])},
        coords={"source": sources, "target": targets, "level": np.arange(4)})


def test_aligned_transfer_compares_alignment_modes_per_pair():
    fig = plot.aligned_transfer(aligned_matrix())
    (ax,) = fig.axes
    assert ax.get_title() == "a → b" and ax.get_xscale() == "log"
    lines = {line.get_label(): line for line in labelled_lines(ax)}
    np.testing.assert_allclose(lines["unaligned"].get_ydata(), [-1, -5, -8])
    np.testing.assert_allclose(lines["aligned inputs"].get_ydata(), [0, 1, -1])
    assert lines["unaligned"].get_linestyle() == "--" and lines["aligned inputs"].get_linestyle() == "-"
    # matching levels filled, the others open
    scatters = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert sum(len(c.get_offsets()) for c in scatters) == 6
    assert "target's own winning ticket" in lines
    with pytest.raises(ConfigError, match="no aligned transfer"):
        plot.aligned_transfer(aligned_matrix().sel(source=["a", "b"]))


def test_class_graph_colours_classes_and_scales_edges():
    g = nx.Graph()
    g.add_nodes_from(["a", "b", "c"], **{"class": 0})
    g.add_nodes_from(["d", "e"], **{"class": 1})
    g.add_edge("a", "b", weight=1.0)
    g.add_edge("b", "c", weight=3.0)
    g.add_edge("d", "e", weight=2.0)
    ax = plot.class_graph(g)
    nodes = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert [len(c.get_offsets()) for c in nodes] == [3, 2]
    edges = [c for c in ax.collections if isinstance(c, LineCollection)][0]
    assert sorted(edges.get_linewidths()) == pytest.approx([0.6, 1.8, 3.0])
    assert {t.get_text() for t in ax.texts} == set("abcde")
    h = nx.Graph([("x", "y")])
    h.add_node("z")
    ax = plot.class_graph(h)  # no class attribute: connected components
    assert [len(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection)] == [2, 1]


def test_roc_auc_matches_the_mann_whitney_statistic_with_ties():
    rng = np.random.default_rng(0)
    label = rng.random(60) < 0.4
    score = np.round(label + rng.normal(0, 1, 60), 1)  # rounded: many ties
    fpr, tpr, auc = plot.roc_curve(score, label)
    u = stats.mannwhitneyu(score[label], score[~label]).statistic
    assert auc == pytest.approx(u / (label.sum() * (~label).sum()))
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    _, tpr_perfect, auc_perfect = plot.roc_curve([3, 2, 1, 0], [1, 1, 0, 0])
    assert auc_perfect == 1 and tpr_perfect[2] == 1
    with pytest.raises(ConfigError, match="positive and negative"):
        plot.roc_curve([1, 2, np.nan], [1, 1, 0])


def test_roc_aligns_dataarrays_by_coordinates_and_reports_auc():
    tm = transfer()
    score = xr.DataArray(np.arange(9.0).reshape(3, 3), dims=("source", "target"),
                         coords={"source": ["t1", "t2", "t3"], "target": ["t1", "t2", "t3"]})
    reversed_score = score.isel(source=slice(None, None, -1))  # same values, other order: same curve
    ax = plot.roc({"s": score, "s reversed": reversed_score}, tm.transfers)
    lines = ax.get_lines()
    assert len(lines) == 3  # chance + two predictors
    np.testing.assert_allclose(lines[1].get_xydata(), lines[2].get_xydata())
    _, _, auc = plot.roc_curve(score.values, tm.transfers.values)
    assert f"AUC {auc:.2f}" in lines[1].get_label()


# --- Ising -----------------------------------------------------------------------------------------------------------

def test_ising_validation_recovers_the_exact_values():
    traj = rg.migdal_kadanoff_2d(MK_FIXED_POINT + np.linspace(-0.03, 0.03, 9), levels=6)
    fig = plot.ising_validation(traj, n_boot=20)
    ax_flow, ax_map, ax_val = fig.axes
    assert len(ax_flow.get_lines()) == 9 + 1  # runs and K*
    fit = [line for line in ax_map.get_lines() if line.get_label().startswith("fit")][0]
    slope = np.diff(fit.get_ydata())[0] / np.diff(fit.get_xdata())[0]
    assert slope == pytest.approx(MK_EIGENVALUE, abs=2e-3)
    ticks = [t.get_text() for t in ax_val.get_xticklabels()]
    assert ticks[0].startswith("K*") and "(0.30469)" in ticks[0] and "(1.67857)" in ticks[1]
    assert len([line for line in ax_val.get_lines() if line.get_gid() == "interval"]) == 3


# --- hygiene ---------------------------------------------------------------------------------------------------------

def test_plot_modules_import_no_training_code():
    banned = ("torch", "rgnet.imp", "rgnet.models", "rgnet.tasks")
    for path in (Path(plot.__file__).parent).glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not [n for n in names if n.startswith(banned)], f"{path.name} imports {names}"


def test_import_rgnet_does_not_load_matplotlib():
    code = "import sys, rgnet; assert 'matplotlib' not in sys.modules; rgnet.plot.ladder; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


def test_transfer_matrix_marks_undecided_verdicts():
    tm = transfer()
    verdict = np.where(np.isnan(tm.transfers.values), -2, tm.transfers.values).astype(np.int8)
    verdict[0, 1] = -1
    tm["transfer_verdict"] = (("source", "target"), verdict)
    tm["gap_range"] = tm.gap_at_winning
    texts = [t.get_text() for t in plot.transfer_matrix(tm).texts]
    assert texts[1].endswith(plot.transfer.UNDECIDED) and sum(plot.transfer.UNDECIDED in t for t in texts) == 1
