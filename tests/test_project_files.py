"""What the README promises about installing and about the files its commands leave behind."""
import ast
import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def install_requires():
    tree = ast.parse((ROOT / "setup.py").read_text())
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "setup")
    value = next(kw.value for kw in call.keywords if kw.arg == "install_requires")
    return [ast.literal_eval(e) for e in value.elts]


def test_the_plain_install_brings_what_experiments_report_draws_with():
    """`pip install -e .` (the README's first command) must be enough for `experiments report`."""
    names = [r.split(";")[0].split(">")[0].split("=")[0].split("<")[0].strip() for r in install_requires()]
    assert "matplotlib" in names


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="not a git checkout")
@pytest.mark.parametrize("path", ["penn.npz", "grid/conv3d/1.1/metrics.jsonl", "grid/figure1.png",
                                  "runs/dw-2.3/test.json", "runs/x/checkpoints/.last.pt.abcd1234.tmp"])
def test_the_readme_commands_outputs_are_ignored_by_git(path):
    r = subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=ROOT)
    assert r.returncode == 0, f"{path} is not ignored"


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="not a git checkout")
@pytest.mark.parametrize("path", ["posedenoise/train.py", "tests/test_train.py", "benchmarks/grid_bench.py"])
def test_sources_are_not_ignored(path):
    r = subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=ROOT)
    assert r.returncode == 1, f"{path} is ignored"
