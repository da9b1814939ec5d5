"""Cost of a hostile .docx: 200,000 paragraphs zipped into ~85 kB, before and after the limits.

"before" is what the loader did until now (python-docx parses the whole file,
then every paragraph is read); "after" is ``load_document``, which streams the
XML and refuses the file once its text passes the limit. Each case runs in a
fresh process, so its peak resident memory is its own.

    python bench/bench_rag_hostile.py [--paragraphs 200000]

Prints figures only.
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def bomb(paragraphs: int) -> bytes:
    """A python-docx file whose body is ``paragraphs`` copies of one short paragraph."""
    import zipfile

    import docx

    base = io.BytesIO()
    docx.Document().save(base)
    run = "<w:p><w:r><w:t>All work and no play makes Jack a dull boy.</w:t></w:r></w:p>"
    xml = f'<w:document xmlns:w="{W_NS}"><w:body>{run * paragraphs}</w:body></w:document>'
    out = io.BytesIO()
    with zipfile.ZipFile(base) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            data = xml.encode() if info.filename == "word/document.xml" else source.read(info)
            target.writestr(info.filename, data, zipfile.ZIP_DEFLATED, compresslevel=9)
    return out.getvalue()


def run_case(case: str, data: bytes) -> dict[str, object]:
    """In this (fresh) process: load ``data`` the old or the new way."""
    import docx  # imported before measuring, as in a running server

    from rag_index.errors import DocumentError
    from rag_index.loaders import load_document

    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    outcome = "loaded"
    if case == "before":
        document = docx.Document(io.BytesIO(data))
        chars = sum(len(paragraph.text) for paragraph in document.paragraphs)
        outcome = f"loaded {chars:,} characters"
    else:
        try:
            load_document(data, "bomb.docx")
        except DocumentError as error:
            outcome = f"refused: {error}"
    seconds = time.perf_counter() - start
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base_rss
    return {"seconds": seconds, "peak_rss_growth_mb": grown / 1024, "outcome": outcome}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paragraphs", type=int, default=200_000)
    parser.add_argument("--case", choices=["before", "after"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    data = bomb(args.paragraphs)
    if args.case:
        print(json.dumps(run_case(args.case, data)))
        return
    print(f"docx bomb: {len(data) / 1e3:.0f} kB, {args.paragraphs:,} paragraphs")
    for case in ("before", "after"):
        command = [sys.executable, __file__, "--paragraphs", str(args.paragraphs), "--case", case]
        result = json.loads(subprocess.run(command, check=True, capture_output=True).stdout)
        print(
            f"{case:>6}: {result['seconds']:7.2f} s, peak RSS +{result['peak_rss_growth_mb']:6.0f} MB"
            f"  ({result['outcome']})"
        )


if __name__ == "__main__":
    main()
