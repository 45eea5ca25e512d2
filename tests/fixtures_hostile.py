"""Shared by the hostile-input tests: the tiny synthetic manifest, its hostile variants, and the checks
(one error line, exit 2; what a folder holds before and after)."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from corrupt_bench.cli import main
from corrupt_bench.io import is_temporary

TINY = {
    "name": "tiny",
    "version": "1",
    "paper": "none",
    "seed": 1,
    "source": {"kind": "synthetic", "seconds": 1.0, "divisor": 8, "seed": 0},
    "subjects": ["S9"],
    "actions": ["Walking"],
    "cameras": ["54138969"],
    "frame_step": 2,
    "max_frames": 4,
    "crop": {"mode": "person", "margin": 0.15, "size": 32},
    "output": {"format": "png"},
    "variants": [{"name": "v", "corruptions": [{"name": "gaussian_noise", "severities": [1]}]}],
}
TINY_TEXT = yaml.safe_dump(TINY, sort_keys=False)


def run(capsys, *args) -> tuple[int, str, str]:
    """The CLI, in process: (exit code, stdout, stderr)."""
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error(code: int, err: str, *needles: str) -> str:
    """Exit code 2 and exactly one stderr line `error: ...` holding every needle."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, f"exit {code}: {err}"
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    return lines[0]


def snapshot(root: Path) -> set[str]:
    """Every path under `root` (files, folders, links), relative."""
    found = set()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            found.add(os.path.relpath(os.path.join(dirpath, name), root))
    return found


def temporaries(root: Path) -> list[str]:
    return sorted(p for p in snapshot(root) if is_temporary(Path(p).name))


def bomb(where: str) -> str:
    levels = ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    refs = "refs:\n" + "\n".join(f"  {line}" for line in levels) + "\n"
    if where == "seed":
        return refs + replace_in_tiny("seed: 1\n", "seed: *a8\n")
    return refs + override_in_tiny("gaussian_noise", "{sigma: *a8}")


def replace_in_tiny(old: str, new: str) -> str:
    assert old in TINY_TEXT, old
    return TINY_TEXT.replace(old, new, 1)


def override_in_tiny(corruption: str, params: str) -> str:
    return replace_in_tiny(
        "  - name: gaussian_noise\n    severities:\n    - 1\n",
        f"  - name: {corruption}\n    severities:\n    - 1\n    overrides: {{1: {params}}}\n",
    )
