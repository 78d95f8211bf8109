"""paper/: make.py builds figures, tables and paper.md from a data directory; the notebook runs on data/."""

import hashlib
import importlib.util
import os
import re
import shutil
import time
from pathlib import Path

import pytest
from conftest import small_config

import rgnet

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "paper" / "analysis.ipynb"
PHASE_NOTEBOOK = ROOT / "paper" / "phase.ipynb"


def load_make():
    spec = importlib.util.spec_from_file_location("paper_make", ROOT / "paper" / "make.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def make():
    return load_make()


@pytest.fixture(scope="module")
def small_data(tmp_path_factory) -> Path:
    """A data directory with the default job's layout: two seeds of a tiny run with a re-init baseline."""
    data = tmp_path_factory.mktemp("data")
    for seed in (0, 1):
        path = rgnet.record(small_config(seed=seed), data / "mnist1d-mlp" / f"seed{seed}.h5", progress=False)
        rgnet.run_baselines(path, ["reinit"], progress=False)
    return data


def placeholders(text: str) -> list[str]:
    return re.findall(r"\{[a-z_]+\}", text)


@pytest.mark.slow   # default suite under 3 minutes; .ci/run runs it
def test_make_writes_the_figures_tables_and_paper_it_has_data_for(make, small_data, tmp_path, capsys):
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "transfer_matrix.png").write_bytes(b"from an earlier run")
    assert make.main(["--data", str(small_data), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for name in ("ladder", "early_stop", "weight_flow", "flow_speed", "coupling_flow", "exponents", "dmd_spectra",
                 "ising_validation"):
        for ext in ("png", "pdf"):
            assert (tmp_path / "figures" / f"{name}.{ext}").stat().st_size > 1000, name
    for name in ("ladder", "winning", "early_stop", "flow_speed", "linearised_map", "ising_validation"):
        assert (tmp_path / "tables" / f"{name}.csv").is_file() and (tmp_path / "tables" / f"{name}.md").is_file()
    # what has no input is left out, said so, and not drawn
    for name in ("transfer_matrix", "roc", "class_graph", "aligned_transfer", "early_stopping_protocol"):
        assert not (tmp_path / "figures" / f"{name}.png").exists()
    assert re.search(r"protocol\s+left out: .*early_stopping\.nc does not exist", out)
    assert re.search(r"transfer_matrix\s+left out: .*transfer-family does not exist", out)
    assert re.search(r"wrote \d+ figures and tables .* in \d+\.\d s", out)
    # each step is announced as it starts, and timed (or said left out) when it ends, in that order
    lines = out.splitlines()
    for name in make.STEPS:
        start = [i for i, line in enumerate(lines) if re.search(rf"\] {name}\s+started$", line)]
        end = [i for i, line in enumerate(lines) if re.search(rf"\] {name}\s+(done in \d+\.\d s|left out: )", line)]
        assert len(start) == len(end) == 1 and start[0] < end[0], name
    paper = (tmp_path / "paper.md").read_text()
    assert not placeholders(paper) and "<!--" not in paper
    assert "*This part is left out:" in paper and "- protocol:" in paper


def test_paper_numbers_come_from_the_tables(make, small_data, tmp_path):
    import pandas as pd

    make.main(["--data", str(small_data), "--out", str(tmp_path), "--only", "ladder", "ising"])
    paper = (tmp_path / "paper.md").read_text()
    win = pd.read_csv(tmp_path / "tables" / "winning.csv").set_index(["metric", "arm"])
    w = win.loc[("test_acc", "imp")]
    assert f"IMP tickets stay matching down to **{100 * w.winning_density:.1f} %**" in paper
    assert f"{100 * w.dense_mean:.1f} ± {100 * w.dense_std:.1f} % test accuracy" in paper
    ising = pd.read_csv(tmp_path / "tables" / "ising_validation.csv").set_index("quantity")
    assert f"K* = {ising.loc['K*', 'recovered']:.6f} (exact 0.304689)" in paper
    assert "*This part is left out: not run (--only).*" in paper  # the steps not asked for


def test_every_number_of_the_text_must_be_in_a_table(make, tmp_path):
    import pandas as pd

    p = make.Paper(tmp_path, tmp_path / "out")
    p.table(pd.DataFrame({"arm": ["rewind_180"], "step": ["2->3"], "density": [0.8], "w": [-0.04812]}), "t")
    p.number(ok="80.0 % at step 180, 2 → 3; -4.8 points, −0.05", made_up="τ = 0.999 and 12", rgnet_version="0.1.0")
    p.count(n=7)
    assert make.untraceable(p) == {"made_up": ["0.999", "12"]}
    with pytest.raises(TypeError):
        p.count(half=1.5)  # a count is a whole number of rows


def test_figures_have_pinned_metadata_and_the_same_bytes_every_time(make, tmp_path, monkeypatch):
    import matplotlib.pyplot as plt
    from PIL import Image

    def draw():
        fig, ax = plt.subplots()
        ax.plot([0, 1], [1, 0])
        return fig

    make.save_figure(draw(), tmp_path / "a")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1234567890")  # a date matplotlib would write, were it asked to
    time.sleep(1.1)  # a creation date in seconds would differ
    make.save_figure(draw(), tmp_path / "b")
    for ext in ("pdf", "png"):
        assert (tmp_path / f"a.{ext}").read_bytes() == (tmp_path / f"b.{ext}").read_bytes(), ext
    pdf = (tmp_path / "a.pdf").read_bytes()
    assert b"CreationDate" not in pdf and b"Producer" not in pdf and b"atplotlib" not in pdf
    assert Image.open(tmp_path / "a.png").text == {}  # no Software (version) chunk


@pytest.mark.slow   # default suite under 3 minutes; .ci/run runs it
def test_make_twice_gives_byte_identical_outputs(make, small_data, tmp_path):
    steps = ["method", "ladder", "weight_flow", "coupling_flow", "exponents", "ising"]
    digests = []
    for out in (tmp_path / "one", tmp_path / "two"):
        assert make.main(["--data", str(small_data), "--out", str(out), "--only", *steps]) == 0
        digests.append({f.relative_to(out): hashlib.sha256(f.read_bytes()).hexdigest()
                        for f in sorted(out.rglob("*")) if f.is_file()})
    assert len(digests[0]) > 12 and digests[0] == digests[1]


@pytest.mark.slow   # default suite under 3 minutes; .ci/run runs it
def test_method_and_task_counts_are_read_from_the_run_files(make, small_data, tmp_path):
    """The main experiment and the family train for different numbers of steps, and the family's default task is
    the main experiment's task: the Method says both step counts, and the exponents count one task, not two."""
    import pandas as pd

    data = tmp_path / "data"
    shutil.copytree(small_data, data)
    for seed in (0, 1):
        rgnet.record(small_config(seed=seed, train={"steps": 40}),
                     data / "transfer-family" / f"default-s{seed}.h5", progress=False)
    out = tmp_path / "out"
    assert make.main(["--data", str(data), "--out", str(out), "--only", "method", "exponents"]) == 0
    paper = (out / "paper.md").read_text()
    assert "`mnist1d-mlp` (the main experiment): task mnist1d; model mlp" in paper
    assert "trained 60 steps per level" in paper and "trained 40 steps per level" in paper
    method = pd.read_csv(out / "tables" / "method.csv").set_index("experiment")
    assert method.loc["transfer-family", "steps"] == 40 and method.loc["transfer-family", "runs"] == 2
    exps = pd.read_csv(out / "tables" / "exponents.csv")
    assert set(exps.task) == {"default", "mnist1d-mlp"} and set(exps.task_key) == {"mnist1d"}
    assert "(2 groups, 1 distinct tasks: task mnist1d is fitted in 2 groups, default (40 steps per level) and " \
           "mnist1d-mlp (60 steps per level))" in " ".join(paper.split())


def test_the_primary_analysis_is_the_pre_registered_one(make):
    text = " ".join((ROOT / "paper" / "preregistration.md").read_text().split())
    assert f"**Primary predictor**: the `{make.PRIMARY}` signature" in text
    assert f"**Primary score**: `{make.PRIMARY_SCORE}`" in text
    holm = re.search(r"Holm-adjusted over the primary predictor and the baselines (.*?)\)", text)[1]
    assert re.findall(r"`(\w+)`", holm) == list(make.PREREGISTERED_BASELINES)
    assert f"p-value is below {make.DECISION_LEVEL:g}" in text
    assert make.role(make.PRIMARY) == "primary" and make.role("fingerprint") == "exploratory"


def test_the_committed_exponents_give_a_conjugate_pair_one_interval():
    import pandas as pd

    path = ROOT / "paper" / "tables" / "exponents.csv"
    if not path.is_file():
        pytest.skip("no committed exponents table")
    df = pd.read_csv(path).set_index(["task", "mode"])
    pairs = [(t, m, int(r.partner)) for (t, m), r in df.iterrows() if r.partner >= 0]
    assert pairs  # the committed data have rotations
    for t, m, q in pairs:
        for col in ("exponent", "exponent_lo", "exponent_hi", "abs_eigenvalue"):
            assert df.loc[(t, m), col] == df.loc[(t, q), col], (t, m, col)


def test_make_refuses_a_missing_data_directory(make, tmp_path, capsys):
    assert make.main(["--data", str(tmp_path / "nope"), "--out", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_member_labels_come_from_file_names(make, small_data, tmp_path):
    path = shutil.copy(small_data / "mnist1d-mlp" / "seed0.h5", tmp_path / "noise-s3.h5")
    assert make.member_labels([Path(path)]) == {"mnist1d": "noise"}  # task key -> the name in the file name
    assert make.member_labels([small_data / "mnist1d-mlp" / "seed0.h5"]) == {}  # named otherwise: the task key stays
    assert make.MEMBER.match("noise-s0-0123456789abcdef.h5")["label"] == "noise"  # a sweep's file name


@pytest.mark.slow
def test_make_on_a_tiny_family_with_transfers_and_a_cached_universality(make, small_data, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(small_data, data)
    family = data / "transfer-family"
    tasks = {"default": {"name": "mnist1d"}, "shuffled": {"name": "mnist1d", "params": {"shuffle_seq": True}}}
    files = {(t, s): rgnet.record(small_config(task=task, seed=s), family / f"{t}-s{s}.h5", progress=False)
             for t, task in tasks.items() for s in (0, 1)}
    for s in (0, 1):
        rgnet.run_baselines(files[("default", s)], ["random_prune_layerwise"], progress=False)
        rgnet.transfer(files[("default", s)], files[("shuffled", s)], progress=False)
        rgnet.transfer(files[("shuffled", s)], files[("default", s)], progress=False)
        rgnet.transfer(files[("default", s)], files[("shuffled", s)], align="inputs", progress=False)
    out = tmp_path / "out"
    t0 = time.perf_counter()
    assert make.main(["--data", str(data), "--out", str(out)]) == 0
    first = time.perf_counter() - t0
    for name in ("family_ladders", "transfer_matrix", "aligned_transfer", "class_graph"):
        assert (out / "figures" / f"{name}.png").is_file(), name
    printed = capsys.readouterr().out
    assert "universality: cached" not in printed
    assert re.search(r"universality\s+left out: the predictors were not scored: .*scoring needs 3", printed)
    paper = (out / "paper.md").read_text()
    assert not placeholders(paper) and "default → shuffled" in paper
    assert make.main(["--data", str(data), "--out", str(out), "--only", "classes"]) == 0
    assert "universality: cached (inputs unchanged)" in capsys.readouterr().out
    print(f"make.py on the tiny family: {first:.1f} s")


# ---- the notebook ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("notebook", [NOTEBOOK, PHASE_NOTEBOOK], ids=lambda p: p.name)
def test_notebook_is_stored_without_outputs(notebook):
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
    assert sum("plot." in c.source for c in code) >= 2  # reproduces paper figures through rgnet.plot


@pytest.mark.slow   # starts a Jupyter kernel
@pytest.mark.parametrize("notebook", [NOTEBOOK, PHASE_NOTEBOOK], ids=lambda p: p.name)
def test_notebook_runs_on_the_data_directory(notebook, tmp_path):
    import nbformat
    from nbclient import NotebookClient

    data = Path(os.environ.get("RGNET_PAPER_DATA", ROOT / "data"))
    if notebook == PHASE_NOTEBOOK and not (data / "phase" / "transfer.nc").is_file():
        pytest.skip(f"{data} holds no phase dataset (phase/*.nc) for the notebook")
    if notebook == NOTEBOOK and not any(next((data / d).glob("*.h5"), None) for d in ("mnist1d-mlp",
                                                                                     "transfer-family")):
        pytest.skip(f"{data} holds no recorded runs (mnist1d-mlp/*.h5, transfer-family/*.h5) for the notebook")
    nb = nbformat.read(notebook, as_version=4)
    env = {"RGNET_PAPER_DATA": str(data), "RGNET_PHASE_DATA": str(data / "phase")}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits the environment
    try:
        NotebookClient(nb, timeout=120, kernel_name="python3",
                       resources={"metadata": {"path": str(notebook.parent)}}).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert sum(o.output_type == "display_data" and "image/png" in o.get("data", {}) for o in outputs) >= 2
