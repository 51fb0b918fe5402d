"""Checkpoints are loaded with weights_only=True: a crafted pickle never runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from midebias.cli import main
from midebias.training import RunError, load_checkpoint


class _Payload:
    """Unpickling this calls exec, which writes a marker file: code run by a checkpoint."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


def _malicious_checkpoint(path: Path, marker: Path) -> None:
    torch.save({"model": {}, "config": {}, "x": _Payload(marker)}, path)


def test_payload_is_live_under_an_unsafe_load(tmp_path):
    """The test's payload really runs code when loaded the unsafe way (so the next tests
    mean something)."""
    marker = tmp_path / "marker"
    _malicious_checkpoint(tmp_path / "evil.pt", marker)
    torch.load(tmp_path / "evil.pt", weights_only=False)
    assert marker.exists()


def test_load_checkpoint_refuses_a_malicious_pickle(tmp_path):
    marker = tmp_path / "marker"
    _malicious_checkpoint(tmp_path / "evil.pt", marker)
    with pytest.raises(RunError, match="not a safe midebias checkpoint"):
        load_checkpoint(tmp_path / "evil.pt")
    assert not marker.exists()


@pytest.mark.slow
def test_audit_refuses_a_malicious_checkpoint_without_running_it(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--benchmark", "colored-mnist", "--source", "demo", "--epochs", "1"]
    argv += ["--train-size", "128", "--no-progress", "--no-audit", "--out", str(out)]
    assert main(argv) == 0
    before = (out / "metrics.json").read_text()
    marker = tmp_path / "marker"
    _malicious_checkpoint(out / "checkpoint.pt", marker)
    capsys.readouterr()
    rc = main(["audit", str(out)])
    err = capsys.readouterr().err
    assert rc != 0
    assert not marker.exists()
    assert "not a safe midebias checkpoint" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert (out / "metrics.json").read_text() == before  # nothing was written
    assert "bias_probe_accuracy" not in json.loads(before)
