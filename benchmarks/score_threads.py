"""Detector scoring throughput against torch's thread count, on idle cores and under load.

    python benchmarks/score_threads.py --benchmark DIR [--checkpoint CKPT] [--threads 1 2] [--load 0 2]
                                       [--images 1200] [--repeats 3] [--cli]

`--benchmark`: a generated benchmark with images (e.g. the 11-corruption manifest of
benchmarks/generate.py, 256 px crops). Without `--checkpoint` the tiny detector is trained first
(`corrupt-bench train detector2d --config tiny --epochs 1` on a small synthetic source; untimed).

Every measurement runs in a fresh process and reports frames per second (wall) and CPU seconds:

- api: the models' own API, `models.detector2d.load_detector(CKPT).detect(images, batch_size=64)`, on
  `--images` images of the benchmark read and decoded before the clock starts;
- cli (`--cli`): `corrupt-bench score --model triangulation --benchmark DIR --detector CKPT --device cpu`
  end to end (detections computed: the cells' detection caches are removed before each run).

Thread settings: each number of `--threads`, and "torch default" (torch's own choice at import:
one thread per core, what the commands used before they set it). For the CLI, "command default" is
the command without `--threads` (executors.process.set_torch_threads: the cores shared with the
--workers data-loading processes). `--load N` keeps N busy processes (pure Python loops) running
during the measurement, standing for a machine shared with other jobs; the load average is printed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _busy(stop) -> None:
    x = 0
    while not stop.is_set():
        for i in range(100_000):
            x += i


def child_api(args) -> dict:
    import cv2
    import numpy as np
    import pyarrow.parquet as pq
    import torch

    from corrupt_bench.models.detector2d import load_detector

    if args.child_threads:
        torch.set_num_threads(args.child_threads)
    bench = Path(args.benchmark)
    paths = []
    for labels in sorted(bench.glob("*/*/*/labels/*.parquet")):
        paths += [p for p in pq.read_table(labels, columns=["image"]).column("image").to_pylist() if p]
    paths = paths[: args.images]
    images = np.stack([cv2.cvtColor(cv2.imread(str(bench / p)), cv2.COLOR_BGR2RGB) for p in paths])
    detector = load_detector(args.checkpoint, device="cpu")
    detector.detect(images[:64])  # warm-up
    cpu0, start = time.process_time(), time.perf_counter()
    detector.detect(images, batch_size=64)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu0
    return {"frames": len(images), "wall": wall, "cpu": cpu, "threads": torch.get_num_threads()}


def run_cli(bench: Path, checkpoint: Path, threads: int | None, out: Path) -> dict:
    import resource

    for cache in bench.glob("*/*/*/detections"):  # detections are cached per cell: computed afresh every run
        shutil.rmtree(cache)
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "corrupt_bench.cli", "score", "--model", "triangulation", "--benchmark", str(bench),
               "--detector", str(checkpoint), "--device", "cpu", "--out", str(out)]  # fmt: skip
    if threads is not None:
        command += ["--threads", str(threads)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"score failed:\n{done.stderr[-3000:]}")
    if not list(bench.glob("*/*/*/detections/*/*.parquet")):
        raise SystemExit("score computed no detections")
    import pyarrow.parquet as pq

    frames = sum(pq.read_metadata(p).num_rows for p in bench.glob("*/*/*/labels/*.parquet"))
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {"frames": frames, "wall": wall, "cpu": cpu}


def run_api(bench: Path, checkpoint: Path, threads: int | None, images: int) -> dict:
    command = [sys.executable, __file__, "--child", "api", "--benchmark", str(bench), "--checkpoint", str(checkpoint),
               "--images", str(images), "--child-threads", str(threads or 0)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"api child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def train_tiny(root: Path) -> Path:
    env = {**os.environ, "CORRUPT_BENCH_CACHE": str(root / "cache")}
    source = root / "source"
    subprocess.run([sys.executable, "-m", "corrupt_bench.cli", "synth", "--out", str(source), "--subjects", "S1",
                    "--actions", "walk", "--seconds", "2", "--divisor", "4", "--workers", "1"], check=True, env=env,
                   capture_output=True)  # fmt: skip
    out = root / "detector"
    subprocess.run([sys.executable, "-m", "corrupt_bench.cli", "train", "detector2d", "--config", "tiny", "--data",
                    str(source), "--out", str(out), "--epochs", "1", "--device", "cpu"], check=True, env=env,
                   capture_output=True)  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmark", type=Path, required=True)
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--load", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--images", type=int, default=1200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cli", action="store_true", help="also time `corrupt-bench score` end to end")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-threads", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child_api(args)))
        return

    import torch

    root = Path(tempfile.mkdtemp(prefix="cb-threads-"))
    try:
        checkpoint = args.checkpoint or train_tiny(root)
        bench = root / "bench"
        shutil.copytree(args.benchmark, bench)
        settings: list[tuple[str, int | None]] = [(f"{n} thread{'s' if n > 1 else ''}", n) for n in args.threads]
        settings.append((f"torch default ({torch.get_num_threads()})", None))
        rows = []
        for load in args.load:
            stop = multiprocessing.Event()
            busy = [multiprocessing.Process(target=_busy, args=(stop,), daemon=True) for _ in range(load)]
            for p in busy:
                p.start()
            try:
                time.sleep(3 if load else 0)
                kinds = [("api", s) for s in settings]
                if args.cli:
                    kinds += [("cli", (label, n)) for label, n in settings[:-1]]
                    kinds += [("cli", (f"torch default ({torch.get_num_threads()})", torch.get_num_threads())),
                              ("cli", ("command default", None))]  # fmt: skip
                results: dict[tuple[str, str], list[dict]] = {}
                if args.cli:
                    run_cli(bench, checkpoint, None, root / "run")  # warm-up (file cache, imports)
                for _ in range(args.repeats):
                    for kind, (label, n) in kinds:
                        result = (run_api(bench, checkpoint, n, args.images) if kind == "api"
                                  else run_cli(bench, checkpoint, n, root / "run"))  # fmt: skip
                        result["load_avg"] = os.getloadavg()[0]
                        results.setdefault((kind, label), []).append(result)
            finally:
                stop.set()
                for p in busy:
                    p.join()
            for (kind, label), rs in results.items():
                wall = statistics.median(r["wall"] for r in rs)
                cpu = statistics.median(r["cpu"] for r in rs)
                rows.append((load, kind, label, rs[0]["frames"], wall, cpu, statistics.median(r["load_avg"] for r in rs)))
        print(f"\n{os.cpu_count()} cores; torch {torch.__version__}; medians of {args.repeats}")
        print("| busy processes added | measured | threads | frames | wall s | frames/s | CPU s | CPU ms/frame | load avg |")
        print("|---|---|---|---|---|---|---|---|---|")
        for load, kind, label, frames, wall, cpu, avg in rows:
            print(f"| {load} | {kind} | {label} | {frames} | {wall:.2f} | {frames / wall:.0f} | {cpu:.2f} | {cpu / frames * 1000:.2f} | {avg:.1f} |")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
