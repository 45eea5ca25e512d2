"""Hostile input, measured: the alias bomb's wall time and peak memory, how long the workers of a
`kill -9`-ed `generate --workers 2` / `verify --workers 2` outlive their parent, and the outcome of two
concurrent `generate` runs into one folder.

    python benchmarks/hostile.py [--repeat 5]

Each figure is the median (and the maximum) over `--repeat` runs of the real command line in a fresh
process; the peak RSS is read with getrusage(RUSAGE_CHILDREN) in a wrapper process that runs only
that command. Wall-clock figures depend on the machine's load; Linux only (/proc).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

TINY = {
    "name": "bench-hostile", "version": "1", "paper": "none (benchmark)", "seed": 1,
    "source": {"kind": "synthetic", "seconds": 1.8, "divisor": 8, "seed": 0}, "subjects": ["S9"], "actions": ["Walking"],
    "cameras": ["54138969", "55011271", "58860488", "60457274"], "frame_step": 1, "crop": {"mode": "person", "margin": 0.15, "size": 48},
    "output": {"format": "png"},
    "variants": [{"name": "v", "corruptions": [{"name": "gaussian_noise", "severities": [1, 2, 3, 4, 5]}]}],
}  # fmt: skip
# 4 cameras x 90 frames x 6 units = 2,160 images: enough for `generate --workers 2` to start its pool
# (at least 1,000 images per worker); the calling process is the other worker, so the pool has one.
MEASURE = """
import resource, subprocess, sys, time
t = time.perf_counter()
done = subprocess.run(sys.argv[1:], capture_output=True)
print(done.returncode, time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def bomb_text() -> str:
    levels = ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    body = yaml.safe_dump({**TINY, "seed": 1}, sort_keys=False).replace("seed: 1\n", "seed: *a8\n", 1)
    return "refs:\n" + "\n".join(f"  {line}" for line in levels) + "\n" + body


def cli(*args) -> list[str]:
    return [sys.executable, "-m", "corrupt_bench.cli", *map(str, args)]


def children(pid: int) -> list[int]:
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            if int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
        except OSError:
            pass
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def outlive(command: list[str], env: dict, ready, pool: int) -> float:
    """Seconds the children of `command` stay alive after a SIGKILL of it (capped at 30 s), killed
    once its `pool` spawned workers run and `ready()` holds."""
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (len([c for c in children(proc.pid) if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]) == pool and ready()):
        time.sleep(0.05)
    family = children(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed = time.monotonic()
    while any(alive(p) for p in family) and time.monotonic() - killed < 30:
        time.sleep(0.02)
    gone = time.monotonic() - killed
    for pid in family:  # never leave a process behind
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    return gone


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="corrupt-bench-hostile-") as tmp:
        root = Path(tmp)
        env = {**os.environ, "CORRUPT_BENCH_CACHE": str(root / "cache")}
        manifest, bomb = root / "m.yaml", root / "bomb.yaml"
        manifest.write_text(yaml.safe_dump(TINY, sort_keys=False))
        bomb.write_text(bomb_text())
        subprocess.run(cli("generate", manifest, "--out", root / "reference"), env=env, check=True, capture_output=True)

        print(f"{'measure':58s} {'median':>9s} {'max':>9s}  exit codes")
        for name, command in (("alias bomb: validate", cli("validate", bomb)), ("alias bomb: generate", cli("generate", bomb, "--out", root / "x"))):
            runs = [subprocess.run([sys.executable, "-c", MEASURE, *command], env=env, capture_output=True, text=True).stdout.split() for _ in range(args.repeat)]
            codes = sorted({int(r[0]) for r in runs})
            wall = [float(r[1]) for r in runs]
            rss = [int(r[2]) / 1024 for r in runs]
            print(f"{name + ', wall s':58s} {statistics.median(wall):9.2f} {max(wall):9.2f}  {codes}")
            print(f"{name + ', peak RSS MB':58s} {statistics.median(rss):9.1f} {max(rss):9.1f}  {codes}")

        gen = [outlive(cli("generate", manifest, "--out", root / f"k{i}", "--workers", "2"), env,
                       lambda i=i: any((root / f"k{i}" / ".generate" / "done").rglob("*.json")), pool=1) for i in range(args.repeat)]  # fmt: skip
        print(f"{'kill -9 generate --workers 2: children alive after, s':58s} {statistics.median(gen):9.2f} {max(gen):9.2f}")
        ver = [outlive(cli("verify", root / "reference", "--workers", "2"), env, lambda: True, pool=2) for _ in range(args.repeat)]
        print(f"{'kill -9 verify --workers 2: children alive after, s':58s} {statistics.median(ver):9.2f} {max(ver):9.2f}")

        outcomes = []
        for i in range(args.repeat):
            procs = [subprocess.Popen(cli("generate", manifest, "--out", root / f"c{i}"), env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, text=True) for _ in range(2)]  # fmt: skip
            results = [(p.wait(), p.stderr.read()) for p in procs]
            traceback = any("Traceback" in err for _, err in results)
            outcomes.append(f"{'+'.join(str(c) for c, _ in sorted(results))}{' TRACEBACK' if traceback else ''}")
        print(f"two concurrent generate runs into one folder (exit codes): {', '.join(outcomes)}")


if __name__ == "__main__":
    main()
