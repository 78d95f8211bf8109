"""Verdict rules, as a registry: each rule says which accuracies *match* the dense network.

A rule is one :class:`Rule` entry: its name, its parameters with their defaults, the test itself (elementwise
on numbers, arrays and DataArrays) and the sentence that describes it. Every verdict file records the rule's
name, parameters and sentence. Adding a rule is one ``register(Rule(...))`` here (and its test).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import xarray as xr

from rgnet.errors import ConfigError

DEFAULT_TOLERANCE = 0.01


@dataclass(frozen=True)
class Rule:
    name: str
    matching: Callable[..., Any]          # matching(acc, dense_mean, dense_std, **params) -> bool, elementwise
    describe: Callable[..., str]          # describe(**params) -> the rule in one sentence
    params: dict[str, Any] = field(default_factory=dict)   # parameters and their defaults
    check: Callable[..., None] = lambda **params: None      # raises ConfigError on bad parameters


RULES: dict[str, Rule] = {}
DEFAULT_RULE = "one_dense_std"


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
        raise ConfigError(f"rule {name!r} takes no parameter {', '.join(sorted(unknown))}; it takes "
                          f"{', '.join(rule.params) or 'none'}")
    full = {**rule.params, **params}
    rule.check(**full)
    return rule, full


def rule_attrs(rule: Rule, params: dict[str, Any]) -> dict[str, str]:
    """What a verdict file records of its rule: name, parameters (JSON) and the sentence."""
    return {"rule_name": rule.name, "rule_params": json.dumps(params, sort_keys=True), "rule": rule.describe(**params)}


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


register(Rule(
    "one_dense_std", matching,
    lambda tolerance: ("matching = accuracy >= dense mean - dense std over seeds; with one seed, >= dense - "
                       f"{tolerance:g}"),
    {"tolerance": DEFAULT_TOLERANCE}, check_tolerance))


def winning_level(is_matching: xr.DataArray, acc: xr.DataArray, dim: str = "level") -> xr.DataArray:
    """The sparsest level reached while every trained level before it is matching (-1: none).

    Levels without an accuracy (NaN ``acc``: not trained, e.g. level 0 of a baseline) are skipped.
    """
    has = acc.notnull()
    lead = (is_matching.astype(bool) | ~has).astype(int).cumprod(dim).astype(bool) & has
    index = xr.DataArray(np.arange(acc.sizes[dim]), dims=dim)
    out = index.where(lead).max(dim).fillna(-1).astype(int)
    return out.assign_attrs(long_name="winning-ticket level: last of the leading run of matching levels (-1: none)")
