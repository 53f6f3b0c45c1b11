"""The browser script's weight on the wire: raw, minified and compressed sizes.

The script is shipped as written (readable, commented). "Minified" here is a
small, safe pure-Python step (:func:`minify`): comments, indentation and
blank lines removed, nothing renamed; a real minifier would take it lower. The
sizes are printed, with ``gzip -9`` and brotli of each; the benchmark timed is
the compression itself (what a server does once per deploy). Never fails on
size or timing.
"""

from __future__ import annotations

import gzip
import re
from importlib import resources

import brotli
from pytest_benchmark.fixture import BenchmarkFixture

SCRIPT = resources.files("dni_engine.web").joinpath("static/dni.js").read_bytes()


def minify(source: str) -> str:
    """The script without comments, indentation and blank lines (line breaks kept).

    Safe for this script: its ``//`` comments stand on lines of their own or after
    code with no string holding ``//`` before them, and its one block comment
    opens the file.
    """
    source = re.sub(r"^/\*.*?\*/\n", "", source, flags=re.DOTALL)
    lines = []
    for line in source.splitlines():
        line = line.strip()
        if not line or line.startswith("//"):
            continue
        line = re.sub(r";\s*//[^\"']*$", ";", line)
        lines.append(line)
    return "\n".join(lines) + "\n"


def test_script_size(benchmark: BenchmarkFixture) -> None:
    small = minify(SCRIPT.decode("utf-8")).encode("utf-8")
    sizes = {
        "raw": len(SCRIPT),
        "raw gzip": len(gzip.compress(SCRIPT, 9)),
        "raw brotli": len(brotli.compress(SCRIPT)),
        "minified": len(small),
        "minified gzip": len(gzip.compress(small, 9)),
        "minified brotli": len(brotli.compress(small)),
    }
    benchmark.extra_info.update(sizes)
    benchmark(gzip.compress, small, 9)
    print("\ndni.js: " + ", ".join(f"{name} {size:,} B" for name, size in sizes.items()))
