"""rgnet.plot.phase on a hand-made 3x3 phase family: the cells, arrows, shared scales and rows hold the numbers."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.collections import PathCollection, QuadMesh  # noqa: E402
from matplotlib.text import Annotation  # noqa: E402

from rgnet import ConfigError, plot  # noqa: E402
from rgnet.plot import phase  # noqa: E402

SWAPS, NOISE = [0, 6, 12], [0.1, 0.2, 0.3]
#: 3x3 grid without the (12, 0.3) corner: eight tasks, labelled like the phase family
TASKS = [f"s{s:02d}n{round(100 * n):02d}" for n in NOISE for s in SWAPS][:-1]
LEVELS = [0, 2, 4]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def idx(task: str) -> int:
    return TASKS.index(task)


def transfer() -> xr.Dataset:
    """A phase transfer file: a few measured pairs (NaN elsewhere), 2 seeds, levels 0, 2, 4 (level 0 unmeasured).

    The gap at level 2 is +3 points for ``s00n10 -> s06n10`` and -1 back (``s00n10 -> s06n10`` the better
    direction); at level 4 the signs flip. ``gap_range`` is the mean of levels 2 and 4."""
    k = len(TASKS)
    gap = np.full((k, k, 2, len(LEVELS)), np.nan)
    for i in range(k):
        gap[i, i, :, 1:] = 0.0
    pairs = {  # (source, target): (level-2 gap, level-4 gap), accuracy units; seeds at ± 0.005 about it
        ("s00n10", "s06n10"): (0.03, -0.02),
        ("s06n10", "s00n10"): (-0.01, 0.01),
        ("s00n10", "s00n20"): (-0.02, -0.04),
        ("s00n20", "s00n10"): (-0.03, -0.06),
        ("s06n20", "s06n10"): (0.01, 0.00),   # one direction only: no arrow
        ("s12n20", "s00n10"): (-0.05, -0.08),  # a distant pair
    }
    for (a, b), (g2, g4) in pairs.items():
        gap[idx(a), idx(b), :, 1] = [g2 - 0.005, g2 + 0.005]
        gap[idx(a), idx(b), :, 2] = [g4 - 0.005, g4 + 0.005]
    measured = np.isfinite(gap[:, :, :, 1:]).any(axis=(2, 3))
    gap_range = np.where(measured, np.nanmean(np.where(np.isfinite(gap), gap, 0)[:, :, :, 1:], axis=(2, 3)), np.nan)
    ci = np.stack([gap_range - 0.01, gap_range + 0.01], axis=-1)
    verdict = np.full((k, k), -2, np.int8)
    np.fill_diagonal(verdict, 1)
    for (a, b), (g2, _) in pairs.items():
        verdict[idx(a), idx(b)] = 1 if g2 > 0 else (0 if g2 < -0.02 else -1)
    swaps = [int(t[1:3]) for t in TASKS]
    noise = [int(t[4:]) / 100 for t in TASKS]
    return xr.Dataset(
        {"gap_seed": (("source", "target", "seed", "level"), gap),
         "gap_range": (("source", "target"), gap_range),
         "gap_range_ci": (("source", "target", "bound"), ci),
         "transfer_verdict": (("source", "target"), verdict)},
        coords={"source": TASKS, "target": TASKS, "seed": [0, 1], "level": LEVELS, "bound": ["low", "high"],
                "source_swaps": ("source", swaps), "source_noise": ("source", noise),
                "target_swaps": ("target", swaps), "target_noise": ("target", noise),
                "density": (("target", "level"), np.tile(0.8 ** np.array(LEVELS), (k, 1)))})


def universality(tm: xr.Dataset) -> xr.Dataset:
    """Scores of three predictors against the measured gap: an asymmetric one, a symmetric one (the same score
    both ways), one with NaN tau_w."""
    k = len(TASKS)
    rng = np.random.default_rng(0)
    asym = rng.normal(size=(k, k))
    sym = asym + asym.T
    const = np.ones((k, k))
    predictors = ["asym", "sym", "const"]
    return xr.Dataset(
        {"score": (("predictor", "source", "target"), np.stack([asym, sym, const])),
         "gap": tm.gap_range,
         "tau_w": (("predictor",), [0.4, -0.2, np.nan]),
         "tau_task_ci": (("predictor", "bound"), [[0.1, 0.7], [-0.6, 0.3], [np.nan, np.nan]]),
         "predictor_kind": (("predictor",), ["signature", "baseline", "class"]),
         "class_id": (("signature", "task"), [[0, 0, 1, 0, 0, 1, 2, 2]])},
        coords={"predictor": predictors, "source": TASKS, "target": TASKS, "bound": ["lower", "upper"],
                "signature": ["asym"], "task": TASKS})


def mesh(ax) -> QuadMesh:
    (m,) = [c for c in ax.collections if isinstance(c, QuadMesh)]
    return m


def cell(ax, task: str) -> float:
    """The value of ``task``'s cell: rows are noise, columns swaps."""
    s, n = int(task[1:3]), int(task[4:]) / 100
    return mesh(ax).get_array()[NOISE.index(n), SWAPS.index(s)]


def arrows(ax) -> dict[str, Annotation]:
    return {a.get_gid(): a for a in ax.texts if isinstance(a, Annotation) and "->" in str(a.get_gid())}


def test_cells_are_the_mean_gap_into_each_task():
    tm = transfer()
    ax = plot.phase_diagram(tm, level=2)
    # s00n10 receives from s06n10 (-1), s00n20 (-3) and s12n20 (-5): the own ticket (0) is left out
    assert cell(ax, "s00n10") == pytest.approx(-3.0)
    assert cell(ax, "s06n10") == pytest.approx(2.0)   # from s00n10 (+3) and s06n20 (+1)
    assert cell(ax, "s00n20") == pytest.approx(-2.0)
    assert np.ma.is_masked(cell(ax, "s12n10"))           # nothing transferred into it
    assert np.ma.getmaskarray(mesh(ax).get_array())[2, 2]  # no task at (12, 0.3)
    norm = mesh(ax).norm
    assert norm.vmin == -norm.vmax == pytest.approx(-3.0)
    # gap_range (level None): the mean over levels of each pair, then over sources
    ax = plot.phase_diagram(tm)
    expected = 100 * np.mean([np.mean(v) for v in ([-0.01, 0.01], [-0.03, -0.06], [-0.05, -0.08])])
    assert cell(ax, "s00n10") == pytest.approx(expected)
    assert ax.get_xlabel() == "input pairs swapped" and ax.get_ylabel() == "correlated noise"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "6", "12"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0.1", "0.2", "0.3"]


def test_incoming_gap_falls_back_to_gap_and_names_missing_levels():
    tm = transfer()
    by_level = tm.assign(gap=tm.gap_seed.mean("seed")).drop_vars("gap_seed")
    xr.testing.assert_allclose(phase.incoming_gap(by_level, 4), phase.incoming_gap(tm, 4))
    with pytest.raises(ConfigError, match="levels"):
        plot.phase_diagram(tm, level=7)
    with pytest.raises(ConfigError, match="grid coordinates"):
        plot.phase_diagram(tm.drop_vars("target_noise"))


def test_arrows_point_along_the_better_direction_and_grow_with_the_asymmetry():
    tm = transfer()
    at2 = arrows(plot.phase_diagram(tm, level=2))
    # only neighbours measured both ways: s00n10 <-> s06n10 and s00n10 <-> s00n20
    assert set(at2) == {"s00n10->s06n10", "s00n10->s00n20"}
    right = at2["s00n10->s06n10"]   # +3 vs -1 back: towards s06n10, i.e. +x
    (hx, hy), (tx, ty) = right.xy, right.xyann
    assert hx > tx and hy == ty
    assert tx < 0.5 < hx            # across the border between the two cells
    up = at2["s00n10->s00n20"]      # -2 vs -3 back: towards s00n20 (noise 0.2, the row above)
    (hx, hy), (tx, ty) = up.xy, up.xyann
    assert hy > ty and hx == tx
    # asymmetry 4 points is the widest arrow; 1 point a quarter of the way
    w_big, w_small = right.arrow_patch.get_linewidth(), up.arrow_patch.get_linewidth()
    lo, hi = phase.ARROW_WIDTH
    assert w_big == pytest.approx(hi) and w_small == pytest.approx(lo + (hi - lo) / 4)
    at4 = arrows(plot.phase_diagram(tm, level=4))   # the signs flip at level 4
    assert set(at4) == {"s06n10->s00n10", "s00n10->s00n20"}
    (hx, _), (tx, _) = at4["s06n10->s00n10"].xy, at4["s06n10->s00n10"].xyann
    assert hx < tx


def test_asymmetries_list_the_better_direction_first():
    out = {(a, b): d for a, b, d in phase.asymmetries(transfer(), level=2)}
    assert out == pytest.approx({("s00n10", "s06n10"): 0.04, ("s00n10", "s00n20"): 0.01})


def test_classes_mark_each_task_and_the_borders_between_classes():
    tm = transfer()
    classes = universality(tm).class_id.sel(signature="asym")
    ax = plot.phase_diagram(tm, classes=classes)
    marks = [c for c in ax.collections if isinstance(c, PathCollection) and c.get_gid() == "class"]
    assert [len(m.get_offsets()) for m in marks] == [4, 2, 2]
    (border,) = [c for c in ax.collections if c.get_gid() == "class border"]
    # classes by cell: row 0.1: 0 0 1, row 0.2: 0 0 1, row 0.3: 2 2 -; borders between 0|1 (x2) and 0|2 (x2)
    assert len(border.get_segments()) == 4
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "predicted class 0" in labels and "class border" in labels


def test_panels_share_one_colour_norm_and_one_arrow_scale():
    tm = transfer()
    fig = plot.phase_panels(tm, levels=(2, 4))
    axes = [ax for ax in fig.axes if [c for c in ax.collections if c.get_gid() == "gap"]]
    (bar,) = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(axes) == 2
    assert len({id(mesh(ax).norm) for ax in axes}) == 1   # one norm object: one colour scale
    norm = mesh(axes[0]).norm
    assert bar.get_ylim() == pytest.approx((norm.vmin, norm.vmax))
    # largest |mean incoming gap| over both levels: s00n10 at level 4 is (1 - 6 - 8) / 3 = -13/3 points
    assert norm.vmax == -norm.vmin == pytest.approx(13 / 3)
    assert axes[0].get_title() == "level 2 (64% weights)" and axes[1].get_title() == "level 4 (41% weights)"
    # the widest arrow is the largest asymmetry over both levels (4 points at level 2)
    widths = [a.arrow_patch.get_linewidth() for ax in axes for a in arrows(ax).values()]
    assert max(widths) == pytest.approx(phase.ARROW_WIDTH[1]) and sum(w == max(widths) for w in widths) == 1
    assert len(fig.legends) == 1 and not [ax.get_legend() for ax in axes if ax.get_legend()]
    with pytest.raises(ConfigError, match="at least one level"):
        plot.phase_panels(tm, levels=())


def test_predicted_vs_measured_plots_exactly_the_measured_off_diagonal_pairs():
    tm = transfer()
    un = universality(tm)
    ax = plot.predicted_vs_measured(un, "asym", transfer=tm)
    points = np.concatenate([c.get_offsets() for c in ax.collections if c.get_gid() == "pairs"])
    score, gap = un.score.sel(predictor="asym").values, 100 * un.gap.values
    off = ~np.eye(len(TASKS), dtype=bool) & np.isfinite(gap)
    expected = np.column_stack([score[off], gap[off]])
    assert len(points) == 6
    np.testing.assert_allclose(sorted(map(tuple, points)), sorted(map(tuple, expected)))
    # one interval per pair, from gap_range_ci (± 1 point around gap_range)
    bars = [line for line in ax.get_lines() if line.get_gid() == "interval"]
    assert len(bars) == 6
    for line in bars:
        lo, hi = line.get_ydata()
        assert hi - lo == pytest.approx(2.0)
    assert "asym" in ax.get_title() and "τ_w = 0.40 [0.10, 0.70]" in ax.get_title()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"transfers", "does not", "undecided"} <= set(labels)


def test_predicted_vs_measured_separates_the_two_directions_of_a_symmetric_score():
    tm = transfer()
    un = universality(tm)
    ax = plot.predicted_vs_measured(un, "sym")
    points = np.concatenate([c.get_offsets() for c in ax.collections if c.get_gid() == "pairs"])
    assert len(points) == 6 and len(np.unique(points[:, 0])) == 6   # two pairs measured both ways, moved apart
    s = un.score.sel(predictor="sym").values
    ab, ba = s[idx("s00n10"), idx("s06n10")], s[idx("s06n10"), idx("s00n10")]
    assert ab == ba
    off = ~np.eye(len(TASKS), dtype=bool) & np.isfinite(un.gap.values)
    step = 0.01 * np.ptp(s[off])   # the two directions are moved 1% of the score range apart
    g = 100 * un.gap.values
    # s00n10 -> s06n10: the first name sorts first, to the left; the way back to the right
    assert np.isclose(points, [ab - step, g[idx("s00n10"), idx("s06n10")]]).all(axis=1).sum() == 1
    assert np.isclose(points, [ab + step, g[idx("s06n10"), idx("s00n10")]]).all(axis=1).sum() == 1
    assert not [line for line in ax.get_lines() if line.get_gid() == "interval"]   # no transfer file, no intervals
    with pytest.raises(ConfigError, match="choose one of"):
        plot.predicted_vs_measured(un, "nope")


def test_score_intervals_one_row_per_predictor_with_its_interval():
    un = universality(transfer())
    ax = plot.score_intervals(un)   # default: the predictors with a finite tau_w, top to bottom
    assert [t.get_text() for t in ax.get_yticklabels()] == ["sym", "asym"]
    bars = {line.get_ydata()[0]: tuple(line.get_xdata()) for line in ax.get_lines() if line.get_gid() == "interval"}
    assert bars == {1.0: pytest.approx((0.1, 0.7)), 0.0: pytest.approx((-0.6, 0.3))}
    taus = {line.get_ydata()[0]: line.get_xdata()[0] for line in ax.get_lines() if line.get_gid() == "tau"}
    assert taus == {1.0: pytest.approx(0.4), 0.0: pytest.approx(-0.2)}
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["signature", "baseline"]
    roles = {"asym": "primary", "const": "exploratory"}
    ax = plot.score_intervals(un, predictors=["asym", "sym", "const"], roles=roles)
    assert len(ax.get_yticks()) == 3
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["primary", "other"]
    assert "n/a" in [t.get_text() for t in ax.texts]   # const: NaN tau_w, no point, no interval
    colours = {line.get_ydata()[0]: line.get_color() for line in ax.get_lines() if line.get_gid() == "tau"}
    assert colours[2.0] != colours[1.0]
    # by default, rows grouped by role in the order the roles first appear, grey for exploratory ones
    ax = plot.score_intervals(un, roles={"sym": "primary", "asym": "exploratory"})
    assert [t.get_text() for t in ax.get_yticklabels()] == ["asym", "sym"]   # bottom to top: sym on top
    colours = {line.get_ydata()[0]: line.get_color() for line in ax.get_lines() if line.get_gid() == "tau"}
    assert colours[0.0] == "0.55" and colours[1.0] != "0.55"
    with pytest.raises(ConfigError, match="not in the file"):
        plot.score_intervals(un, predictors=["nope"])
