"""W&B sweep files: grids of valid overrides that the real CLI parser accepts as W&B passes them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from lightning_ser.data.splits import make_split
from lightning_ser.lightning_cli import lightning_main
from lightning_ser.models import BACKBONES, build_backbone

REPO = Path(__file__).resolve().parents[1]
SWEEPS = REPO / "sweeps"
SWEEP_FILES = ("ablation.yaml", "folds.yaml", "speaker_folds.yaml", "recipe.yaml")
METRIC = "val/least_angle/wa"


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((SWEEPS / name).read_text())


def grid_values(config: dict[str, Any], key: str) -> list[Any]:
    """The values a grid sweep gives parameter `key` (`values: [...]` or a constant `value:`)."""
    spec = config["parameters"][key]
    return list(spec["values"]) if "values" in spec else [spec["value"]]


def render_args(params: dict[str, Any]) -> list[str]:
    """`${args}` of a W&B agent: `--key=value` per parameter (wandb's own renderer if present)."""
    try:
        from wandb.sdk.launch.sweeps.utils import create_sweep_command_args
    except ImportError:  # private module of wandb; the format is documented as --key=value
        return [f"--{key}={value}" for key, value in params.items()]
    rendered = create_sweep_command_args({"args": {k: {"value": v} for k, v in params.items()}})
    return rendered["args"]


def agent_argv(config: dict[str, Any], params: dict[str, Any]) -> list[str]:
    """The sweep's `command` as the agent runs it, minus `${env} lightning`."""
    argv: list[str] = []
    for part in config["command"][2:]:
        argv += render_args(params) if part == "${args}" else [str(part)]
    return argv


@pytest.fixture
def print_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture):
    """Parse an agent command line with the real CLI (`--print_config`) and return the config."""
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.chdir(REPO)  # the sweep commands read conf/... relative to the repo root

    def call(argv: list[str]) -> dict[str, Any]:
        # conf/ravdess.yaml points at ../shared/data/ravdess; --print_config reads no data, but
        # keep the parse independent of what exists there.
        with pytest.raises(SystemExit) as exit_info:
            lightning_main([*argv, "--data.root", str(tmp_path), "--print_config"])
        printed = capsys.readouterr().out
        assert exit_info.value.code in (0, None), printed
        return yaml.safe_load(printed)

    return call


@pytest.mark.parametrize("name", SWEEP_FILES)
def test_sweep_file_is_a_grid_over_the_configured_fit(name: str) -> None:
    config = load(name)
    assert config["method"] == "grid"
    assert config["metric"] == {"name": METRIC, "goal": "maximize"}
    command = config["command"]
    paper = name == "ablation.yaml"  # Table I: the paper's configuration, equal budgets
    assert command[:5] == [
        "${env}",
        "lightning",
        "fit",
        "-c",
        f"conf/ravdess{'_paper' if paper else ''}.yaml",
    ]
    assert command[-1] == "${args}"  # after -c: the sweep's values override the config's
    assert (REPO / command[4]).is_file()
    assert config["parameters"], "a sweep without parameters"
    for key in config["parameters"]:
        assert key.split(".")[0] in {"model", "data", "trainer"}, key


def test_ablation_grid_is_table_one() -> None:
    config = load("ablation.yaml")
    assert set(config["parameters"]) == {"model.backbone", "model.layers"}
    assert grid_values(config, "model.backbone") == ["fc", "cnn", "rnn", "lstm", "gru", "resnet"]
    assert grid_values(config, "model.layers") == list(range(6, 16))


def test_every_ablation_grid_point_builds() -> None:
    """No run of the 60 dies at model construction (e.g. a depth a family does not allow)."""
    config = load("ablation.yaml")
    for backbone in grid_values(config, "model.backbone"):
        assert backbone in BACKBONES
        for layers in grid_values(config, "model.layers"):
            build_backbone(backbone, layers, in_features=39, channels=8)


def test_every_recipe_grid_point_builds_its_model() -> None:
    """conf/ravdess.yaml's model with each run's overrides: none dies at construction (a pairing
    such as the recipe's centre_init with the triplet arm must still run)."""
    from itertools import product

    from lightning_ser.module import EmotionEmbeddingModule

    config = load("recipe.yaml")
    recipe = yaml.safe_load((REPO / "conf" / "ravdess.yaml").read_text())["model"]["init_args"]
    options = {k: v for k, v in recipe.items() if k != "optimizer"} | {"compile": False}
    model_axes = {
        key.removeprefix("model."): grid_values(config, key)
        for key in config["parameters"]
        if key.startswith("model.")
    }
    assert model_axes  # the recipe's ablation varies the model
    for values in product(*model_axes.values()):
        EmotionEmbeddingModule(**options | dict(zip(model_axes, values, strict=True)))


@pytest.mark.parametrize(
    ("name", "split", "n_folds", "groups"),
    [("folds.yaml", "kfold", 10, 24), ("speaker_folds.yaml", "speaker_kfold", 6, 24)],
)
def test_fold_grids_cover_every_fold_of_their_protocol(
    name: str, split: str, n_folds: int, groups: int
) -> None:
    config = load(name)
    assert grid_values(config, "data.split") == [split]
    assert grid_values(config, "data.n_folds") == [n_folds]
    assert grid_values(config, "data.fold") == list(range(n_folds))
    # Every fold is a valid split of a RAVDESS-sized corpus (24 speakers, 8 emotions), and the
    # folds' test parts partition it.
    labels = [str(i % 8) for i in range(groups * 16)]
    speakers = [f"actor{i // 16:02d}" for i in range(groups * 16)]
    tested: list[int] = []
    for fold in grid_values(config, "data.fold"):
        result = make_split(labels, speakers, protocol=split, fold=fold, n_folds=n_folds)
        tested += [int(i) for i in result.test]
    assert sorted(tested) == list(range(len(labels)))


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("ablation.yaml", {"model.backbone": "lstm", "model.layers": 7}),
        ("ablation.yaml", {"model.backbone": "fc", "model.layers": 15}),
        ("folds.yaml", {"data.split": "kfold", "data.n_folds": 10, "data.fold": 9}),
        ("speaker_folds.yaml", {"data.split": "speaker_kfold", "data.n_folds": 6, "data.fold": 5}),
    ],
)
def test_agent_command_parses_and_overrides_the_config(name: str, params: dict, print_config):
    config = load(name)
    assert set(params) == set(config["parameters"])
    for key, value in params.items():
        assert value in grid_values(config, key)
    printed = print_config(agent_argv(config, params))
    for key, value in params.items():
        section, field = key.split(".")
        assert printed[section]["init_args"][field] == value, key
    # The fixed flags reach the WandbLogger (offline: true would keep runs from the sweep).
    wandb_logger = printed["trainer"]["logger"][-1]
    assert wandb_logger["class_path"].endswith("WandbLogger")
    assert wandb_logger["init_args"]["offline"] is False
    assert wandb_logger["init_args"]["name"] is None
    run_logger = printed["trainer"]["logger"][0]
    assert run_logger["class_path"].endswith("RunLogger")
    assert "offline" not in run_logger["init_args"]


@pytest.mark.parametrize(
    ("name", "runs"), [("ablation.yaml", 60), ("folds.yaml", 10), ("speaker_folds.yaml", 6)]
)
def test_local_runner_expands_the_same_grid(name: str, runs: int) -> None:
    """`lightning-ser sweep FILE` trains the combinations a W&B agent would, with its arguments."""
    from lightning_ser.experiments import expand_sweep, sweep_arguments

    config = load(name)
    grid = expand_sweep(config)
    assert len(grid) == runs
    assert len({tuple(sorted(p.items())) for p in grid}) == runs
    for params in (grid[0], grid[-1]):
        assert ["fit", *sweep_arguments(config, params)] == agent_argv(config, params)
