"""Every code example in README.md, read from the README itself so that the two cannot drift apart.

Python blocks run, in order, in one namespace, on the committed data (a block whose first line is
``# needs: ...`` names what it needs beyond this repository — a finished sweep, a SLURM cluster — and is only
compiled). Shell blocks: every ``rgnet`` command is parsed by the real argument parser (its ``[optional]``
parts dropped) and every script named exists; the main job itself runs in ../shared/checks/newcomer.sh and the
test suite.
"""

import os
import re
import shlex
import textwrap
from pathlib import Path

import pytest

from rgnet.cli import _parser

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = [(m.group(1), textwrap.dedent(m.group(2)), (ROOT / "README.md").read_text()[:m.start()].count("\n") + 1)
          for m in re.finditer(r"^ *```(\w*)\n(.*?)^ *```", (ROOT / "README.md").read_text(), re.S | re.M)]
PYTHON = [(code, line) for lang, code, line in BLOCKS if lang == "python"]
SHELL = [(code, line) for lang, code, line in BLOCKS if lang == "bash"]


def _commands(code: str) -> list[str]:
    """Shell lines with continuations joined and comments and ``[optional]`` parts removed."""
    joined = re.sub(r"\\\n\s*", " ", code)
    out = []
    for line in joined.splitlines():
        line = re.sub(r"\s+#.*$", "", line).strip()
        while re.search(r"\[[^\[\]]*\]", line):
            line = re.sub(r"\s*\[[^\[\]]*\]", "", line)
        if line and not line.startswith("#"):
            out.append(line)
    return out


def test_the_readme_has_the_examples_this_test_reads():
    assert len(PYTHON) >= 8 and len(SHELL) >= 15
    assert sum(code.lstrip().startswith("# needs:") for code, _ in PYTHON) <= 2   # nearly all of them run


@pytest.mark.parametrize("code, line", SHELL, ids=[f"line{line}" for _, line in SHELL])
def test_shell_examples_parse(code, line):
    parser = _parser()
    for command in _commands(code):
        for part in re.split(r"\s*&&\s*", command):
            words = shlex.split(part)
            if words[0] == "rgnet":
                try:
                    parser.parse_args(words[1:])
                except SystemExit as e:
                    pytest.fail(f"README line {line}: `{part}` does not parse (exit {e.code})")
            elif words[0] in ("python", "python3", "bash") and not words[1].startswith("-"):
                assert (ROOT / words[1]).is_file(), f"README line {line}: {words[1]} does not exist"


@pytest.mark.slow
def test_python_examples_run(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for name in ("data", "scripts"):                 # outputs (flow.pdf, ...) land in a scratch folder
        os.symlink(ROOT / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    ran = 0
    for code, line in PYTHON:
        compiled = compile(code, f"README.md:{line}", "exec")
        if code.lstrip().startswith("# needs:"):
            continue
        exec(compiled, namespace)   # noqa: S102  (the README's own examples)
        plt.close("all")
        ran += 1
    assert ran == len(PYTHON) - 2
