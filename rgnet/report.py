"""Plain-text tables for the terminal."""

from __future__ import annotations

from pathlib import Path

from rgnet.store import branches, open_run


def level_table(path: str | Path) -> str:
    """Level, density, validation/test accuracy at the early-stop iteration, test accuracy at the end."""
    ds = open_run(path)
    lines = [f"run {ds.attrs['run_id']}  ({path}, {int(ds.attrs['levels_complete'])} levels complete)",
             "level  density %  val acc %  test acc %  stop iter  test acc at end %"]
    for lv in range(ds.sizes["level"]):
        r = ds.isel(level=lv)
        diverged = "diverged" in r and int(r.diverged) == 1
        lines.append(f"{int(r.level):>5}  {100 * float(r.density):>9.1f}  {100 * float(r.val_acc):>9.1f}  "
                     f"{100 * float(r.test_acc):>10.1f}  {int(r.stop_iteration):>9}  "
                     f"{100 * float(r.test_acc_final):>17.1f}"
                     + (f"  diverged at iteration {int(r.diverged_iteration)}" if diverged else ""))
    lines.append("(accuracies at the early-stop iteration = minimum validation loss, unless marked 'at end')")
    for group in branches(path):
        b = open_run(path, group=group)
        lv = [int(v) for v in b.level.values]
        done = f"{lv[0]}-{lv[-1]}" if lv and lv == list(range(lv[0], lv[-1] + 1)) else ",".join(map(str, lv))
        lines.append(f"{group} (levels {done or 'none'}): test acc % "
                     + " ".join(f"{100 * v:.1f}" for v in b.test_acc.values))
    return "\n".join(lines)
