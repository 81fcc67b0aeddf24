"""docker/: the image installs through the Makefile and the compose services reserve GPUs.

No Docker engine is needed: the files are parsed, and `docker-compose config` (when installed)
validates the compose file the way Compose itself reads it.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DOCKER = REPO / "docker"
SERVICES = ("train", "test", "sweep-agent")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per Dockerfile instruction, continuation lines joined."""
    text = (DOCKER / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    instructions = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, args = line.strip().partition(" ")
            instructions.append((keyword.upper(), args.strip()))
    return instructions


def args_of(dockerfile: list[tuple[str, str]], keyword: str) -> list[str]:
    return [args for kw, args in dockerfile if kw == keyword]


@pytest.mark.parametrize("name", SERVICES)
def test_service_builds_the_image_and_reserves_all_gpus(compose: dict, name: str) -> None:
    service = compose["services"][name]
    build = service["build"]
    assert (DOCKER / build["context"] / build["dockerfile"]).resolve() == DOCKER / "Dockerfile"
    devices = service["deploy"]["resources"]["reservations"]["devices"]
    assert {"driver": "nvidia", "count": "all", "capabilities": ["gpu"]} in devices
    assert service["shm_size"] == "8gb"


@pytest.mark.parametrize("name", SERVICES)
def test_service_volumes_and_wandb_environment(compose: dict, name: str) -> None:
    service = compose["services"][name]
    assert "${SER_DATA:-../../shared/data}:/data:ro" in service["volumes"]
    # The default data folder is the one the repo's configs use (../shared/data from the root).
    assert (DOCKER / "../../shared/data").resolve() == (REPO / "../shared/data").resolve()
    assert any(v.endswith(":/runs") for v in service["volumes"])
    assert any(v.endswith(":/cache") for v in service["volumes"])
    environment = service["environment"]
    assert "WANDB_MODE" in environment
    assert "WANDB_API_KEY" in environment and environment["WANDB_API_KEY"] is None  # passthrough


def test_services_train_and_test_ravdess_with_the_config(compose: dict) -> None:
    services = compose["services"]
    train, test = services["train"]["command"], services["test"]["command"]
    assert train[:3] == ["fit", "-c", "conf/ravdess.yaml"]
    assert test[:3] == ["test", "-c", "conf/ravdess.yaml"]
    for command in (train, test):
        assert (REPO / command[2]).is_file()
        assert command[command.index("--data.root") + 1] == "/data/ravdess"
        assert "--trainer.logger.init_args.offline=false" in command  # WANDB_MODE decides
    assert test[test.index("--ckpt_path") + 1] == "best"
    assert "profiles" not in services["train"]
    assert services["test"]["profiles"]
    assert services["sweep-agent"]["profiles"]


def test_sweep_agent_runs_wandb_agent_on_sweep_id(compose: dict) -> None:
    service = compose["services"]["sweep-agent"]
    script = " ".join(service["entrypoint"])
    assert "wandb agent" in script and "SWEEP_ID" in script
    assert "SWEEP_ID" in service["environment"]
    assert service["environment"]["WANDB_MODE"].endswith("online}")


def test_dockerfile_installs_with_the_makefile_target(dockerfile: list) -> None:
    runs = args_of(dockerfile, "RUN")
    installs = [run for run in runs if re.search(r"\bmake install\b", run)]
    assert len(installs) == 1
    assert "VENV=/opt/venv" in installs[0]
    assert not any("pip install" in run for run in runs), "install steps belong in the Makefile"
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^install:", makefile, re.M)
    assert "/opt/venv/bin" in " ".join(args_of(dockerfile, "ENV"))  # the venv on PATH
    # What is copied before the install must exist (a rename would break the build).
    for copy in args_of(dockerfile, "COPY")[:-1]:
        for source in copy.split()[:-1]:
            if not source.startswith("--"):
                assert (REPO / source).exists(), source


def test_dockerfile_user_entrypoint_volumes_environment(dockerfile: list) -> None:
    base = args_of(dockerfile, "FROM")
    assert len(base) == 1 and base[0].split(":")[0] in ("python", "nvidia/cuda")
    users = args_of(dockerfile, "USER")
    assert users and users[-1] not in ("root", "0")
    keywords = [kw for kw, _ in dockerfile]
    # Installs run as root; the container runs as ser.
    assert keywords.index("USER") > max(i for i, kw in enumerate(keywords) if kw == "RUN")
    assert json.loads(args_of(dockerfile, "ENTRYPOINT")[-1]) == ["lightning"]
    cmd = json.loads(args_of(dockerfile, "CMD")[-1])
    assert cmd[:3] == ["fit", "-c", "conf/ravdess.yaml"]
    assert set(json.loads(args_of(dockerfile, "VOLUME")[-1])) == {"/data", "/runs", "/cache"}
    env = " ".join(args_of(dockerfile, "ENV"))
    for variable in ("XDG_CACHE_HOME=/cache", "WANDB_MODE=offline", "WANDB_DIR=/runs"):
        assert variable in env, variable
    packages = " ".join(args_of(dockerfile, "RUN"))
    assert "libsndfile1" in packages and "g++" in packages  # g++: the recipe's torch.compile
    assert any("ln -s /runs" in run for run in args_of(dockerfile, "RUN"))  # runs/ -> /runs


def test_dockerignore_keeps_outputs_out_and_sources_in() -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for excluded in (".venv", ".git", "runs", "wandb", ".cache", ".pytest_cache"):
        assert excluded in patterns, excluded

    def ignored(path: str) -> bool:
        """Docker's rule, roughly: a pattern matches a path from the root or one of its folders."""
        parts = Path(path).parts
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        return any(
            fnmatch.fnmatch(prefix, p) or (p.startswith("**/") and fnmatch.fnmatch(part, p[3:]))
            for p in patterns
            for prefix, part in zip(prefixes, parts, strict=True)
        )

    for needed in (
        "pyproject.toml",
        "Makefile",
        "README.md",
        "conf/ravdess.yaml",
        "lightning_ser/__init__.py",
        "lightning_ser/data/datamodule.py",
    ):
        assert (REPO / needed).exists(), needed
        assert not ignored(needed), needed


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed")
def test_docker_compose_config_validates() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SER_", "WANDB_"))}
    for profiles in ([], ["--profile", "test", "--profile", "sweep"]):
        result = subprocess.run(
            ["docker-compose", "-f", "docker/compose.yaml", *profiles, "config", "-q"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_run_with_a_misspelt_corpus_folder_says_so_and_downloads_nothing(tmp_path) -> None:
    shutil.copy(REPO / "Makefile", tmp_path / "Makefile")
    done = subprocess.run(
        ["make", "-o", ".venv/.installed", "run", "RAVDESS=/no/such/ravdess"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "RAVDESS=/no/such/ravdess: no such folder" in done.stderr
    assert "download" not in done.stdout + done.stderr.replace("RAVDESS=", "")
