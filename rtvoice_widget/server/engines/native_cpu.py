"""The CPU as native engine code sees it: its flags, what the llama.cpp build needs, safe load options.

Two failures this guards against, both seen on real machines:

- **AMX repacking crashes.** llama.cpp built with native flags on a CPU with AMX (Sapphire Rapids
  and later Xeons) repacks weights into its AMX "extra buffer type" at load; with our bundled
  GGUF that path ended in SIGSEGV in ``libggml-cpu.so`` at the first decode, while the same build
  loaded with ``use_extra_bufts = False`` answered normally. :func:`llama_extra_buffers` turns
  extra buffer types off where AMX is present and keeps them elsewhere: they also carry the
  AVX2/AVX-512 repacked layouts for Q4_0/Q4_K/IQ4_NL weights, which speed up prompt evaluation
  on the CPUs that never crashed (``bench/bench_native.py`` measures what turning them off costs).
- **A wheel built for another CPU.** pip caches the wheel it compiled, keyed by the source
  release, not by the CPU or ``CMAKE_ARGS``; a cache or container layer shared with a newer CPU
  hands an AVX-512 build to an AVX2 laptop, which dies with SIGILL. The build reports the
  instruction sets it was compiled for (``llama_print_system_info``); :func:`missing_features`
  compares them with the CPU's, so the engine refuses to load with the rebuild command instead
  of crashing.

``RTVOICE_LLAMA_EXTRA_BUFFERS`` = ``on`` | ``off`` | ``auto`` (default) overrides the choice.
Everything here is a pure function of strings except the two readers (:func:`cpu_flags`,
:func:`llama_build_features`), so the rules are tested with any CPU's flags on any machine.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

EXTRA_BUFFERS_ENV = "RTVOICE_LLAMA_EXTRA_BUFFERS"
AMX_FLAGS = frozenset({"amx_tile", "amx_int8", "amx_bf16", "amx_fp16", "amx_complex"})
LLAMA_CPP_PIN = "0.3.36"  # the version pyproject's test extra pins; the rebuild advice names it
#: The command that rebuilds llama-cpp-python for any x86-64-v3 (AVX2) or aarch64 CPU.
PORTABLE_REBUILD = (f'CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install --force-reinstall --no-deps '
                    f'--no-cache-dir llama-cpp-python=={LLAMA_CPP_PIN}')

# ggml's names in ``llama_print_system_info`` -> the Linux /proc/cpuinfo flag that must be there.
# x86 names from "flags", aarch64 ones from "Features" (NEON is "asimd", dot product "asimddp").
_FEATURE_FLAG = {
    "SSE3": "pni", "SSSE3": "ssse3", "AVX": "avx", "AVX2": "avx2", "F16C": "f16c", "FMA": "fma",
    "BMI2": "bmi2", "AVX_VNNI": "avx_vnni", "AVX512": "avx512f", "AVX512_VBMI": "avx512vbmi",
    "AVX512_VNNI": "avx512_vnni", "AVX512_BF16": "avx512_bf16", "AMX_INT8": "amx_int8",
    "NEON": "asimd", "FP16_VA": "asimdhp", "DOTPROD": "asimddp", "SVE": "sve",
    "MATMUL_INT8": "i8mm", "SME": "sme",
}


class NativeBuildMismatch(ImportError):
    """The installed native library was compiled for instructions this CPU does not have.

    An ``ImportError``: like a missing package, the engine cannot be used here until it is
    reinstalled, and the message says how."""


def cpu_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` text (read when not given); empty when
    unknown (not Linux): callers then assume nothing is missing."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                cpuinfo = f.read()
        except OSError:
            return frozenset()
    for line in cpuinfo.splitlines():
        name, _, value = line.partition(":")
        if name.strip().lower() in ("flags", "features"):  # the first core speaks for all
            return frozenset(value.split())
    return frozenset()


def llama_extra_buffers(flags: Iterable[str], setting: str | None = None) -> bool:
    """Whether llama.cpp may repack weights into extra buffer types (``use_extra_bufts``).

    ``setting`` is the ``RTVOICE_LLAMA_EXTRA_BUFFERS`` value (read when ``None``): ``on`` /
    ``off`` decide; ``auto`` or unset means off on a CPU with any AMX flag, on otherwise."""
    setting = (os.environ.get(EXTRA_BUFFERS_ENV, "auto") if setting is None else setting).strip().lower()
    if setting in ("on", "1", "true", "yes"):
        return True
    if setting in ("off", "0", "false", "no"):
        return False
    if setting not in ("auto", ""):
        raise ValueError(f"{EXTRA_BUFFERS_ENV} must be on, off or auto, got {setting!r}")
    return not (AMX_FLAGS & set(flags))


def build_features(system_info: str) -> frozenset[str]:
    """The instruction sets a ggml build was compiled for, from ``llama_print_system_info()``
    text (``"CPU : SSE3 = 1 | AVX = 1 | AVX512 = 0 | ..."``): the names set to 1."""
    return frozenset(name for name, on in re.findall(r"([A-Z0-9_]+) = (\d)", system_info) if on != "0")


def missing_features(system_info: str, flags: Iterable[str]) -> list[str]:
    """The build's instruction sets this CPU lacks (ggml's names, sorted); empty when the flags
    are unknown, or for names that are not instruction sets (``OPENMP``, ``REPACK``)."""
    flags = set(flags)
    if not flags:
        return []
    return sorted(name for name in build_features(system_info)
                  if name in _FEATURE_FLAG and _FEATURE_FLAG[name] not in flags)


def llama_build_features() -> str:
    """``llama_print_system_info()`` of the installed llama-cpp-python (imports it)."""
    import llama_cpp

    return llama_cpp.llama_print_system_info().decode("utf-8", "replace")


def check_llama_build(system_info: str | None = None, flags: Iterable[str] | None = None) -> None:
    """Raise :class:`NativeBuildMismatch` with the rebuild command when the installed llama.cpp
    build needs instructions this CPU lacks (reading both when not given)."""
    system_info = llama_build_features() if system_info is None else system_info
    missing = missing_features(system_info, cpu_flags() if flags is None else flags)
    if missing:
        raise NativeBuildMismatch(
            f"the installed llama-cpp-python was compiled for CPU instructions this CPU lacks "
            f"({', '.join(missing)}): probably built on another machine and reused from a shared "
            f"pip cache or image layer; it would crash with SIGILL. Rebuild it for this CPU: "
            f"{PORTABLE_REBUILD}"
        )
