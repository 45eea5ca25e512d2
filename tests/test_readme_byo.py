"""The README's "Bring your own model / data" section runs as written: every code block, in order,
from a folder that sees the checkout's `tests/` (the fixtures), on the synthetic source.

Blocks: ```python``` / ```yaml``` whose first line is `# file: PATH` are written to PATH; other python
blocks are executed; a yaml block whose first line names a fixture (`# tests/fixtures/...`) must say
what that file says (every key it shows); ```bash``` lines run one by one: `corrupt-bench ...` through
the CLI in this process (the same app the console script starts), `mkdir` and `ln` through bash,
`export PYTHONPATH=...` as a path prepended. The one line marked `# needs VideoPose3D` (VideoPose3D's
`run.py` and its weights) is not run: the python block after it loads the files the way `run.py` does.
The results-column table must list exactly the harness's columns, and the report files it names exist.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import yaml
from typer.testing import CliRunner

from corrupt_bench.cli import app
from corrupt_bench.generate.sources import CACHE_ENV
from corrupt_bench.harness.scoring import ANSWERED_COLUMNS, METRIC_COLUMNS, ROW_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
TITLE = "## Bring your own model / data"
NEEDS_VP3D = "# needs VideoPose3D"
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```$", re.S | re.M)


def section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(TITLE + "\n")
    end = text.index("\n## ", start + len(TITLE))
    return text[start:end]


def _subset(shown, actual, where: str) -> None:
    """Every key the README shows has the file's value (nested mappings compared key by key)."""
    if isinstance(shown, dict):
        assert isinstance(actual, dict), where
        for key, value in shown.items():
            assert key in actual, f"{where}: {key}"
            _subset(value, actual[key], f"{where}.{key}")
    else:
        assert shown == actual, where


def _run_bash(block: str, cwd: Path, monkeypatch, runner: CliRunner) -> int:
    skipped = 0
    for line in block.splitlines():
        if not line.strip():
            continue
        if line.rstrip().endswith(NEEDS_VP3D):
            assert "python run.py" in line
            skipped += 1
            continue
        words = shlex.split(line, comments=True)
        if words[0] == "corrupt-bench":
            result = runner.invoke(app, words[1:])
            assert result.exit_code == 0, f"{line}\n{result.output}"
        elif words[0] == "export" and words[1].startswith("PYTHONPATH="):
            folder = words[1].removeprefix("PYTHONPATH=").split(":")[0].replace("$PWD", str(cwd))
            monkeypatch.syspath_prepend(folder)
        elif words[0] in ("mkdir", "ln"):
            subprocess.run(["bash", "-euo", "pipefail", "-c", line], cwd=cwd, check=True)
        else:
            raise AssertionError(f"the README test does not know how to run: {line}")
    return skipped


def test_the_section_runs_as_written(tmp_path, monkeypatch):
    (tmp_path / "tests").symlink_to(ROOT / "tests")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    runner = CliRunner()
    text = section()
    blocks = BLOCK.findall(text)
    assert [kind for kind, _ in blocks].count("bash") >= 3 and [kind for kind, _ in blocks].count("python") >= 3
    written = skipped = 0
    for kind, body in blocks:
        first = body.splitlines()[0] if body else ""
        if first.startswith("# file: "):
            path = tmp_path / first.removeprefix("# file: ").strip()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(body)
            written += 1
        elif kind == "yaml" and first.startswith("# tests/fixtures/"):
            fixture = ROOT / first.removeprefix("# ").strip()
            _subset(yaml.safe_load(body), yaml.safe_load(fixture.read_text()), fixture.name)
        elif kind == "yaml":
            fixture = ROOT / "tests/fixtures/pose2sim/manifest.yaml"  # the manifest's keys shown in the text
            assert "tests/fixtures/pose2sim/manifest.yaml" in text
            _subset(yaml.safe_load(body), yaml.safe_load(fixture.read_text()), fixture.name)
        elif kind == "bash":
            skipped += _run_bash(body, tmp_path, monkeypatch, runner)
        elif kind == "python":
            exec(compile(body, "README.md (Bring your own model / data)", "exec"), {"__name__": "__readme__"})  # noqa: S102
        else:
            assert kind == "", f"unknown block kind {kind!r}"
    assert written == 2 and skipped == 1
    assert (tmp_path / "byo/noisy.jpg").is_file() and (tmp_path / "byo/rig/sequences.json").is_file()
    # what the section says comes out
    table = re.findall(r"^\| (`[^|]+`) \|", text, re.M)
    listed = [name for cell in table for name in re.findall(r"`([^`]+)`", cell)]
    expanded = [c for name in listed for c in (ANSWERED_COLUMNS if name == "answered_<metric>" else (name,))]
    assert sorted(expanded) == sorted(ROW_COLUMNS) and len(expanded) == len(ROW_COLUMNS)
    assert set(METRIC_COLUMNS) <= set(expanded)
    report = re.search(r"A report\s+\(`report RUN\.\.\. --out DIR`\): (.*?)\.\n", text, re.S)
    names = re.findall(r"`([\w<>]+(?:\.\w+|/))`", report.group(1))
    assert len(names) >= 10
    for name in names:
        assert (tmp_path / "byo/report" / name.replace("<metric>", "mpjpe")).exists(), name
    for name in ("run.json", "results.parquet", "per_joint.parquet", "cells"):
        assert (tmp_path / "byo/run" / name).exists()
    assert os.path.isdir(tmp_path / "byo/export/byo")
