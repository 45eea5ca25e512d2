"""Kills, crashes, concurrent runs and a full or read-only disk, on real processes (the CLI run as a
subprocess, its workers on a spawn pool):

- `kill -9` of `generate --workers 2` or `verify --workers 2` leaves no process alive after 5 s;
- a worker killed as the OOM killer would gives one line (exit 2) and the rerun finishes the same lock;
- two `generate` runs into one folder: one succeeds, the other exits 2 naming the holder (or both
  succeed, one after the other), never a traceback; repeated;
- a kill inside the first manifest.yaml write (before or during it) resumes to the same lock.json;
- the alias bomb ends with exit 2 and stays under 100 MB of memory;
- a full disk (ENOSPC), a read-only file system (EROFS) and a file-size limit (EFBIG) give one line and
  leave no temporary, and the rerun resumes to the same lock.json.

Linux only (process tables from /proc; the mounts use an unprivileged user namespace and are skipped
where the kernel refuses one).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from fixtures_hostile import TINY, bomb, temporaries

from corrupt_bench.generate.run import generate
from corrupt_bench.generate.sources import CACHE_ENV
from corrupt_bench.layout import DONE_DIR, LOCK_NAME, OUTPUT_LOCK_NAME

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process tables are read from /proc")

ROOT = Path(__file__).resolve().parents[1]
# long enough (a few seconds on two workers) for a kill to land mid-run, and large enough that
# `--workers 2` starts a pool (at least 1,000 images per worker): 4 cameras x 90 frames x 6 units
MEDIUM = {
    **TINY,
    "name": "medium",
    "source": {"kind": "synthetic", "seconds": 1.8, "divisor": 8, "seed": 0},
    "cameras": ["54138969", "55011271", "58860488", "60457274"],
    "frame_step": 1,
    "max_frames": None,
    "crop": {"mode": "person", "margin": 0.15, "size": 48},
    "variants": [{"name": "v", "corruptions": [{"name": "gaussian_noise", "severities": [1, 2, 3, 4, 5]}]}],
}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """The medium manifest, its synthetic source in a cache, and a reference benchmark generated without
    interruption (its lock.json is what every interrupted run must end with)."""
    root = tmp_path_factory.mktemp("processes")
    manifest = root / "medium.yaml"
    manifest.write_text(yaml.safe_dump(MEDIUM, sort_keys=False))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CACHE_ENV, str(root / "cache"))
        generate(manifest, root / "reference", workers=2, show_progress=False)
        yield {"manifest": manifest, "cache": root / "cache", "reference": root / "reference"}


def _env(setup) -> dict[str, str]:
    path = os.pathsep.join([str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, CACHE_ENV: str(setup["cache"]), "PYTHONPATH": path}


def _cli(*args) -> list[str]:
    return [sys.executable, "-m", "corrupt_bench.cli", *map(str, args)]


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its new parent to reap it is not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _workers(pid: int) -> list[int]:
    out = []
    for child in _children(pid):
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                out.append(child)
        except OSError:
            pass
    return out


def _wait(condition, timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def _lock(folder: Path) -> dict:
    return json.loads((folder / LOCK_NAME).read_text())


def _same_benchmark(folder: Path, reference: Path) -> None:
    assert _lock(folder) == _lock(reference)
    assert temporaries(folder) == [] and not (folder / OUTPUT_LOCK_NAME).exists()


def _finish(setup, out: Path) -> None:
    """Rerun the interrupted generate to completion (resume; in this process, to save a start-up)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CACHE_ENV, str(setup["cache"]))
        generate(setup["manifest"], out, show_progress=False)
    _same_benchmark(out, setup["reference"])


def _kill_leftovers(pids) -> None:
    for pid in pids:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


# --- parent death --------------------------------------------------------------------------------------------------
def _kill_parent_and_watch(proc: subprocess.Popen, started, pool: int) -> None:
    """Once its `pool` spawned workers run and `started()` holds, SIGKILL the CLI process only (not its
    group) and check that every child it had (pool workers, the resource tracker) is gone within 5 s."""
    family: list[int] = []
    try:
        assert _wait(lambda: len(_workers(proc.pid)) == pool and started(), 120), "no work started"
        family = _children(proc.pid)
        assert proc.poll() is None, "the run ended before the kill"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert _wait(lambda: not any(_alive(pid) for pid in family), 5.0), [p for p in family if _alive(p)]
    finally:
        _kill_leftovers(family)


def test_kill_9_of_generate_workers_2_leaves_no_process(setup, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen(_cli("generate", setup["manifest"], "--out", out, "--workers", "2"), env=_env(setup),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    # generate's calling process is one of the workers: --workers 2 spawns one more
    _kill_parent_and_watch(proc, lambda: any((out / DONE_DIR).rglob("*.json")), pool=1)  # mid-run: a unit is done
    _finish(setup, out)


def test_kill_9_of_verify_workers_2_leaves_no_process(setup, tmp_path):
    proc = subprocess.Popen(_cli("verify", setup["reference"], "--workers", "2"), env=_env(setup),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    since: list[float] = []  # when both workers were first seen

    def checking() -> bool:
        since.append(since[0] if since else time.monotonic())
        return time.monotonic() - since[0] > 0.3

    _kill_parent_and_watch(proc, checking, pool=2)


def test_a_worker_killed_like_the_oom_killer_is_one_line_and_resumes(setup, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen(_cli("generate", setup["manifest"], "--out", out, "--workers", "2"), env=_env(setup),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    family: list[int] = []
    try:
        assert _wait(lambda: len(_workers(proc.pid)) == 1, 60), "no worker started"  # the caller is the other
        family = _children(proc.pid)
        os.kill(_workers(proc.pid)[0], signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
    finally:
        _kill_leftovers(family)
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert proc.returncode == 2 and "Traceback" not in err, err
    assert len(errors) == 1 and errors[0].startswith(f"error: {out}: a worker process died (signal SIGKILL")
    assert "rerun the same command" in errors[0]
    _finish(setup, out)


# --- concurrency ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("attempt", range(3))
def test_two_concurrent_generate_runs_into_one_folder(attempt, setup, tmp_path):
    out = tmp_path / "out"
    command = _cli("generate", setup["manifest"], "--out", out)
    procs = [subprocess.Popen(command, env=_env(setup), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes in ([0, 2], [0, 0]), results
    for code, err in results:
        assert "Traceback" not in err, err
        if code == 2:
            errors = [line for line in err.splitlines() if line.startswith("error: ")]
            assert len(errors) == 1 and "another generate run is writing this folder: pid " in errors[0], err
            assert str(out) in errors[0] and "generate" in errors[0]
    _same_benchmark(out, setup["reference"])


# --- kills inside the first manifest.yaml write ------------------------------------------------------------------------
KILL_AT_RENAME = """
import os, signal, sys
real = os.replace
def replace(src, dst, *args, **kwargs):
    if str(dst).endswith("manifest.yaml"):
        os.kill(os.getpid(), signal.SIGKILL)  # the temporary is written, the rename never happens
    return real(src, dst, *args, **kwargs)
os.replace = replace
from corrupt_bench.cli import main
sys.exit(main(sys.argv[1:]))
"""
KILL_MID_WRITE = """
import os, signal, sys
real = os.fdopen
def fdopen(fd, mode="r", *args, **kwargs):
    handle = real(fd, mode, *args, **kwargs)
    if "w" in mode:  # the first atomic write of generate is manifest.yaml
        class Half:
            def __enter__(self): return self
            def __exit__(self, *exc): return False
            def write(self, data):
                handle.write(data[: len(data) // 2]); handle.flush(); os.fsync(handle.fileno())
                os.kill(os.getpid(), signal.SIGKILL)
        return Half()
    return handle
os.fdopen = fdopen
from corrupt_bench.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("where", ["at_rename", "mid_write", "truncated_in_place"])
def test_kill_inside_the_first_manifest_write_resumes_to_the_same_lock(where, setup, tmp_path):
    out = tmp_path / "out"
    if where == "truncated_in_place":  # a file system without atomic rename: half a manifest.yaml, nothing else
        out.mkdir()
        text = (setup["reference"] / "manifest.yaml").read_text()
        (out / "manifest.yaml").write_text(text[: len(text) // 2])
    else:
        script = KILL_AT_RENAME if where == "at_rename" else KILL_MID_WRITE
        killed = subprocess.run([sys.executable, "-c", script, "generate", str(setup["manifest"]), "--out", str(out)],
                                env=_env(setup), capture_output=True, timeout=120)  # fmt: skip
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        assert not (out / "manifest.yaml").exists() and temporaries(out), sorted(p.name for p in out.iterdir())
    _finish(setup, out)


# --- the alias bomb's memory ------------------------------------------------------------------------------------------------
MEASURE = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print(done.stderr, end="")
"""


@pytest.mark.parametrize("where", ["seed", "overrides"])
def test_alias_bomb_is_one_line_under_100_mb(where, setup, tmp_path):
    manifest = tmp_path / "bomb.yaml"
    manifest.write_text(bomb(where))
    for command in (["validate", manifest], ["generate", manifest, "--out", tmp_path / "out"]):
        done = subprocess.run([sys.executable, "-c", MEASURE, *_cli(*command)], env=_env(setup), capture_output=True, text=True, timeout=60)
        first, *stderr = done.stdout.splitlines()
        code, peak_kib = map(int, first.split())
        assert code == 2 and len(stderr) == 1 and stderr[0].startswith(f"error: {manifest}: ") and "anchor" in stderr[0]
        assert peak_kib < 100 * 1024, f"peak RSS {peak_kib / 1024:.0f} MB"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bomb.yaml"]


# --- the disk: full, read-only, a file-size limit ------------------------------------------------------------------------------
def _namespaces() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode == 0


SMALL_DISK = r"""
set -u
mnt=$1; shift; report=$1; shift
mount -t tmpfs -o size=$SIZE tmpfs "$mnt" || exit 90
if [ "$MODE" = ro ]; then mkdir "$mnt/out"; mount -o remount,ro "$mnt" || exit 91; fi
"$@" --out "$mnt/out" > /dev/null 2> "$report/stderr"
echo $? > "$report/rc"
find "$mnt" -name '.*.tmp*' > "$report/temporaries"
[ "$MODE" = ro ] && exit 0
mount -o remount,size=64m "$mnt" || exit 92
"$@" --out "$mnt/out" > /dev/null 2> "$report/stderr2"
echo $? > "$report/rc2"
cp "$mnt/out/lock.json" "$report/lock.json"
"""


@pytest.mark.skipif(not _namespaces(), reason="no unprivileged user and mount namespaces here")
@pytest.mark.parametrize(("mode", "size", "needle"), [("full", "160k", "(ENOSPC): the disk is full"), ("ro", "1m", "(EROFS): the file system is read-only")])
def test_full_or_read_only_disk(mode, size, needle, setup, tmp_path):
    mnt, report = tmp_path / "mnt", tmp_path / "report"
    mnt.mkdir()
    report.mkdir()
    done = subprocess.run(["unshare", "-rm", "sh", "-c", SMALL_DISK, "sh", str(mnt), str(report), *_cli("generate", setup["manifest"])],
                          env={**_env(setup), "MODE": mode, "SIZE": size}, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    err = (report / "stderr").read_text()
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert (report / "rc").read_text().strip() == "2" and "Traceback" not in err, err
    assert len(errors) == 1 and needle in errors[0] and str(mnt / "out") in errors[0], err
    assert (report / "temporaries").read_text() == ""
    if mode == "full":  # more space, same command: it resumes to the reference benchmark
        assert (report / "rc2").read_text().strip() == "0", (report / "stderr2").read_text()
        assert json.loads((report / "lock.json").read_text()) == _lock(setup["reference"])


def test_file_size_limit_is_one_line_and_resumes(setup, tmp_path):
    """RLIMIT_FSIZE (SIGXFSZ ignored): the kernel answers a write past the limit with EFBIG."""
    out = tmp_path / "out"

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (12_000, 12_000))

    done = subprocess.run(_cli("generate", setup["manifest"], "--out", out), env=_env(setup), capture_output=True, text=True,
                          timeout=300, preexec_fn=limit)  # fmt: skip
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert len(errors) == 1 and "(EFBIG)" in errors[0] and str(out) in errors[0], done.stderr
    assert temporaries(out) == []
    _finish(setup, out)
