"""End-to-end generation throughput: decode, crop, corrupt, encode, write (+ digests), on the
synthetic source, for full frames and 256 px person crops, with 1 and 2 workers; then an estimate
of the full Human3.6M-C test set on one 16-core machine.

    python benchmarks/generate.py [--divisor 1] [--frames 12] [--workers 1 2] [--executor local ray]

Frames per second count output images (one frame of one camera). The corruption mix is the
Human3.6M-C set at severity 3 plus the clean cell (12 cells), so the figure is the mean over the
benchmark's corruptions. The synthetic source is written once into a temporary cache and not timed.
Wall-clock rates depend on the machine's load; images per CPU-second (this process and its pool
workers) estimate what one fully available core does, and the 16-core estimate uses that figure.
`--executor ray` adds rows on a local Ray runtime of `workers` CPUs (started and warmed up untimed).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import yaml

H36M_C = [
    "gaussian_noise", "shot_noise", "salt_pepper", "speckle_noise", "motion_blur", "defocus_blur",
    "brightness", "contrast", "jpeg_compression", "pixelate", "temporal_occlusion",
]  # fmt: skip
# S9 + S11 test poses at 50 fps over the 4 cameras, as counted by VideoPose3D (543,344 2D poses)
H36M_TEST_IMAGES = 543_344


def manifest(crop: dict, frames: int, divisor: int, seconds: float) -> dict:
    return {
        "name": "bench",
        "version": "1",
        "paper": "none (benchmark)",
        "seed": 0,
        "source": {"kind": "synthetic", "seconds": seconds, "divisor": divisor, "seed": 0},
        "subjects": ["S9"],
        "actions": ["Walking"],
        "cameras": ["54138969", "55011271", "58860488", "60457274"],
        "frame_step": 1,
        "max_frames": frames,
        "crop": crop,
        "output": {"format": "jpeg", "quality": 95},
        "variants": [{"name": "b", "corruptions": [{"name": n, "severities": [3]} for n in H36M_C]}],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--divisor", type=int, default=1, help="synthetic frame size 1000/divisor px (1: Human3.6M size)")
    parser.add_argument("--frames", type=int, default=12, help="frames per camera and cell")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--executor", nargs="+", default=["local"], choices=["local", "ray"])
    args = parser.parse_args()

    from corrupt_bench.generate.run import generate
    from corrupt_bench.generate.sources import CACHE_ENV

    root = Path(tempfile.mkdtemp(prefix="cb-bench-"))
    os.environ[CACHE_ENV] = str(root / "cache")
    seconds = max(1.0, args.frames / 50.0 + 0.2)
    configs = {
        "full frame": {"mode": "full"},
        "256 px crop": {"mode": "person", "margin": 0.15, "size": 256},
    }
    rows = []
    try:
        for label, crop in configs.items():
            path = root / f"{label.replace(' ', '_')}.yaml"
            path.write_text(yaml.safe_dump(manifest(crop, args.frames, args.divisor, seconds)))
            generate(path, root / "warm", show_progress=False)  # writes the synthetic source (untimed)
            shutil.rmtree(root / "warm")
            for kind in args.executor:
                for workers in args.workers:
                    executor = _executor(kind, workers, path, root)
                    out = root / f"out-{workers}"
                    cpu0 = _cpu_seconds()
                    start = time.perf_counter()
                    summary = generate(path, out, workers=workers, executor=executor, show_progress=False)
                    seconds_taken = time.perf_counter() - start
                    # this process + its joined pool workers (Ray workers are not our children: n/a)
                    cpu = _cpu_seconds() - cpu0 if kind == "local" else float("nan")
                    rows.append((label, kind, workers, summary.images, seconds_taken, summary.images / seconds_taken, cpu))
                    shutil.rmtree(out)
                    if kind == "ray":
                        import ray

                        ray.shutdown()
    finally:
        shutil.rmtree(root, ignore_errors=True)

    size = 1000 // args.divisor
    print(f"\nsource: synthetic {size} x {size} px H.264, 4 cameras; cells: clean + {len(H36M_C)} Human3.6M-C corruptions at severity 3")
    print(f"{'output':<12} {'executor':>8} {'workers':>7} {'images':>7} {'wall s':>8} {'images/s':>9} {'CPU s':>8} {'img/CPU-s':>10}")
    for label, kind, workers, images, secs, fps, cpu in rows:
        print(f"{label:<12} {kind:>8} {workers:>7} {images:>7} {secs:>8.1f} {fps:>9.1f} {cpu:>8.1f} {images / cpu:>10.1f}")
    load = os.getloadavg()[0]
    print(f"(1-minute load average at the end: {load:.1f} on {os.cpu_count()} cores; figures are inflated by other load)")

    cells = 1 + len(H36M_C) * 5
    total = H36M_TEST_IMAGES * cells
    print(f"\nHuman3.6M-C test set (h36m-c.yaml): {H36M_TEST_IMAGES:,} S9+S11 images at frame step 1 (4 cameras)"
          f" x {cells} cells (clean + {len(H36M_C)} corruptions x 5 severities) = {total:,} images")
    for label, kind, workers, images, _, fps, cpu in rows:
        if workers == 1 and kind == "local":
            per_core = images / cpu
            print(f"  {label}: {per_core:.1f} images per CPU-second -> about {total / (per_core * 16) / 3600:.1f} h"
                  f" on 16 busy cores, linear scaling assumed (from wall clock here: {fps:.1f} images/s"
                  f" -> {total / (fps * 16) / 3600:.1f} h)")


def _cpu_seconds() -> float:
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _executor(kind: str, workers: int, path: Path, root: Path):
    """None (generate's local pool) or a Ray executor on a fresh local runtime of `workers` CPUs,
    warmed up (worker processes started, imports done) by an untimed run."""
    if kind == "local":
        return None
    import ray

    from corrupt_bench.executors import make_executor
    from corrupt_bench.generate.run import generate

    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
    executor = make_executor("ray", workers)
    generate(path, root / "warm-ray", executor=executor, show_progress=False)
    shutil.rmtree(root / "warm-ray")
    return executor


if __name__ == "__main__":
    main()
