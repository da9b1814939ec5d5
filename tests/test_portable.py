"""The installed llama-cpp-python runs on any x86-64 CPU with AVX2.

A native build (GGML_NATIVE, llama-cpp-python's default) compiles for whatever
the build machine's CPU flags advertise; on VMs that list AMX but fault on it,
the embedded model then dies with SIGILL on its first answer. requirements.txt
builds it with GGML_NATIVE=OFF and AVX2 as the ceiling. These tests read the
installed library itself, so a natively built wheel reused from pip's cache
(pip does not key its wheel cache on --config-settings) fails here loudly.
"""

from __future__ import annotations

import platform
import re
import shutil
import subprocess
from importlib import util
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    platform.machine() not in ("x86_64", "AMD64"), reason="the portable build is for x86-64"
)

# AT&T syntax as objdump prints it: AVX-512 uses zmm registers and opmask
# registers k0-k7; AMX uses tile registers and the tile instructions.
FORBIDDEN = re.compile(
    r"%zmm\d+|%k[0-7]\b|\b(?:ldtilecfg|sttilecfg|tilezero|tileloadd|tileloaddt1|tilestored"
    r"|tilerelease|tdpb[su]{2}d|tdpbf16ps|tdpfp16ps)\b"
)


def _library_folder() -> Path:
    spec = util.find_spec("llama_cpp")
    assert spec is not None and spec.origin is not None, "llama-cpp-python is not installed"
    return Path(spec.origin).parent / "lib"


def _shared_libraries() -> list[Path]:
    found = sorted(path for path in _library_folder().glob("lib*.so*") if not path.is_symlink())
    assert any(path.name.startswith("libggml-cpu") for path in found), found
    return found


def test_the_cpu_backend_is_compiled_for_avx2_and_nothing_above() -> None:
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode()
    features = dict(re.findall(r"(\w+) = (\d)", info))
    assert features.get("AVX2") == "1", info  # fast on every x86-64 chatui targets
    above = {name for name, on in features.items()
             if on == "1" and (name.startswith("AVX512") or name.startswith("AMX"))}
    assert not above, f"built for this machine's CPU ({sorted(above)}), not portable: {info}"


def test_no_avx512_or_amx_instruction_in_the_installed_libraries() -> None:
    objdump = shutil.which("objdump")
    assert objdump, "objdump (binutils) is needed to check the build; it comes with gcc"
    for library in _shared_libraries():
        listing = subprocess.run(
            [objdump, "-d", "--no-show-raw-insn", str(library)],
            capture_output=True, text=True, check=True,
        ).stdout
        assert len(listing) > 10_000, f"objdump printed no code for {library}"
        hits = FORBIDDEN.findall(listing)
        assert not hits, (
            f"{library.name} holds {len(hits)} AVX-512/AMX instructions (e.g. {hits[:5]}): "
            "it was built natively. Rebuild it portable: "
            "pip cache remove llama_cpp_python && pip install --force-reinstall --no-deps "
            "-r requirements.txt"
        )


def test_the_checker_sees_avx512_and_amx_code() -> None:
    """The pattern is not blind: it matches what a native build on these VMs emits."""
    samples = [
        "vmovups %zmm0,(%rax)", "kmovw %k1,%eax", "tilezero %tmm0",
        "tileloadd (%rax,%rbx,1),%tmm1", "ldtilecfg (%rsp)", "tdpbssd %tmm2,%tmm1,%tmm0",
    ]
    assert all(FORBIDDEN.search(sample) for sample in samples)
    assert not FORBIDDEN.search("vfmadd231ps %ymm1,%ymm2,%ymm0")
