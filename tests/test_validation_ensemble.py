"""benchmarks/validation_ensemble.py: runs' validation answers alone and averaged."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from lightning_ser.cli import main

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "validation_ensemble.py"
CONF = Path(__file__).parent / "conf" / "tiny.yaml"


def load_script():
    spec = importlib.util.spec_from_file_location("validation_ensemble", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def run(tmp_path: Path, tiny_ravdess: Path, cache_dir: Path, monkeypatch) -> Path:
    """A tiny trained run folder with its split.json and checkpoints."""
    monkeypatch.chdir(tmp_path)
    args = ["-c", str(CONF), "--data.root", str(tiny_ravdess), "--data.cache_dir", str(cache_dir)]
    assert main(["fit", *args, "--model.softmax_epochs", "1", "--model.triplet_epochs", "1"]) == 0
    return tmp_path / "runs/ravdess/holdout/version_0"


def test_a_run_averaged_with_itself_answers_as_it_does_alone(run: Path, capsys) -> None:
    load_script().main([f"a={run}", f"b={run}", "--checkpoint", "last"])
    lines = capsys.readouterr().out.splitlines()[2:]
    table = dict(tuple(cell.strip() for cell in line.strip("|").split("|")) for line in lines)
    assert set(table) == {"a", "b", "a + b"}
    assert table["a"] == table["b"] == table["a + b"]


def test_runs_that_validate_on_other_utterances_are_refused(run: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    split = json.loads((run / "split.json").read_text())
    split["val_paths"] = split["val_paths"][1:]
    (other / "split.json").write_text(json.dumps(split))
    with pytest.raises(SystemExit):
        load_script().main([f"a={run}", f"b={other}"])


def test_the_mean_cosine_decides() -> None:
    confident_wrong = torch.tensor([[0.9, 0.0]])  # says "angry" strongly
    mildly_right = torch.tensor([[0.0, 0.95]])  # says "sad" a little more strongly
    wa = load_script().ensemble_wa([confident_wrong, mildly_right], ["angry", "sad"], ["sad"])
    assert wa == 100.0
