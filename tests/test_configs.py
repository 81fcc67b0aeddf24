"""Every shipped configuration parses into a complete LightningCLI config."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lightning_ser.cli import dispatch

CONF = Path(__file__).parents[1] / "conf"
CONFIGS = sorted([*CONF.glob("*.yaml"), *CONF.glob("corpora/*.yaml")])


def is_overlay(config: Path) -> bool:
    """An overlay (a protocol, a corpus) changes settings of the recipe, not its model class."""
    return "class_path" not in (yaml.safe_load(config.read_text()).get("model") or {})


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_config_prints_complete(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = ["-c", str(CONF / "ravdess.yaml")] if is_overlay(config) else []
    with pytest.raises(SystemExit) as exit_info:
        dispatch(["fit", *files, "-c", str(config), "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["class_path"] == "lightning_ser.module.EmotionEmbeddingModule"
    assert printed["data"]["init_args"]["window_frames"] >= 1


def test_paper_config_matches_the_paper() -> None:
    paper = yaml.safe_load((Path(__file__).parents[1] / "conf" / "ravdess_paper.yaml").read_text())
    data, model = paper["data"]["init_args"], paper["model"]["init_args"]
    assert data["window_frames"] == 10 and data["batch_size"] == 900
    assert data["split"] == "holdout" and data["test_size"] == 0.3
    assert model["layers"] == 11 and model["blocks"] == 2
    assert model["softmax_epochs"] == 1000 and model["triplet_epochs"] == 1000
    assert model["optimizer"]["init_args"]["lr"] == 0.05 and model["lr_end_factor"] == 0.1
    stopping = paper["trainer"]["callbacks"][0]["init_args"]
    assert stopping == {"monitor": "val/least_angle/wa", "patience": 15, "min_delta": 0.0005}
