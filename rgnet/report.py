"""Plain-text tables for the terminal."""

from __future__ import annotations

from pathlib import Path

from rgnet.store import open_run


def level_table(path: str | Path) -> str:
    """Level, density, validation/test accuracy and early-stop iteration of each complete level."""
    ds = open_run(path)
    lines = [f"run {ds.attrs['run_id']}  ({path}, {int(ds.attrs['levels_complete'])} levels complete)",
             f"{'level':>5} {'density %':>9} {'val acc %':>9} {'test acc %':>10} {'stop iter':>9}"]
    for lv in range(ds.sizes["level"]):
        r = ds.isel(level=lv)
        lines.append(f"{int(r.level):>5} {100 * float(r.density):>9.1f} {100 * float(r.val_acc):>9.1f} "
                     f"{100 * float(r.test_acc):>10.1f} {int(r.stop_iteration):>9}")
    return "\n".join(lines)
