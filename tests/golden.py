"""Golden digests hold for the library versions they were recorded with (no conftest: import explicitly).

numpy promises stable bit streams but not stable distributions; OpenCV's filters, codecs and
decoder, scipy's inverse normal CDF, scikit-image's bundled images (the built-in occluder bank),
pyarrow's table conversion and PyAV's encoder (the synthetic source's videos) may all move pixels
or labels between versions. A golden test names the versions it holds for; when the running ones
differ it is skipped with a message naming both, never passed silently.
"""

from __future__ import annotations

import pytest

from corrupt_bench.generate.lock import library_versions

# a version matches when its leading components equal the pinned ones ("2.4" holds for 2.4.x)
ENGINE_VERSIONS = {"numpy": "2.4", "opencv": "5.0.0", "scipy": "1.17", "scikit-image": "0.26"}
BENCHMARK_VERSIONS = {**ENGINE_VERSIONS, "pyarrow": "26.0", "av": "18.1"}


def matches(running: str | None, pinned: str) -> bool:
    if running is None:
        return False
    want = pinned.split(".")
    return running.split(".")[: len(want)] == want


def version_mismatches(pinned: dict[str, str]) -> list[str]:
    """'name pinned (golden) != running (here)' for each pinned library whose running version differs."""
    running = library_versions()
    return [
        f"{name} {version} (golden) != {running.get(name, 'not installed')} (here)"
        for name, version in pinned.items()
        if not matches(running.get(name), version)
    ]


def require_versions(pinned: dict[str, str]) -> None:
    """Skip the calling test unless the running library versions are the pinned ones."""
    mismatches = version_mismatches(pinned)
    if mismatches:
        pytest.skip("golden digests hold for other library versions: " + "; ".join(mismatches))
