"""The feature cache: all frames in one tensor plus offsets, built once, loaded in one read.

The cache file is keyed by the feature configuration and by each audio file's identity (path, size,
modification time), so a changed file or setting gives a new key and a rebuild, and a second run
with the same inputs decodes no audio. Files are written atomically (temporary file + rename); a
partial file, a corrupt one, or one whose frames were changed in place (a CRC-32 of the table is
stored and checked on load) is detected and rebuilt. Build workers die with their parent.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import math
import multiprocessing
import os
import re
import signal
import sys
import tempfile
import time
import zlib
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .corpora.base import OnBadFile
from .features import AudioError, FeatureConfig, FeatureExtractor
from .locations import default_cache_dir

log = logging.getLogger(__name__)

# 2: features from lightning_ser.data.dsp (same numbers as torchaudio's to float32 rounding).
# 3: a CRC-32 of frames and offsets is stored and verified on load.
CACHE_VERSION = 3
#: Failures named one by one in a message; the rest are in the listing file.
SHOWN_FAILURES = 5


class UnusableFilesError(ValueError):
    """Files without usable audio under on_bad_file="error"; the message lists them."""


def table_checksum(frames: torch.Tensor, offsets: torch.Tensor) -> int:
    """CRC-32 of the frames and offsets (zlib: about 1 GB/s, so a reload stays fast)."""
    crc = zlib.crc32(frames.contiguous().numpy().view(np.uint8))
    return zlib.crc32(offsets.contiguous().numpy().view(np.uint8), crc)


def failures_message(failures: Sequence[tuple[str, str]], listing: Path | None) -> str:
    """`N file(s) without usable audio: a (why); b (why); ... [full list: FILE]`."""
    shown = "; ".join(f"{p} ({why})" for p, why in failures[:SHOWN_FAILURES])
    more = len(failures) - SHOWN_FAILURES
    rest = f"; and {more} more" if more > 0 else ""
    where = f" [full list: {listing}]" if listing is not None else ""
    return f"{len(failures)} file(s) without usable audio: {shown}{rest}{where}"


def write_listing(path: Path, failures: Sequence[tuple[str, str]]) -> Path | None:
    """Write `path<TAB>reason` lines (None when the folder is not writable)."""
    try:
        path.write_text("".join(f"{p}\t{why}\n" for p, why in failures))
    except OSError:
        return None
    return path


def writable(folder: Path) -> bool:
    """Whether files can be created in `folder` (created if missing)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


@dataclass
class FeatureTable:
    """All utterances' frames stacked: utterance i is `frames[offsets[i]:offsets[i + 1]]`."""

    frames: torch.Tensor
    offsets: torch.Tensor
    paths: list[str]
    config: FeatureConfig
    failures: list[tuple[str, str]] = field(default_factory=list)
    stamps: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # size, mtime, ctime

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def lengths(self) -> torch.Tensor:
        """Frames per utterance."""
        return self.offsets[1:] - self.offsets[:-1]

    def utterance(self, i: int) -> torch.Tensor:
        """Frames [T, n_features] of utterance i."""
        return self.frames[self.offsets[i] : self.offsets[i + 1]]

    def select(self, rows: Sequence[int]) -> FeatureTable:
        """A table of the utterances `rows`, in that order."""
        frames = [self.utterance(i) for i in rows]
        return FeatureTable(
            torch.cat(frames) if frames else self.frames[:0],
            offsets_of(self.lengths[list(rows)]),
            [self.paths[i] for i in rows],
            self.config,
        )

    @staticmethod
    def joined(tables: Sequence[FeatureTable]) -> FeatureTable:
        """One table holding the utterances of `tables`, in order."""
        return FeatureTable(
            torch.cat([t.frames for t in tables]),
            offsets_of(torch.cat([t.lengths for t in tables])),
            [p for t in tables for p in t.paths],
            tables[0].config,
        )


def offsets_of(lengths: torch.Tensor) -> torch.Tensor:
    """Offsets [N + 1] of utterances of these lengths stacked one after another."""
    return torch.cat([torch.zeros(1, dtype=torch.long), lengths.long().cumsum(0)])


Stamp = tuple[str, int, int, int]  # path, size, mtime_ns, ctime_ns


def file_stamps(paths: Sequence[str], on_bad_file: OnBadFile = "error") -> list[Stamp]:
    """(path, size, mtime_ns, ctime_ns) per file.

    Path, size and mtime key the cache (a change of any gives a rebuild). The inode change time
    is only used when a rebuild reuses an older cache: any rewrite of a file updates it, even one
    that keeps size and mtime (`cp -p`, `touch -r`), so such a file is decoded again.
    A file that cannot be stat'ed is an AudioError, or with on_bad_file="skip" it is stamped
    (path, -1, -1, -1) and fails (and is skipped) at extraction like any unreadable file.
    """
    stamps = []
    for p in paths:
        try:
            st = os.stat(p)
        except OSError as err:
            if on_bad_file == "error":
                raise AudioError(p, f"cannot read file ({err.strerror})") from err
            stamps.append((str(p), -1, -1, -1))
            continue
        stamps.append((str(p), st.st_size, st.st_mtime_ns, st.st_ctime_ns))
    return stamps


def cache_key(paths: Sequence[str], config: FeatureConfig, on_bad_file: OnBadFile = "error") -> str:
    """Hash of the cache version, the feature configuration and every file's path, size, mtime."""
    return _key(file_stamps(paths, on_bad_file), config)


def _key(stamps: Sequence[Stamp], config: FeatureConfig) -> str:
    """The cache's name: files count by where they really are, so `--data.root data` and
    `--data.root /abs/data` (or a link to it) share one cache instead of building two, each
    counting the other as stale."""
    h = hashlib.sha256(f"v{CACHE_VERSION}:{config.key()}".encode())
    for path, size, mtime, _ in stamps:
        h.update(f"\0{os.path.realpath(path)}\0{size}\0{mtime}".encode())
    return h.hexdigest()[:20]


def stale_caches(
    cache_dir: str | Path, name: str, keep: Collection[Path], min_tmp_age_s: float = 3600.0
) -> list[Path]:
    """Cache files of `name` (its speed copies `name-speed<s>` included) other than those in
    `keep`, and interrupted builds' temporary files.

    Every change of a setting or of a file leaves the previous cache behind (it stays valid for
    those inputs); these are what `lightning-ser cache --prune` deletes. Temporary files count
    only when older than `min_tmp_age_s`, so a build running elsewhere keeps its own.
    """
    pattern = re.compile(rf"{re.escape(name)}(-speed[0-9.e+-]+)?-[0-9a-f]{{20}}\.pt(\..+\.tmp)?")
    now = time.time()
    found = []
    for path in sorted(Path(cache_dir).glob(f"{name}-*")):
        if path in keep or not pattern.fullmatch(path.name):
            continue
        try:  # another process may rename or delete it meanwhile
            if not path.is_file() or (
                path.suffix == ".tmp" and now - path.stat().st_mtime < min_tmp_age_s
            ):
                continue
        except FileNotFoundError:
            continue
        found.append(path)
    return found


_worker_extractor: FeatureExtractor | None = None


def _die_with_parent() -> None:
    """Ask Linux to kill this worker when its parent dies (also by SIGKILL), so a killed build
    never leaves workers behind; elsewhere the pool's own shutdown has to do."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass


def _init_worker(config: FeatureConfig) -> None:
    global _worker_extractor
    _die_with_parent()
    torch.set_num_threads(1)
    _worker_extractor = FeatureExtractor(config)


def _extract(path: str, extractor: FeatureExtractor | None = None) -> np.ndarray | str:
    """Worker job: features of one file, or the reason it failed."""
    extractor = extractor or _worker_extractor
    assert extractor is not None
    try:
        return extractor.from_file(path).numpy()
    except AudioError as err:
        return err.reason


def extract_all(
    paths: Sequence[str],
    config: FeatureConfig,
    workers: int | None = None,
    progress: bool = True,
    on_bad_file: OnBadFile = "error",
    reuse: Mapping[str, np.ndarray] | None = None,
) -> FeatureTable:
    """Compute features for every file in parallel over `workers` processes (default: all cores).

    `reuse` maps paths to frames already known, e.g. from an older cache of the same files;
    those files are not decoded again.
    """
    paths = [str(p) for p in paths]
    known: dict[str, np.ndarray | str] = dict(reuse or {})
    todo = [p for p in paths if p not in known]
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo)))
    bar = tqdm(total=len(todo), desc="features", unit="file", disable=not progress)
    if workers == 1:  # in this process: leave its torch thread count alone
        extractor = FeatureExtractor(config)
        for p in todo:
            known[p] = _extract(p, extractor)
            bar.update()
    else:
        # fork where there is one: workers inherit the imported torch instead of importing it again
        methods = multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        chunk = max(1, len(todo) // (workers * 64))  # small: idle workers at the end cost more
        with ProcessPoolExecutor(
            workers, ctx, initializer=_init_worker, initargs=(config,)
        ) as pool:
            for p, result in zip(todo, pool.map(_extract, todo, chunksize=chunk), strict=True):
                known[p] = result
                bar.update()
    bar.close()
    kept, arrays, failures = [], [], []
    for path in paths:
        result = known[path]
        if isinstance(result, str):
            failures.append((path, result))
        else:
            kept.append(path)
            arrays.append(result)
    lengths = torch.tensor([len(a) for a in arrays], dtype=torch.long)
    frames = (
        torch.from_numpy(np.concatenate(arrays))
        if arrays
        else torch.zeros(0, config.n_features, dtype=torch.float32)
    )
    return FeatureTable(frames, offsets_of(lengths), kept, config, failures)


def save_table(table: FeatureTable, path: Path) -> None:
    """Write the table atomically: a temporary file in the same folder, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "version": CACHE_VERSION,
        "frames": table.frames,
        "offsets": table.offsets,
        "checksum": table_checksum(table.frames, table.offsets),
        "paths": table.paths,
        "config": asdict(table.config),
        "failures": [list(f) for f in table.failures],
        "stamps": {p: list(stamp) for p, stamp in table.stamps.items()},
    }
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_table(path: Path, config: FeatureConfig, mmap: bool = False) -> FeatureTable:
    """Read a cache file (tensors and plain data only); ValueError when it is corrupt or foreign.

    `mmap` maps the frames instead of reading them (cheap when only a part is used).
    """
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as err:  # torch raises many types for a truncated or foreign file
        raise ValueError(f"unreadable cache file {path}: {err}") from err
    try:
        stored = asdict(FeatureConfig()) | payload["config"]  # later settings: their defaults
        if payload["version"] != CACHE_VERSION or stored != asdict(config):
            raise ValueError("written by another version or feature configuration")
        frames, offsets, paths = payload["frames"], payload["offsets"], payload["paths"]
        ok = (
            offsets.ndim == 1
            and len(offsets) == len(paths) + 1
            and int(offsets[0]) == 0
            and int(offsets[-1]) == frames.shape[0]
            and bool((offsets[1:] >= offsets[:-1]).all())
            and frames.shape[1] == config.n_features
        )
        if not ok:
            raise ValueError("frames and offsets do not agree")
        if payload["checksum"] != table_checksum(frames, offsets):  # mapped ones too: reuse
            raise ValueError("its frames do not match their checksum (changed in place)")
        failures = [tuple(f) for f in payload["failures"]]
        stamps = {p: tuple(int(v) for v in stamp) for p, stamp in payload["stamps"].items()}
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as err:
        raise ValueError(f"malformed cache file {path}: {err!r}") from err
    return FeatureTable(frames, offsets, list(paths), config, failures, stamps)


def reusable_results(
    cache_dir: Path,
    name: str,
    current: Path,
    config: FeatureConfig,
    stamps: Sequence[Stamp],
) -> tuple[dict[str, np.ndarray], Path | None]:
    """Frames an older cache of `name` with the same settings holds for unchanged files.

    The newest such cache is used; a file counts as unchanged when its path, size, mtime and
    inode change time all match. Files that failed there are not taken: they are tried again.
    Returns the frames by path and the cache they came from.
    """
    wanted = {path: (size, mtime, ctime) for path, size, mtime, ctime in stamps if size >= 0}

    def age(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except FileNotFoundError:
            return -math.inf

    older = [p for p in stale_caches(cache_dir, name, {current}) if p.suffix == ".pt"]
    for candidate in sorted(older, key=age, reverse=True):
        try:
            old = load_table(candidate, config, mmap=True)
        except (ValueError, FileNotFoundError):  # other settings or version, damaged, gone
            continue
        same = {p for p, stamp in old.stamps.items() if wanted.get(p) == stamp}
        frames = {p: old.utterance(i).numpy() for i, p in enumerate(old.paths) if p in same}
        return frames, candidate
    return {}, None


@dataclass
class CacheInfo:
    """Where the cache is and how it was obtained."""

    path: Path
    built: bool
    seconds: float


def load_or_build(
    paths: Sequence[str],
    config: FeatureConfig,
    cache_dir: str | Path | None = None,
    name: str = "corpus",
    workers: int | None = None,
    progress: bool = True,
    on_bad_file: OnBadFile = "error",
) -> tuple[FeatureTable, CacheInfo]:
    """Load the cache for these files and settings; build and save it when missing or stale.

    Files without usable audio are recorded in the cache either way (so a retry after fixing
    some decodes only those): with on_bad_file="skip" they are left out with a warning that
    names them, with "error" an UnusableFilesError lists them all at once. A cache folder that
    cannot be written keeps the features in memory, with a warning, instead of failing after
    the work is done.

    Raises:
        UnusableFilesError: on_bad_file="error" and some files have no usable audio.
    """
    start = time.perf_counter()
    cache_dir = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    if cache_dir.exists() and not cache_dir.is_dir():
        raise ValueError(f"data.cache_dir {cache_dir} is a file; name a folder")
    stamps = file_stamps(paths, on_bad_file)
    path = cache_dir / f"{name}-{_key(stamps, config)}.pt"
    table, built = None, False
    if path.exists():
        try:
            table = load_table(path, config)
            listed = sorted(table.paths + [f[0] for f in table.failures])
            if not listed or listed != sorted(map(str, paths)):
                log.warning("cache %s lists other files than asked for; rebuilding it", path)
                table = None
        except ValueError as err:
            log.warning("%s; rebuilding the feature cache", err)
    if table is None:
        built = True
        reuse, source = reusable_results(cache_dir, name, path, config, stamps)
        if reuse:
            log.info(
                "reusing the features of %d of %d files from %s", len(reuse), len(paths), source
            )
        can_save = writable(cache_dir)
        if not can_save:
            log.warning(
                "the feature cache folder %s is not writable: features are kept in memory only "
                "(set data.cache_dir to a writable folder to keep them)",
                cache_dir,
            )
        table = extract_all(paths, config, workers, progress, on_bad_file, reuse)
        table.stamps = {p: (size, mtime, ctime) for p, size, mtime, ctime in stamps}
        if can_save:
            save_table(table, path)
    if table.failures:
        listing = write_listing(path.with_suffix(".skipped.tsv"), table.failures)
        message = failures_message(table.failures, listing)
        if on_bad_file == "error":
            raise UnusableFilesError(f"{message} (set on_bad_file: skip to skip such files)")
        log.warning("skipped %s", message)
    return table, CacheInfo(path, built, time.perf_counter() - start)
