"""Run every bad-input case of tests/bad_input_cases.py through the real `rgnet` command and print a table:
case, command, exit code, first line of the message, and whether every pre-existing file kept its sha256.

    python scripts/bad_input_table.py > bad_inputs.md      # about a minute on 2 cores
"""

from __future__ import annotations

import hashlib
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from bad_input_cases import CASES, expand, make_files  # noqa: E402


def snapshot(folder: Path) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        inputs = root / "inputs"
        inputs.mkdir()
        files = make_files(inputs)
        work = root / "work"
        work.mkdir()
        print("| case | command | exit | first line of the message | files unchanged |")
        print("|---|---|---|---|---|")
        failures = 0
        for name, argv, want, words in CASES:
            before = snapshot(root)
            p = subprocess.run(["rgnet", *expand(argv, files)], cwd=work, capture_output=True, text=True)
            same = snapshot(root) == before
            first = (p.stderr.strip().splitlines() or [""])[0].replace(str(inputs) + "/", "")
            ok = p.returncode == want and same and words in p.stderr
            failures += not ok
            shown = " ".join(shlex.quote(a) for a in expand(argv, files)).replace(str(inputs) + "/", "")
            print(f"| {name} | `rgnet {shown}` | {p.returncode} | {first.replace('|', '/')} | "
                  f"{'yes (sha256)' if same else 'NO'}{'' if ok else ' **UNEXPECTED**'} |")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
