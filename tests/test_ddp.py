"""Two CPU processes (DDP over gloo) give the same evaluation as one process."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch.distributed as dist

from lightning_ser.cli import main

CONF = Path(__file__).parent / "conf" / "tiny.yaml"


def lightning(args: list[str], cwd: Path) -> None:
    """Run the real command line in a fresh process, as a user (and Lightning's launcher) does."""
    env = os.environ | {"WANDB_MODE": "disabled", "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "lightning_ser", *args]
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def read_test_metrics(run_dir: Path) -> dict[str, float]:
    with open(run_dir / "test_metrics.csv") as f:
        row = [r for r in csv.DictReader(f) if r.get("test/least_angle/wa")][-1]
    return {k: float(v) for k, v in row.items() if k.startswith("test/") and v}


def test_a_finished_command_destroys_the_process_group_it_leaves(tmp_path: Path) -> None:
    # a process group left open at exit can abort the process (status -6) after a DDP command
    # that succeeded; a one-process gloo group stands in for the one Lightning's DDP opens
    store = f"file://{tmp_path / 'store'}"
    dist.init_process_group("gloo", init_method=store, rank=0, world_size=1)
    assert main(["--help"]) == 0
    assert not dist.is_initialized()


@pytest.mark.slow
def test_two_process_ddp_matches_single_process(
    tmp_path: Path, tiny_ravdess: Path, cache_dir: Path
) -> None:
    data = ["--data.root", str(tiny_ravdess), "--data.cache_dir", str(cache_dir)]
    ddp = ["--trainer.accelerator", "cpu", "--trainer.strategy", "ddp", "--trainer.devices", "2"]
    lightning(["fit", "-c", str(CONF), *data, *ddp], tmp_path)
    run_dir = tmp_path / "runs" / "ravdess" / "holdout" / "version_0"
    best = run_dir / "checkpoints" / "best.ckpt"
    assert best.exists()

    lightning(["test", "-c", str(CONF), *data, *ddp, "--ckpt_path", str(best)], tmp_path)
    two = read_test_metrics(run_dir)
    report = (run_dir / "report" / "report.md").read_text()
    lightning(["test", "-c", str(CONF), *data, "--ckpt_path", str(best)], tmp_path)
    one = read_test_metrics(run_dir)
    assert two.keys() == one.keys() and "test/least_angle/wa" in one
    for key in one:
        assert two[key] == pytest.approx(one[key], abs=1e-6), key
    # the report gathered every rank's test utterances: same utterance count as one process
    assert report == (run_dir / "report" / "report.md").read_text()

    # predict: each device writes the predictions of its own share of the test part
    lightning(["predict", "-c", str(CONF), *data, *ddp, "--ckpt_path", str(best)], tmp_path)
    shares = [run_dir / f"test_predictions.rank{rank}.csv" for rank in (0, 1)]
    lightning(["predict", "-c", str(CONF), *data, "--ckpt_path", str(best)], tmp_path)
    rows = []
    for path in shares:
        with open(path) as f:
            rows += list(csv.DictReader(f))
    with open(run_dir / "test_predictions.csv") as f:
        whole = list(csv.DictReader(f))
    key = lambda r: r["path"]  # noqa: E731
    assert sorted(rows, key=key) == sorted(whole, key=key)
