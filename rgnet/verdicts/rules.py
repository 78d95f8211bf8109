"""Verdict rules, as a registry: when a pruned network *matches* the dense one, and when a ticket *transfers*.

A rule is one :class:`Rule` entry: its name, its parameters with their defaults, and two decisions:

- ``decide(x, ref, dim, **params)``: accuracies ``x`` against the dense reference ``ref``, paired along ``dim``
  (the runs or seeds of one experiment) -> 1 (matching), 0 (not), -1 (undecided), NaN where ``x`` has no value;
- ``transfer(ds, **params)``: the transfer verdict per (source, target) of a transfer matrix (which holds the
  paired per-seed accuracies and the rule's own ladders) -> 1 (transfers), 0 (does not), -1 (undecided), NaN
  (not run).

Every verdict file records the rule's name, parameters and sentence. Adding a rule is one ``register(Rule(...))``
here (and its test).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import xarray as xr

from rgnet.errors import ConfigError

DEFAULT_TOLERANCE = 0.01
DEFAULT_MARGIN = 0.02   # non-inferiority margin: 2 points of accuracy
DEFAULT_ALPHA = 0.05    # one-sided level of each bound

# CF flags of a three-valued verdict
VERDICT_FLAGS = {"flag_values": np.array([-2, -1, 0, 1], dtype=np.int8),
                 "flag_meanings": "not_run undecided no yes"}


@dataclass(frozen=True)
class Rule:
    name: str
    decide: Callable[..., xr.DataArray]
    transfer: Callable[..., xr.DataArray]
    describe: Callable[..., str]          # describe(**params) -> the rule in one sentence
    params: dict[str, Any] = field(default_factory=dict)   # parameters and their defaults
    check: Callable[..., None] = lambda **params: None      # raises ConfigError on bad parameters
    on_gap: bool = False   # the transfer verdict reads the averaged paired gap (the number a matrix cell shows)


RULES: dict[str, Rule] = {}
DEFAULT_RULE = "noninferior"


def register(rule: Rule) -> Rule:
    RULES[rule.name] = rule
    return rule


def get_rule(name: str, **params) -> tuple[Rule, dict[str, Any]]:
    """The rule ``name`` and its parameters (defaults filled in, checked); ConfigError for an unknown rule or
    parameter."""
    if name not in RULES:
        raise ConfigError(f"unknown verdict rule {name!r}; choose one of {', '.join(RULES)}")
    rule = RULES[name]
    params = {k: v for k, v in params.items() if v is not None}   # None: the rule's default
    unknown = set(params) - set(rule.params)
    if unknown:
        flag = lambda k: f"{k} (--{k.replace('_', '-')})"  # noqa: E731  (the CLI's flag of a parameter)
        raise ConfigError(f"rule {name!r} takes no parameter {', '.join(flag(k) for k in sorted(unknown))}; it takes "
                          f"{', '.join(flag(k) for k in rule.params) or 'none'}")
    full = {**rule.params, **params}
    rule.check(**full)
    return rule, full


def rule_attrs(rule: Rule, params: dict[str, Any]) -> dict[str, str]:
    """What a verdict file records of its rule: name, parameters (JSON) and the sentence."""
    return {"rule_name": rule.name, "rule_params": json.dumps(params, sort_keys=True), "rule": rule.describe(**params)}


def winning_level(is_matching: xr.DataArray, acc: xr.DataArray, dim: str = "level") -> xr.DataArray:
    """The sparsest level reached while every trained level before it is matching (-1: none).

    Levels without an accuracy (NaN ``acc``: not trained, e.g. level 0 of a baseline) are skipped.
    """
    has = acc.notnull()
    lead = (is_matching.astype(bool) | ~has).astype(int).cumprod(dim).astype(bool) & has
    index = xr.DataArray(np.arange(acc.sizes[dim]), dims=dim)
    out = index.where(lead).max(dim).fillna(-1).astype(int)
    return out.assign_attrs(long_name="winning-ticket level: last of the leading run of matching levels (-1: none)")


# ---------------------------------------------------------------------------- one dense std (Frankle et al.)

def matching(acc, dense_mean, dense_std=None, tolerance: float = DEFAULT_TOLERANCE):
    """``acc >= dense_mean - dense_std``; where ``dense_std`` is None or NaN (one seed), ``dense_mean - tolerance``.

    Works elementwise on numbers, numpy arrays and DataArrays (NaN accuracies are not matching).
    """
    if dense_std is None:
        margin = tolerance
    elif isinstance(dense_std, xr.DataArray):
        margin = dense_std.fillna(tolerance)
    else:
        margin = np.where(np.isnan(dense_std), tolerance, dense_std)
    return acc >= dense_mean - margin


def check_tolerance(tolerance: float) -> None:
    if not (isinstance(tolerance, (int, float)) and np.isfinite(tolerance) and tolerance >= 0):
        raise ConfigError(f"--tolerance must be a finite number >= 0 (an accuracy difference, 0.01 = 1 point), got "
                          f"{tolerance}")


def _std(x: xr.DataArray, dim: str) -> xr.DataArray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return x.std(dim, ddof=1).where(x.count(dim) > 1)


def _one_std_decide(x: xr.DataArray, ref: xr.DataArray, dim: str, tolerance: float) -> xr.DataArray:
    mean = x.mean(dim)
    return matching(mean, ref.mean(dim), _std(ref, dim), tolerance).astype(float).where(mean.notnull())


def _one_std_transfer(ds: xr.Dataset, tolerance: float) -> xr.DataArray:
    """Transfers when the transferred ticket is matching at a pruned level and stays matching at least as deep
    as the target's own ticket, among the levels the pair was trained at."""
    own_win = winning_level(ds.own_matching, ds.own_acc.where(ds.n_transfers > 0))
    tr_win = winning_level(ds.transfer_matching, ds.transfer_acc)
    tested = ds.n_transfers.max("level") > 0
    return ((tr_win >= own_win) & (tr_win >= 0)).astype(float).where(tested).transpose("source", "target")


register(Rule(
    "one_dense_std", _one_std_decide, _one_std_transfer,
    lambda tolerance: ("matching = accuracy >= dense mean - dense std over seeds; with one seed, >= dense - "
                       f"{tolerance:g}; transfers = the transferred ticket stays matching at least as deep as the "
                       "target's own"),
    {"tolerance": DEFAULT_TOLERANCE}, check_tolerance))


# ---------------------------------------------------------------------------- paired non-inferiority

def mean_and_half_width(x: xr.DataArray, dim: str, level: float) -> tuple[xr.DataArray, xr.DataArray]:
    """Mean of ``x`` along ``dim`` and the t quantile ``level`` times its standard error (NaN under two values):
    a one-sided bound at ``level``, or a two-sided interval at ``2 * level - 1``."""
    from scipy.stats import t as student  # noqa: PLC0415  (scipy.stats takes a second to import)

    n = x.count(dim)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        q = xr.apply_ufunc(lambda k: student.ppf(level, np.maximum(k - 1, 1)), n)
        return x.mean(dim), q * _std(x, dim) / np.sqrt(n)


def noninferior(d: xr.DataArray, dim: str, margin: float, alpha: float) -> xr.DataArray:
    """Three-valued verdict on the mean of paired differences ``d`` along ``dim``: 1 where the one-sided
    ``1 - alpha`` lower t bound is above ``-margin`` (non-inferior), 0 where the upper bound is below ``-margin``
    (worse by more than the margin), -1 otherwise (undecided; always with fewer than two pairs); NaN where ``d``
    has no value."""
    mean, half = mean_and_half_width(d, dim, 1 - alpha)
    verdict = xr.where(mean - half > -margin, 1.0, xr.where(mean + half < -margin, 0.0, -1.0))
    return verdict.where(d.count(dim) > 0)


def check_noninferior(margin: float, alpha: float) -> None:
    if not (isinstance(margin, (int, float)) and np.isfinite(margin) and margin >= 0):
        raise ConfigError(f"the margin (--margin) must be a finite accuracy difference >= 0 (0.02 = 2 points), got "
                          f"{margin}")
    if not (isinstance(alpha, (int, float)) and 0 < alpha < 0.5):
        raise ConfigError(f"alpha (--alpha) must be a level between 0 and 0.5 (one-sided), got {alpha}")


def _noninferior_decide(x, ref, dim: str, margin: float, alpha: float) -> xr.DataArray:
    return noninferior(x - ref, dim, margin, alpha)


def _noninferior_transfer(ds: xr.Dataset, margin: float, alpha: float) -> xr.DataArray:
    """On the paired gap (transferred minus own ticket, same seed and level) averaged over the density range."""
    return noninferior(ds.gap_range_seed, "seed", margin, alpha).transpose("source", "target")


register(Rule(
    "noninferior", _noninferior_decide, _noninferior_transfer,
    lambda margin, alpha: (f"paired non-inferiority, margin {100 * margin:g} points, one-sided t bounds at "
                           f"{1 - alpha:g}: matching = the mean paired difference (level minus dense, same seed) is "
                           f"above -{100 * margin:g} points (lower bound), not matching = below it (upper bound), "
                           "else undecided; transfers alike on the gap transferred minus own ticket (same seed and "
                           "level) averaged over the density range"),
    {"margin": DEFAULT_MARGIN, "alpha": DEFAULT_ALPHA}, check_noninferior, on_gap=True))


def verdict_codes(v: xr.DataArray) -> xr.DataArray:
    """A verdict (1 / 0 / -1 / NaN) as int8 with CF flags (NaN -> -2, not run)."""
    return v.fillna(-2).astype(np.int8).assign_attrs(**VERDICT_FLAGS)
