"""Download and unpack the public speech-emotion corpora (currently the RAVDESS speech archive).

Why this exists: RAVDESS is a ~200 MB zip on Zenodo. Plain ``urlretrieve`` starts over after every
dropped connection, never checks what it got, and ``ZipFile.extractall`` writes wherever a member
name points. This module instead

* downloads to ``<file>.part`` and resumes it with an HTTP ``Range`` request,
* verifies the size and the md5 checksum Zenodo publishes before the file gets its real name,
* extracts into a temporary folder next to the target and renames it into place, refusing any
  member that would land outside it (zip-slip), so the target is either complete or untouched.

Only the standard library and tqdm are used. Run it as
``python -m lightning_ser.data.download ravdess data/ravdess``.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import logging
import os
import re
import shutil
import stat
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

from tqdm import tqdm

from .locations import default_cache_dir

__all__ = [
    "ARCHIVES",
    "RAVDESS_SPEECH",
    "Archive",
    "DownloadError",
    "default_download_dir",
    "download_corpus",
    "fetch",
    "main",
    "safe_extract",
]

log = logging.getLogger(__name__)

_USER_AGENT = "lightning-ser-downloader/0.1 (+https://zenodo.org/records/1188976)"
_AUDIO_SUFFIXES = (".wav", ".flac")
_RESUME_HINT = "the partial download is kept; run the same command again to resume it"
#: How to do without the network, said whenever a download fails.
LOCAL_DATA_HINT = (
    "if you have the corpus already, point at it instead: `make run RAVDESS=/path/to/ravdess` "
    "or `--data.root /path/to/ravdess`"
)


class DownloadError(RuntimeError):
    """A download, checksum or extraction failed; the message names the URL or file and why."""


@dataclass(frozen=True)
class Archive:
    """Where a corpus archive lives and how to check it (``md5``/``size`` are None if unknown)."""

    name: str
    url: str
    md5: str | None
    size: int | None


RAVDESS_SPEECH = Archive(
    name="Audio_Speech_Actors_01-24.zip",
    url="https://zenodo.org/records/1188976/files/Audio_Speech_Actors_01-24.zip?download=1",
    md5="bc696df654c87fed845eb13823edef8a",
    size=208468073,
)

ARCHIVES: dict[str, Archive] = {"ravdess": RAVDESS_SPEECH}


# --------------------------------------------------------------------------------------------
# fetch
# --------------------------------------------------------------------------------------------


def _md5(path: Path, chunk_size: int = 1 << 20) -> str:
    """Return the hex md5 of a file, read in chunks so large archives need little memory."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()


def _network_error(url: str, err: BaseException, part: Path | None = None) -> DownloadError:
    """Wrap a urllib/socket error into a DownloadError that names the URL, how to resume (only
    when some bytes arrived) and how to use local data instead."""
    if isinstance(err, urllib.error.HTTPError):
        what = f"HTTP {err.code} {err.reason}"
    elif isinstance(err, urllib.error.URLError):
        what = str(err.reason)
    elif isinstance(err, TimeoutError):
        what = f"timed out ({err})" if str(err) else "timed out"
    else:
        what = f"{type(err).__name__}: {err}"
    kept = part is not None and part.exists() and part.stat().st_size > 0
    resume = f"; {_RESUME_HINT}" if kept else ""
    return DownloadError(f"download of {url} failed: {what}{resume}; {LOCAL_DATA_HINT}")


def _content_range(header: str | None) -> tuple[int | None, int | None]:
    """Parse ``Content-Range: bytes START-END/TOTAL`` (or ``bytes */TOTAL``) into (start, total)."""
    if not header:
        return None, None
    match = re.fullmatch(r"\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)\s*", header)
    if match is None:
        return None, None
    start = int(match.group(1)) if match.group(1) is not None else None
    total = int(match.group(2)) if match.group(2) != "*" else None
    return start, total


def _transfer(
    url: str, part: Path, size: int | None, progress: bool, chunk_size: int, timeout: float
) -> None:
    """Bring ``part`` to the full file, resuming it when the server honours Range requests."""
    restarted = False
    while True:
        offset = part.stat().st_size if part.exists() else 0
        if size is not None and offset > size:
            log.info("%s is larger than the expected %d bytes; starting over", part, size)
            part.unlink()
            offset = 0
        if size is not None and offset == size and offset > 0:
            return  # a previous run got every byte; the checks in fetch() decide if it is good

        headers = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
            log.info("resuming %s at byte %d", url, offset)
        request = urllib.request.Request(url, headers=headers)
        try:
            response = urllib.request.urlopen(request, timeout=timeout)
        except urllib.error.HTTPError as err:
            if err.code == 416 and offset:
                _, total = _content_range(err.headers.get("Content-Range") if err.headers else None)
                err.close()
                if total == offset or (total is None and size in (None, offset)):
                    return  # nothing left to fetch: the part file already holds everything
                if not restarted:
                    log.info("server rejected the resume of %s; starting over", url)
                    part.unlink()
                    restarted = True
                    continue
            err.close()  # release the connection the error response holds
            raise _network_error(url, err, part) from err
        except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
            raise _network_error(url, err, part) from err

        with response:
            mode = "wb"
            if offset and response.status == 206:
                start, _ = _content_range(response.headers.get("Content-Range"))
                if start not in (None, offset):
                    if restarted:
                        raise DownloadError(
                            f"download of {url} failed: asked for bytes from {offset}, "
                            f"server sent bytes from {start}"
                        )
                    part.unlink()
                    restarted = True
                    continue
                mode = "ab"
            elif offset:
                log.info("server ignored the Range request for %s; starting over", url)
                offset = 0

            length_header = response.headers.get("Content-Length")
            length = int(length_header) if length_header and length_header.isdigit() else None
            total = offset + length if length is not None else size
            received = 0
            with (
                part.open(mode) as fh,
                tqdm(
                    total=total,
                    initial=offset,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=part.name.removesuffix(".part"),
                    disable=not progress,
                ) as bar,
            ):
                while True:
                    try:
                        chunk = response.read(chunk_size)
                    except (http.client.HTTPException, OSError) as err:
                        raise _network_error(url, err, part) from err
                    if not chunk:
                        break
                    fh.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        if length is not None and received < length:
            raise DownloadError(
                f"download of {url} was interrupted after {offset + received} of "
                f"{offset + length} bytes; {_RESUME_HINT}; {LOCAL_DATA_HINT}"
            )
        return


def fetch(
    url: str,
    dest: Path,
    md5: str | None = None,
    size: int | None = None,
    progress: bool = True,
    chunk_size: int = 1 << 20,
    timeout: float = 60,
) -> Path:
    """Download ``url`` to ``dest``, resumably and verified, and return ``dest``.

    Bytes go to ``dest.part`` first (resumed with ``Range: bytes=N-`` on the next call after an
    interruption); only a file that passed the ``size`` and ``md5`` checks is renamed to ``dest``
    (atomically), so ``dest`` never holds a truncated or corrupt download. An existing ``dest``
    whose checksum matches (or with ``md5=None``) is returned without touching the network.
    """
    dest = Path(dest).expanduser()
    if dest.is_file() and (size is None or dest.stat().st_size == size):
        if md5 is None or _md5(dest) == md5.lower():
            log.info("%s already present", dest)
            return dest
        log.warning("%s does not match md5 %s; downloading it again", dest, md5)

    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_suffix(dest.suffix + ".part")
    _transfer(url, part, size, progress, chunk_size, timeout)

    actual = part.stat().st_size if part.exists() else 0
    if size is not None and actual != size:
        part.unlink(missing_ok=True)
        raise DownloadError(
            f"download of {url} has {actual} bytes but {size} were expected; the partial file "
            f"{part} was deleted, run the same command again to download it afresh"
        )
    if md5 is not None:
        got = _md5(part)
        if got != md5.lower():
            part.unlink()
            raise DownloadError(
                f"checksum mismatch for {url}: expected md5 {md5.lower()}, got {got}; the "
                f"downloaded file {part} was deleted"
            )
    os.replace(part, dest)
    return dest


# --------------------------------------------------------------------------------------------
# safe_extract
# --------------------------------------------------------------------------------------------


def _check_member(info: zipfile.ZipInfo, root: Path, zip_path: Path) -> None:
    """Raise DownloadError if extracting ``info`` under ``root`` could write outside ``root``."""
    name = info.filename

    def refuse(why: str) -> DownloadError:
        return DownloadError(f"refusing to extract {zip_path}: member {name!r} {why}")

    if stat.S_ISLNK(info.external_attr >> 16):
        raise refuse("is a symbolic link")
    if not name or "\x00" in name:
        raise refuse("has an invalid name")
    win = PureWindowsPath(name)
    if PurePosixPath(name).is_absolute() or win.is_absolute() or win.drive or win.root:
        raise refuse("has an absolute path")
    if ".." in re.split(r"[/\\]", name):
        raise refuse("contains a '..' component")
    resolved = (root / name).resolve()
    if resolved != root and root not in resolved.parents:
        raise refuse("would be written outside the target folder")


def safe_extract(zip_path: Path, target: Path) -> Path:
    """Unpack ``zip_path`` into ``target`` atomically and safely; return ``target``.

    Every member is checked before anything is written: absolute paths, ``..`` components and
    symbolic links are refused (zip-slip). The archive is extracted into a temporary folder next to
    ``target`` (same filesystem) which is then renamed to ``target``; on any failure the temporary
    folder is removed and ``target`` is left as it was. A non-empty existing ``target`` is refused.
    """
    zip_path = Path(zip_path)
    target = Path(target).expanduser()
    if target.exists() and not target.is_dir():
        raise DownloadError(f"cannot extract {zip_path}: {target} exists and is not a folder")
    if target.is_dir() and any(target.iterdir()):
        raise DownloadError(
            f"refusing to extract {zip_path} into {target}: the folder exists and is not empty "
            "(remove it or pick another target)"
        )
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as err:
        raise DownloadError(f"{zip_path} is not a readable zip archive: {err}") from err

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".extracting", dir=target.parent))
    try:
        with archive:
            root = tmp.resolve()
            for info in archive.infolist():
                _check_member(info, root, zip_path)
            try:
                archive.extractall(tmp)
            except (zipfile.BadZipFile, OSError, EOFError) as err:
                raise DownloadError(f"extracting {zip_path} failed: {err}") from err
        if target.is_dir():
            target.rmdir()  # empty (checked above); rmdir fails loudly if that changed meanwhile
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


# --------------------------------------------------------------------------------------------
# download_corpus
# --------------------------------------------------------------------------------------------


def default_download_dir() -> Path:
    """Where archives are kept: ``downloads/`` in the feature cache's folder (~/.cache/...)."""
    return default_cache_dir() / "downloads"


def _has_audio(folder: Path) -> bool:
    """True if any ``*.wav``/``*.flac`` file exists anywhere below ``folder``."""
    if not folder.is_dir():
        return False
    return any(p.suffix.lower() in _AUDIO_SUFFIXES for p in folder.rglob("*") if p.is_file())


def _file_name(url: str, fallback: str) -> str:
    """The file name a mirror URL points at (its last path segment), else ``fallback``."""
    name = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".")
    return name or fallback


def download_corpus(
    name: str,
    target: str | Path,
    cache_dir: str | Path | None = None,
    url: str | None = None,
    md5: str | None = None,
    progress: bool = True,
) -> Path:
    """Download corpus ``name`` (see ``ARCHIVES``) and unpack it into ``target``; return ``target``.

    The archive is cached in ``cache_dir`` (default :func:`default_download_dir`) so a failed
    extraction does not cost another download. ``url``/``md5`` override the official source
    (mirrors, tests); with an overridden ``url`` and no ``md5`` the checksum is skipped but the
    archive must still open as a zip. A ``target`` that already holds audio is returned as is.
    """
    key = name.strip().lower()
    if key not in ARCHIVES:
        known = ", ".join(sorted(ARCHIVES))
        raise DownloadError(f"unknown corpus {name!r}; known corpora: {known}")
    archive = ARCHIVES[key]
    target = Path(target).expanduser()
    if _has_audio(target):
        log.info("%s already contains audio files; %s already downloaded", target, key)
        return target

    official = url is None and md5 is None
    source = url if url is not None else archive.url
    checksum = md5 if md5 is not None else (archive.md5 if url is None else None)
    size = archive.size if official else None
    file_name = archive.name if url is None else _file_name(source, archive.name)
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_download_dir()

    zip_path = fetch(source, cache / file_name, md5=checksum, size=size, progress=progress)
    try:
        with zipfile.ZipFile(zip_path):
            pass
    except (zipfile.BadZipFile, OSError) as err:
        zip_path.unlink(missing_ok=True)
        raise DownloadError(
            f"{zip_path} downloaded from {source} is not a valid zip archive ({err}); it was "
            "deleted, run the same command again to download it afresh"
        ) from err
    return safe_extract(zip_path, target)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m lightning_ser.data.download NAME TARGET [--cache-dir DIR]``."""
    parser = argparse.ArgumentParser(description="Download and unpack a speech emotion corpus.")
    parser.add_argument("name", choices=sorted(ARCHIVES), help="corpus to download")
    parser.add_argument("target", type=Path, help="folder to unpack the corpus into")
    parser.add_argument("--cache-dir", type=Path, default=None, help="where to keep the archive")
    parser.add_argument("--url", default=None, help="mirror URL instead of the official one")
    parser.add_argument("--md5", default=None, help="expected md5 of the archive at --url")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        path = download_corpus(
            args.name,
            args.target,
            cache_dir=args.cache_dir,
            url=args.url,
            md5=args.md5,
            progress=not args.no_progress,
        )
    except DownloadError as err:
        parser.exit(1, f"error: {err}\n")
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
