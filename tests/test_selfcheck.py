"""python -m posedenoise.selfcheck: passes on this machine's backends, and fails when an oracle disagrees."""
import json

import numpy as np
import pytest

from posedenoise import selfcheck


def test_selfcheck_passes_here_and_writes_its_rows(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        selfcheck.main(["--json", str(tmp_path / "rows.json")])
    out = capsys.readouterr().out
    rows = json.loads((tmp_path / "rows.json").read_text())["rows"]
    assert e.value.code == 0, out
    assert {r["check"] for r in rows} == set(selfcheck.CHECKS) and all(r["ok"] for r in rows)
    assert {r["backend"] for r in rows} >= {"torch"} and "checks passed" in out


def test_selfcheck_exits_1_and_names_the_check_that_fails(monkeypatch, capsys):
    real = selfcheck._np_argmax
    monkeypatch.setattr(selfcheck, "_np_argmax", lambda maps: real(maps) + np.float32(1))   # a wrong oracle
    monkeypatch.setattr(selfcheck, "CHECKS", {"argmax": selfcheck.check_argmax})
    with pytest.raises(SystemExit) as e:
        selfcheck.main([])
    assert e.value.code == 1 and "FAILED: " in capsys.readouterr().out
