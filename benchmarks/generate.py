"""`generate` against its decode-once floor, per worker count: images per CPU-second, the CPU ratio
to the floor, wall-clock rate and peak memory per worker; then the write path's cost per image and
an estimate for the Human3.6M-C test set.

    python benchmarks/generate.py [--manifest YAML] [--source DIR] [--workers 1 2] [--repeats 3]
                                  [--full-frame] [--baseline-tree DIR]

The default manifest is Human3.6M-C's cheap corruptions on 256 px person crops (S9 walking, 1 s of
1000 px video at frame step 2, gaussian_noise, shot_noise, salt_pepper, speckle_noise, brightness,
contrast, jpeg_compression, pixelate, block_dropout, random_erase, temporal_occlusion at severity 3,
plus clean: 1,200 JPEG q95 images); without --source its synthetic source is written into a
temporary cache first (untimed). `--full-frame` adds the same manifest on whole frames (memory).
`--baseline-tree DIR` also runs `generate` from another checkout of corrupt-bench (e.g. the
previous commit), interleaved with this one, for a side-by-side comparison in one run.

Every measurement runs in a fresh Python process with OMP_NUM_THREADS=1 and reports, counted from
after its imports: CPU seconds (user + system) of the process and of its pool workers, wall seconds,
and peak resident memory (ru_maxrss) of the process and of its largest pool worker (RUSAGE_CHILDREN).
Medians over the repeats. The load average of the machine is printed with every table.

The floor is what any generator of the same files must spend: decode every source frame the
manifest reads once (the same VideoReader, frame indices and seeks), crop it (the same crop_image),
then encode (the same encoder and settings) and atomically write (the same writer) every image that
`generate` wrote, its own pixels (read back from generate's output, that decode excluded from the
floor's CPU). `generate / floor` is the ratio of their CPU seconds: what corruptions, digests,
labels and bookkeeping add.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ELEVEN = [
    "gaussian_noise", "shot_noise", "salt_pepper", "speckle_noise", "brightness", "contrast",
    "jpeg_compression", "pixelate", "block_dropout", "random_erase", "temporal_occlusion",
]  # fmt: skip
# Human3.6M-C test set: S9 + S11 at 50 fps, 4 cameras, as counted by VideoPose3D (543,344 2D poses),
# x 56 cells (clean + 11 corruptions x 5 severities)
H36M_TEST_IMAGES = 543_344
H36M_C_CELLS = 56
CORES_PER_NODE = 16


def default_manifest(crop: dict) -> dict:
    return {
        "name": "h36mc11", "version": "1", "paper": "none (benchmark)", "seed": 0,
        "source": {"kind": "synthetic", "seconds": 1.0, "divisor": 1, "seed": 0},
        "subjects": ["S9"], "actions": ["Walking"], "frame_step": 2, "crop": crop,
        "output": {"format": "jpeg", "quality": 95},
        "variants": [{"name": "cheap", "corruptions": [{"name": n, "severities": [3]} for n in ELEVEN]}],
    }  # fmt: skip


# --- children: one measurement each, in a fresh process -------------------------------------------------
def _usage() -> dict:
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "cpu_self": own.ru_utime + own.ru_stime,
        "cpu_children": kids.ru_utime + kids.ru_stime,
        "rss_self_mb": own.ru_maxrss / 1024,
        "rss_children_mb": kids.ru_maxrss / 1024,
    }


def child_generate(args) -> dict:
    from corrupt_bench.generate.run import generate

    source = Path(args.source) if args.source else None
    before, start = _usage(), time.perf_counter()
    summary = generate(args.manifest, Path(args.out), source=source, workers=args.child_workers, show_progress=False)
    wall, after = time.perf_counter() - start, _usage()
    return {
        "images": summary.images,
        "wall": wall,
        "cpu": after["cpu_self"] - before["cpu_self"] + after["cpu_children"] - before["cpu_children"],
        "cpu_workers": after["cpu_children"] - before["cpu_children"],
        "rss_driver_mb": after["rss_self_mb"],
        "rss_workers_mb": after["rss_children_mb"] if args.child_workers > 1 else 0.0,
        "lock": summary.lock_digest,
    }


def child_floor(args) -> dict:
    """Decode + crop every frame once; encode + write every image `generate` wrote (its pixels)."""
    import cv2

    from corrupt_bench.data.crop import crop_image, person_box, square_box
    from corrupt_bench.generate.planner import frames_key
    from corrupt_bench.generate.run import prepare
    from corrupt_bench.generate.sources import open_source
    from corrupt_bench.generate.writers import decode_image, encode_image
    from corrupt_bench.io import atomic_write_bytes
    from corrupt_bench.layout import image_folder, image_name

    cv2.setNumThreads(1)
    manifest, config, plan, _ = prepare(args.manifest, Path(args.source) if args.source else None)
    reference, out = Path(args.reference), Path(args.out)
    source = open_source(config)
    groups: dict[tuple, list] = {}
    for unit in plan.units:
        groups.setdefault(frames_key(unit), []).append(unit)
    size, fmt, quality, ext = manifest.crop.output_size, manifest.output.format, manifest.output.quality, manifest.output.extension
    excluded = 0.0  # CPU of reading generate's pixels back: not part of the floor
    images = 0
    before, start = _usage(), time.perf_counter()
    for units in groups.values():
        seq = units[0].seq
        for camera in units[0].cameras:
            reader = source.video(seq, camera)
            joints = source.poses_2d(seq, camera)
            cells = [(u.variant, u.corruption, u.severity) for u in units]
            folders = [(image_folder(reference, *c, seq.subject, seq.sequence, camera),
                        image_folder(out, *c, seq.subject, seq.sequence, camera)) for c in cells]  # fmt: skip
            for frame in units[0].frames:
                image = reader.frame(frame)
                if size is not None:
                    image = crop_image(image, square_box(person_box(joints[frame], manifest.crop.margin)), size)
                name = image_name(frame, ext)
                for ref_folder, out_folder in folders:
                    t0 = time.process_time()
                    pixels = decode_image((ref_folder / name).read_bytes())
                    excluded += time.process_time() - t0
                    atomic_write_bytes(out_folder / name, encode_image(pixels, fmt, quality))
                    images += 1
            reader.close()
    wall, after = time.perf_counter() - start, _usage()
    cpu = after["cpu_self"] - before["cpu_self"] - excluded
    return {"images": images, "wall": wall - excluded, "cpu": cpu, "cpu_workers": 0.0, "rss_driver_mb": after["rss_self_mb"],
            "rss_workers_mb": 0.0}  # fmt: skip


def child_write_path(args) -> dict:
    """Per image, ms of CPU: the encoders and the lock's digest, on a crop and a whole frame of the source."""
    import cv2

    from corrupt_bench.data.crop import crop_image, person_box, square_box
    from corrupt_bench.generate.run import prepare
    from corrupt_bench.generate.sources import open_source

    cv2.setNumThreads(1)
    manifest, config, plan, _ = prepare(args.manifest, Path(args.source) if args.source else None)
    source = open_source(config)
    unit = plan.units[0]
    frame = source.video(unit.seq, unit.cameras[0]).frame(unit.frames[0])
    box = square_box(person_box(source.poses_2d(unit.seq, unit.cameras[0])[unit.frames[0]], 0.15))
    folder = Path(args.out)
    return {label: _write_path_costs(image, folder) for label, image in
            (("256 px crop", crop_image(frame, box, 256)), (f"{frame.shape[1]} px frame", frame))}  # fmt: skip


def _write_path_costs(image, folder: Path) -> dict[str, float]:
    import cv2
    import numpy as np

    from corrupt_bench.generate.lock import pixels_digest
    from corrupt_bench.generate.writers import decode_image, encode_image
    from corrupt_bench.io import atomic_write_bytes

    noisy = cv2.add(image, np.random.default_rng(0).integers(-40, 40, image.shape).astype(np.int16), dtype=cv2.CV_8U)
    data = encode_image(noisy, "jpeg", 95)
    params = [cv2.IMWRITE_JPEG_QUALITY, 95, cv2.IMWRITE_JPEG_OPTIMIZE, 0]
    decoded = decode_image(data)
    steps = {
        "RGB->BGR numpy copy": lambda: np.ascontiguousarray(noisy[..., ::-1]),
        "RGB->BGR cv2.cvtColor": lambda: cv2.cvtColor(noisy, cv2.COLOR_RGB2BGR),
        "JPEG encode (q95)": lambda: cv2.imencode(".jpg", noisy, params),
        "atomic write": lambda: atomic_write_bytes(folder / "x.jpg", data),
        "digest: JPEG decode": lambda: decode_image(data),
        "digest: sha256 of pixels": lambda: pixels_digest(decoded),
    }
    return {name: _ms(step) for name, step in steps.items()}


def _ms(step, repeats: int = 30) -> float:
    times = []
    for _ in range(5):
        t0 = time.process_time()
        for _ in range(repeats):
            step()
        times.append((time.process_time() - t0) / repeats * 1000)
    return min(times)


# --- the driver ---------------------------------------------------------------------------------------
def _run_child(mode: str, tree: Path, options: list[str]) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, __file__, "--child", mode, *options]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{mode} child failed ({tree}):\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["load"] = os.getloadavg()[0]
    return result


def measure(manifest: Path, source: str | None, trees: dict[str, Path], workers: list[int], repeats: int, root: Path) -> list[dict]:
    """Interleaved runs of generate (per tree and worker count) and of the floor; one row per setting."""
    src = ["--source", source] if source else []
    runs: dict[tuple[str, int], list[dict]] = {}
    for r in range(repeats):
        for label, tree in trees.items():
            for w in workers:
                out = root / f"gen-{label}-{w}-{r}"
                runs.setdefault((label, w), []).append(
                    _run_child("generate", tree, ["--manifest", str(manifest), "--out", str(out), "--child-workers", str(w), *src])
                )
        reference = root / f"gen-{next(iter(trees))}-{workers[0]}-{r}"
        floor_out = root / f"floor-{r}"
        runs.setdefault(("floor", 1), []).append(
            _run_child("floor", next(iter(trees.values())), ["--manifest", str(manifest), "--out", str(floor_out),
                                                              "--reference", str(reference), *src])  # fmt: skip
        )
        for path in root.glob("gen-*"):
            shutil.rmtree(path)
        shutil.rmtree(floor_out)
    floor_cpu = statistics.median(x["cpu"] for x in runs[("floor", 1)])
    rows = []
    for (label, w), results in runs.items():
        keys = ("images", "wall", "cpu", "cpu_workers", "rss_driver_mb", "rss_workers_mb", "load")
        row = {key: statistics.median(x[key] for x in results) for key in keys}
        row.update(label=label, workers=w, ratio=row["cpu"] / floor_cpu, locks=sorted({x.get("lock", "") for x in results}))
        rows.append(row)
    return rows


def print_rows(title: str, rows: list[dict]) -> None:
    print(f"\n{title}")
    print("| run | workers | images | wall s | images/s | CPU s | of which workers | images/CPU-s | CPU / floor |"
          " peak MB driver | peak MB worker | load |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        pool = r["workers"] > 1
        worker = f"{r['rss_workers_mb']:.0f}" if pool else "-"
        print(f"| {r['label']} | {r['workers']} | {r['images']:.0f} | {r['wall']:.2f} | {r['images'] / r['wall']:.0f} | {r['cpu']:.2f} |"
              f" {r['cpu_workers']:.2f} | {r['images'] / r['cpu']:.0f} | {r['ratio']:.2f} | {r['rss_driver_mb']:.0f} | {worker} |"
              f" {r['load']:.1f} |")  # fmt: skip
    locks = {lock for r in rows for lock in r["locks"] if lock}
    print(f"lock content digests: {', '.join(sorted(locks)) or 'n/a'}")


def print_estimate(rows: list[dict]) -> None:
    one = next((r for r in rows if r["label"] == "this tree" and r["workers"] == 1), None)
    if one is None:
        return
    per_core = one["images"] / one["cpu"]
    total = H36M_TEST_IMAGES * H36M_C_CELLS
    print(f"\nHuman3.6M-C test set: {H36M_TEST_IMAGES:,} images x {H36M_C_CELLS} cells = {total:,} images;"
          f" at {per_core:.0f} images per CPU-second (this manifest's mix, one worker), linear scaling assumed:")  # fmt: skip
    print("| cores | " + " | ".join(str(n * CORES_PER_NODE) for n in (1, 2, 4, 8, 16)) + " |")
    print("|---|" + "---|" * 5)
    print("| hours | " + " | ".join(f"{total / (per_core * n * CORES_PER_NODE) / 3600:.2f}" for n in (1, 2, 4, 8, 16)) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, help="manifest YAML (default: the 11-corruption manifest above)")
    parser.add_argument("--source", help="raw-layout source folder (default: the manifest's synthetic source)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--full-frame", action="store_true", help="also run the manifest on whole frames")
    parser.add_argument("--baseline-tree", type=Path, help="another corrupt-bench checkout to run side by side")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--reference", help=argparse.SUPPRESS)
    parser.add_argument("--child-workers", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = {"generate": child_generate, "floor": child_floor, "write-path": child_write_path}[args.child](args)
        print(json.dumps(result))
        return

    import yaml

    root = Path(tempfile.mkdtemp(prefix="cb-bench-"))
    os.environ.setdefault("CORRUPT_BENCH_CACHE", str(root / "cache"))
    here = Path(__file__).resolve().parents[1]
    trees = {"this tree": here}
    if args.baseline_tree is not None:
        trees["baseline tree"] = args.baseline_tree.resolve()
    try:
        manifests = {}
        if args.manifest is not None:
            manifests["manifest"] = args.manifest.resolve()
        else:
            manifests["256 px crops"] = root / "crops.yaml"
            manifests["256 px crops"].write_text(yaml.safe_dump(default_manifest({"mode": "person", "margin": 0.15, "size": 256})))
        if args.full_frame:
            data = yaml.safe_load(next(iter(manifests.values())).read_text())
            data["crop"] = {"mode": "full"}
            manifests["full frames"] = root / "full.yaml"
            manifests["full frames"].write_text(yaml.safe_dump(data))
        first = next(iter(manifests.values()))
        src = ["--source", args.source] if args.source else []
        # writes a synthetic source into the cache when needed (untimed), and warms the file cache
        _run_child("generate", here, ["--manifest", str(first), "--out", str(root / "warm"), "--child-workers", "1", *src])
        shutil.rmtree(root / "warm")
        print(f"machine: {os.cpu_count()} cores; load average at start {os.getloadavg()[0]:.1f}; manifest {first}"
              f"{' source ' + args.source if args.source else ''}")  # fmt: skip
        for label, path in manifests.items():
            rows = measure(path, args.source, trees, args.workers, args.repeats, root)
            print_rows(f"{label} ({args.repeats} repeats, medians; floor = decode + crop once, encode + write the same images)", rows)
            if label != "full frames":
                print_estimate(rows)
        costs = _run_child("write-path", here, ["--manifest", str(first), "--out", str(root), *src])
        costs.pop("load")
        print("\nwrite path per image, ms of CPU (JPEG q95 of a noisy image; min of 5 x 30):")
        names = list(next(iter(costs.values())))
        print("| step | " + " | ".join(costs) + " |")
        print("|---|" + "---|" * len(costs))
        for name in names:
            if name != "load":
                print(f"| {name} | " + " | ".join(f"{costs[c][name]:.3f}" for c in costs) + " |")
        print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
