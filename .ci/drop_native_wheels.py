"""Delete cached llama-cpp-python wheels that were built for one machine's CPU.

pip keys its wheel cache on the sdist's URL only, not on --config-settings, so a
wheel built natively (AVX-512/AMX code) by an earlier install would be reused by
requirements.txt's portable build line without a word. This removes such wheels
before the install, so pip builds the portable one. Portable wheels are kept.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

FORBIDDEN = re.compile(rb"%zmm\d+|%k[0-7]\b|\btile(?:zero|loadd|stored|release)\b|\bldtilecfg\b")


def cache_dir() -> Path:
    out = subprocess.run([sys.executable, "-m", "pip", "cache", "dir"],
                         capture_output=True, text=True, check=False).stdout.strip()
    return Path(out or Path.home() / ".cache" / "pip")


def native(wheel: Path, objdump: str) -> bool:
    with zipfile.ZipFile(wheel) as archive, tempfile.TemporaryDirectory() as scratch:
        for name in archive.namelist():
            if "/lib/libggml-cpu" in name and ".so" in name:
                path = Path(archive.extract(name, scratch))
                listing = subprocess.run([objdump, "-d", "--no-show-raw-insn", str(path)],
                                         capture_output=True, check=True).stdout
                if FORBIDDEN.search(listing):
                    return True
    return False


def main() -> int:
    objdump = shutil.which("objdump")
    wheels = sorted((cache_dir() / "wheels").rglob("llama_cpp_python-*.whl"))
    if not objdump:
        for wheel in wheels:  # cannot tell: let pip rebuild rather than guess
            wheel.unlink()
        return 0
    for wheel in wheels:
        if native(wheel, objdump):
            print(f"removing natively built {wheel.name} from pip's cache", file=sys.stderr)
            wheel.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
