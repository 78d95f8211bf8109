"""Plain-text tables for the terminal (read with h5py only, so that ``rgnet info`` starts fast)."""

from __future__ import annotations

import json
from pathlib import Path

from rgnet.config import STOP_RULES
from rgnet.store.check import verify
from rgnet.store.provenance import machine_lines, machine_summary, read_provenance
from rgnet.store.reader import branches, read_levels
from rgnet.store.writer import check_run_file


def level_table(path: str | Path) -> str:
    """Level, density, validation/test accuracy at the early-stop iteration, test accuracy at the end."""
    levels, v, attrs = read_levels(path, ["density", "val_acc", "test_acc", "stop_iteration", "test_acc_final",
                                          "diverged", "diverged_iteration"])
    lines = [f"run {attrs['run_id']}  ({path}, {int(attrs['levels_complete'])} levels complete, "
             f"schema {attrs['rgnet_schema']})",
             "level  density %  val acc %  test acc %  stop iter  test acc at end %"]
    for i, lv in enumerate(levels):
        diverged = "diverged" in v and v["diverged"][i] == 1
        lines.append(f"{int(lv):>5}  {100 * v['density'][i]:>9.1f}  {100 * v['val_acc'][i]:>9.1f}  "
                     f"{100 * v['test_acc'][i]:>10.1f}  {int(v['stop_iteration'][i]):>9}  "
                     f"{100 * v['test_acc_final'][i]:>17.1f}"
                     + (f"  diverged at iteration {int(v['diverged_iteration'][i])}" if diverged else ""))
    lines.append(f"(accuracies at the early-stop iteration = {_stop_rule(attrs)}, unless marked 'at end')")
    for group in branches(path):
        lv, b, _ = read_levels(path, ["test_acc"], group)
        lv = [int(x) for x in lv]
        done = f"{lv[0]}-{lv[-1]}" if lv and lv == list(range(lv[0], lv[-1] + 1)) else ",".join(map(str, lv))
        lines.append(f"{group} (levels {done or 'none'}): test acc % "
                     + " ".join(f"{100 * x:.1f}" for x in b["test_acc"]))
    return "\n".join(lines)


def provenance_report(path: str | Path) -> str:
    """The machine that created a run (CPU, torch and BLAS, threads, device; numpy, python, platform) and every
    later machine that committed levels to it, from its ``provenance`` and ``history`` attributes."""
    attrs = check_run_file(Path(path))
    p = read_provenance(attrs)
    if p is None:
        lines = ["recorded on: not recorded (the file was written before rgnet recorded its machine)"]
    else:
        lines = [f"recorded on: {machine_summary(p)}",
                 f"  numpy {p.get('numpy', '?')} (BLAS {p.get('numpy_blas') or 'unknown'}), python "
                 f"{p.get('python', '?')}, {p.get('platform', '?')}"
                 + (f", environment {' '.join(f'{k}={v}' for k, v in p['environment'].items())}"
                    if p.get("environment") else "")]
    later = machine_lines(attrs.get("history"))[1 if p is not None else 0:]  # the first is the creation's
    if later:
        lines += ["then committed on another machine (history):", *(f"  {x}" for x in later)]
    return "\n".join(lines)


def check_report(path: str | Path) -> tuple[bool, str]:
    """Verify every checksum of a run file and its tensor files: (ok, one line per problem or 'ok')."""
    problems = verify(path)
    if not problems:
        if int(check_run_file(Path(path))["rgnet_schema"]) < 2:
            return True, f"{path}: every variable read back (schema 1 has no checksums; `rgnet upgrade` adds them)"
        return True, (f"{path}: every variable read back and every checksum matched; coordinates and tensor files "
                      "(present, owned, of their level) checked")
    return False, "\n".join([f"{path}: damaged ({len(problems)} problem(s)):", *problems])


def _stop_rule(attrs: dict) -> str:
    rule = json.loads(attrs["config"])["train"].get("early_stop", "val_loss")  # files before it had val_loss
    return STOP_RULES.get(rule, rule)
