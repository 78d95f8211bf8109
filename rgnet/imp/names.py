"""What the IMP protocol calls things, without torch: branch names, level lists, the default rewind point.
``rgnet.sweep`` plans with these before anything trains."""

from __future__ import annotations

from rgnet.config import INT_LIMIT, RunConfig
from rgnet.errors import ConfigError, LimitError

ALIGN_SUFFIX = {"none": "", "inputs": "_align_inputs", "inputs+units": "_align_inputs_units"}


def transfer_name(source_run_id: str, align: str = "none", dense_output: bool = False) -> str:
    """The branch a transfer from run ``source_run_id`` writes into its target."""
    return f"transfer_{source_run_id}" + ("_dense_output" if dense_output else "") + ALIGN_SUFFIX[align]


def rewind_name(k: int) -> str:
    """The branch of the rewind baseline to iteration ``k``."""
    return f"rewind_{k}"


def baseline_names(kinds, cfg: RunConfig, rewind_to: int | None = None) -> list[str]:
    """The branches the baselines ``kinds`` of a run with config ``cfg`` write."""
    return [rewind_name(rewind_to if rewind_to is not None else default_rewind_to(cfg)) if kind == "rewind" else kind
            for kind in kinds]


def default_rewind_to(cfg: RunConfig) -> int:
    """The rewind baseline's iteration when none is given: 3 % of the budget if the trunk rewound to 0, else 0."""
    return max(1, round(0.03 * cfg.train.steps)) if cfg.prune.rewind == 0 else 0


MAX_ITEMS = 10_000  # seeds or levels one command may name


def parse_levels(text: str | None, flag: str = "--levels") -> list[int] | None:
    """``"3"``, ``"1-5"`` or ``"1,3,5-7"`` as a sorted list of non-negative integers (``None`` stays ``None``);
    ``flag`` names the option in messages (``--levels``, ``--seeds``)."""
    if text is None:
        return None
    out: set[int] = set()
    for part in text.split(","):
        a, sep, b = part.partition("-")
        try:
            lo, hi = int(a), int(b) if sep else int(a)
        except ValueError:
            raise ConfigError(f"{flag} {text!r} must look like 3, 1-5 or 1,3,5-7") from None
        if hi >= INT_LIMIT or hi - lo + 1 + len(out) > MAX_ITEMS:
            raise LimitError(f"{flag} {text!r} names more than {MAX_ITEMS:,} values, or values of 2**31 or more; "
                              "split the work (a sweep spec runs many seeds)")
        out.update(range(lo, hi + 1))
    if not out:
        raise ConfigError(f"{flag} {text!r} names nothing; use e.g. 1-5")
    return sorted(out)
