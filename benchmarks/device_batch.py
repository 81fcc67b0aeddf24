"""Run a batch of `lightning-ser cv` / `sweep` jobs on a lent GPU that cannot see the corpus.

The GPU machines this project borrows get a copy of the repository and nothing else (no corpus,
no internet, at most 64 MiB carried, about ten minutes a command). Three steps make one such
lease useful:

    # here, beside the corpus: the feature cache, packed losslessly (frames byte-shuffled + zlib);
    # with --speeds 1.0,0.9,1.1 also the speed-perturbed tables (then as base coefficients)
    python benchmarks/device_batch.py pack --root ../shared/data/ravdess --to .devdata
    git rev-parse --short HEAD > .devdata/commit
    # there: the cache restored, keyed to empty stand-in files of the same names, sizes and
    # modification times (no audio travels, and none is decoded: the CRC-32 is checked on load)
    python benchmarks/device_batch.py unpack --from .devdata --root /data/ravdess
    # there: the jobs of a plan, several at once on the one GPU, highest priority first;
    # no job starts after --stop-starting seconds, all are stopped at --deadline
    python benchmarks/device_batch.py run --plan benchmarks/device_plan.txt --slots 12 ...

A plan has one job per line, `<slots> <folder> <lightning-ser arguments>`, `{root}` standing for
the corpus root and `{out}` for the results folder; `#` starts a comment. Each job's output goes
to `<out>/logs/<n>.log`, and `jobs.csv` records when each started and ended and how.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import torch

from lightning_ser.data import dsp
from lightning_ser.data.cache import FeatureTable, cache_key, file_stamps, load_table, save_table
from lightning_ser.data.datamodule import EmotionDataModule
from lightning_ser.data.locations import default_cache_dir


def shuffled_bytes(frames: np.ndarray) -> bytes:
    """float32 frames, byte-shuffled (bytes of equal significance together) and compressed."""
    return zlib.compress(frames.view(np.uint8).reshape(-1, 4).T.copy().tobytes(), 6)


def unshuffled(blob: bytes, rows: int, cols: int) -> np.ndarray:
    raw = np.frombuffer(zlib.decompress(blob), dtype=np.uint8)
    return raw.reshape(4, -1).T.copy().view(np.float32).reshape(rows, cols)


def pack(root: Path, corpus: str, to: Path, speeds: list[float]) -> None:
    """Write the cached features of `root`'s files at `speeds` plus their names, sizes and
    modification times to `to`. One speed travels whole (bit-exact); with several (64 MiB hold
    about three RAVDESS tables only as base coefficients), each travels as its base coefficients
    and `unpack` recomputes the deltas with the library's own function (float rounding aside,
    the same features)."""
    data = EmotionDataModule(root=str(root), corpus=corpus)
    table = data.load_features()
    base = data.features.n_features // (1 + data.features.deltas)
    to.mkdir(parents=True, exist_ok=True)
    tables = {}
    for speed in speeds:
        t = table if speed == 1.0 else data.speed_table(speed)
        frames = t.frames.numpy() if len(speeds) == 1 else t.frames[:, :base].contiguous().numpy()
        (to / f"frames_{speed:g}.z").write_bytes(shuffled_bytes(frames))
        tables[f"{speed:g}"] = {"shape": list(frames.shape), "offsets": t.offsets.tolist()}
        tables[f"{speed:g}"]["paths"] = [os.path.relpath(p, root) for p in t.paths]
    stats = {p: os.stat(p) for p in table.paths}
    meta = {
        "corpus": corpus,
        "tables": tables,
        "files": [
            [os.path.relpath(p, root), stats[p].st_size, stats[p].st_mtime_ns] for p in table.paths
        ],
    }
    (to / "meta.json").write_text(json.dumps(meta))
    print(f"packed {len(table.paths)} files' features at speeds {speeds} into {to}")


def unpack(source: Path, root: Path) -> None:
    """Recreate the caches for stand-ins of the packed files under `root` (same size and time)."""
    meta = json.loads((source / "meta.json").read_text())
    root = root.absolute()
    for rel, size, mtime_ns in meta["files"]:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as handle:
            handle.truncate(size)
        os.utime(path, ns=(mtime_ns, mtime_ns))
    data = EmotionDataModule(root=str(root), corpus=meta["corpus"])
    listed = [str(u.path) for u in data.utterances]
    if sorted(listed) != sorted(str(root / rel) for rel, _, _ in meta["files"]):
        raise SystemExit(f"the corpus under {root} lists other files than were packed")
    folder = Path(data.cache_dir) if data.cache_dir else default_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    for name, packed in meta["tables"].items():
        speed = float(name)
        config = dataclasses.replace(data.features, speed=speed)
        paths = [str(root / rel) for rel in packed["paths"]]
        frames = torch.from_numpy(
            unshuffled((source / f"frames_{name}.z").read_bytes(), *packed["shape"])
        )
        offsets = torch.tensor(packed["offsets"])
        if frames.shape[1] < config.n_features:  # base coefficients: deltas as features.py does
            utterances = []
            for i in range(len(paths)):
                parts = [frames[offsets[i] : offsets[i + 1]]]
                for _ in range(config.deltas):
                    parts.append(dsp.deltas(parts[-1], config.delta_window))
                utterances.append(torch.cat(parts, dim=1))
            frames = torch.cat(utterances)
        stamps = {p: (size, mtime, ctime) for p, size, mtime, ctime in file_stamps(paths)}
        table = FeatureTable(frames, offsets, paths, config, [], stamps)
        prefix = data.cache_name if speed == 1.0 else data.speed_cache_name(speed)
        target = folder / f"{prefix}-{cache_key(paths, config)}.pt"  # the packed order: listed
        save_table(table, target)
        load_table(target, config)  # checks the CRC-32 the way every run will
        print(f"unpacked {len(paths)} files' features at speed {name} into {target}")


def read_plan(plan: Path, root: str, out: Path) -> list[tuple[int, str, list[str]]]:
    jobs = []
    for line in plan.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            slots, folder, *args = shlex.split(line.format(root=root, out=out))
            jobs.append((int(slots), folder, args))
    return jobs


def stop(proc: subprocess.Popen) -> int:
    """Stop a job and everything it started (its process group)."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            return proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue
    return proc.wait()


def run(plan: Path, root: str, out: Path, slots: int, stop_starting: float, deadline: float) -> int:
    """Start the plan's jobs in order while slots are free; stop everything at the deadline.

    A job is not started when a finished job of the same folder took longer than the time left.
    """
    start = time.monotonic()
    (out / "logs").mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    pending = read_plan(plan, root, out)
    running: dict[int, tuple[subprocess.Popen, int, float, str, list[str]]] = {}
    took: dict[str, float] = {}
    records = []
    n = 0
    while pending or running:
        now = time.monotonic() - start
        for key, (proc, _, began, folder, args) in list(running.items()):
            code = proc.poll()
            if code is None and now < deadline:
                continue
            if code is None:
                stop(proc)
                how = "stopped at the deadline"
            else:
                how = "finished" if code == 0 else f"failed ({code})"
                took[folder] = max(took.get(folder, 0.0), now - began)
            records.append([key, folder, began, round(now, 1), how, shlex.join(args)])
            print(f"[{now:5.0f}s] job {key} {how} after {now - began:.0f}s", flush=True)
            del running[key]
        free = slots - sum(job[1] for job in running.values())
        for job in list(pending):
            need, folder, args = job
            if need > free:
                break
            pending.remove(job)
            if now >= stop_starting or took.get(folder, 0.0) > deadline - now:
                records.append(["-", folder, "-", "-", "not started (no time)", shlex.join(args)])
                continue
            log = open(out / "logs" / f"{n}.log", "w")  # noqa: SIM115 - closed with the process
            command = [sys.executable, "-m", "lightning_ser", *args]
            proc = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, process_group=0
            )
            running[n] = (proc, need, round(now, 1), folder, args)
            print(f"[{now:5.0f}s] job {n} started: {shlex.join(args)}", flush=True)
            free -= need
            n += 1
        time.sleep(2)
    with open(out / "jobs.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["job", "folder", "started_s", "ended_s", "outcome", "arguments"])
        writer.writerows(records)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="verb", required=True)
    p = sub.add_parser("pack")
    p.add_argument("--root", type=Path, required=True)
    p.add_argument("--corpus", default="ravdess")
    p.add_argument("--to", type=Path, required=True)
    p.add_argument("--speeds", default="1.0", help="comma-separated, e.g. 1.0,0.9,1.1")
    u = sub.add_parser("unpack")
    u.add_argument("--from", dest="source", type=Path, required=True)
    u.add_argument("--root", type=Path, required=True)
    r = sub.add_parser("run")
    r.add_argument("--plan", type=Path, required=True)
    r.add_argument("--root", required=True)
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--slots", type=int, default=8)
    r.add_argument("--stop-starting", type=float, default=420)
    r.add_argument("--deadline", type=float, default=540)
    a = parser.parse_args()
    if a.verb == "pack":
        pack(a.root, a.corpus, a.to, [float(v) for v in a.speeds.split(",")])
    elif a.verb == "unpack":
        unpack(a.source, a.root)
    else:
        return run(a.plan, a.root, a.out, a.slots, a.stop_starting, a.deadline)
    return 0


if __name__ == "__main__":
    sys.exit(main())
