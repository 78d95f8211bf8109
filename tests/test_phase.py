"""The phase family is what its pre-registration says (paper/preregistration.md, Amendment 1)."""

import itertools
import re
from pathlib import Path

import numpy as np

from rgnet.sweep import load_spec
from rgnet.tasks import resolve_params

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "scripts" / "phase_family.toml"
AMENDMENT = " ".join((ROOT / "paper" / "preregistration.md").read_text().split("## Amendment 1")[1].split())


def test_the_spec_is_the_preregistered_grid_seeds_and_pairs():
    spec = load_spec(SPEC)
    params = {r.label: resolve_params(r.config.task) for r in spec.runs}
    swaps = sorted({p["swaps"] for p in params.values()})
    noise = sorted({p["corr_noise_scale"] for p in params.values()})
    assert f"`swaps` in {{{', '.join(map(str, swaps))}}}" in AMENDMENT
    assert f"`corr_noise_scale` in {{{', '.join(map(str, noise))}}}" in AMENDMENT
    assert len(params) == len(swaps) * len(noise) == 16
    seeds = sorted({r.config.seed for r in spec.runs})
    assert seeds == list(range(12)) and "12 seeds (0-11)" in AMENDMENT
    cfg = spec.runs[0].config
    assert (cfg.prune.levels, cfg.prune.fraction, cfg.train.steps) == (8, 0.2, 2000)
    assert "8 levels at p = 0.2" in AMENDMENT and "2000 steps per level" in AMENDMENT
    assert spec.transfers.levels == (2, 4, 6, 8) and "levels 2, 4, 6, 8" in AMENDMENT

    cell = {k: (swaps.index(p["swaps"]), noise.index(p["corr_noise_scale"])) for k, p in params.items()}
    dist = lambda a, b: abs(cell[a][0] - cell[b][0]) + abs(cell[a][1] - cell[b][1])  # noqa: E731
    pairs = list(spec.transfers.pairs)
    neighbours = [p for p in pairs if dist(*p) == 1]
    assert len(neighbours) == 48 and set(neighbours) == {(a, b) for a, b in itertools.permutations(cell, 2)
                                                          if dist(a, b) == 1}
    # the distant pairs are the draw the amendment names, in the spec's task order
    order = list(params)
    far = [(a, b) for a in order for b in order if dist(a, b) >= 2]
    drawn = [far[k] for k in sorted(np.random.default_rng(2026).choice(len(far), 16, replace=False))]
    assert pairs[48:] == drawn and "16 distant ordered pairs" in AMENDMENT and "`default_rng(2026)`" in AMENDMENT


def test_the_amendment_names_the_primary_the_paper_uses():
    import importlib.util

    mod = importlib.util.spec_from_file_location("paper_make", ROOT / "paper" / "make.py")
    make = importlib.util.module_from_spec(mod)
    mod.loader.exec_module(make)
    assert f"**Amended primary predictor**: the `{make.PHASE_PRIMARY}` signature" in AMENDMENT
    assert f"`tau_w({make.PHASE_PRIMARY}) - tau_w({make.PHASE_VERSUS})`" in AMENDMENT
    assert re.search(r"signatures, classes and the baselines that read runs from seeds 0-5", AMENDMENT)
    derive = (ROOT / "scripts" / "phase_derive.py").read_text()
    assert 'SIGNATURE_SEEDS = "0-5"' in derive
