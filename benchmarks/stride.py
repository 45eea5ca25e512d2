"""STRIDE: refinement time per 243-frame clip, and the 1.6 s occlusion experiment of the model card.

    python benchmarks/stride.py time [--configs tiny,full] [--full-epochs 0,1,30] [--repeats 3]
    python benchmarks/stride.py occlusion [--work DIR]

`time` refines a 243-frame synthetic walk (ground truth + 15 mm noise) with each shipped config
(untrained weights: the time does not depend on them) and prints the median wall time per call.
`occlusion` pretrains the tests' prior (`corrupt_bench.models.stride_eval`: tiny sizes, 6 x 50
steps of batch 16 on S1/S5/S6 synthetic motion; cached in `--work`) and prints, for five
test-subject sequences with 1.6 s of failed frames, the MPJPE on the failed frames of linear
interpolation, of interpolation between denoised ends (the resampling filter alone), of STRIDE
with the shipped TTT (`remask`, `failed_target: prior`), with the paper's TTT (interpolated
pseudo-labels, no re-masking) and of the prior without TTT; then the visible-frame MPJPE and
limb-length variance. A benchmark that prints tables, not a timed test.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from corrupt_bench.layout import H36M_FPS as FPS
from corrupt_bench.models import stride as S
from corrupt_bench.models.checkpoint import load_checkpoint, load_config
from corrupt_bench.models.stride_eval import (
    OCCLUSION_CASES,
    PRIOR_CONFIG,
    camera_poses,
    occluded_case,
    prior_sequences,
)

VARIANTS = {"STRIDE (shipped TTT)": {}, "STRIDE (paper's TTT)": {"remask": False, "failed_target": "interpolation"},
            "prior only (no TTT)": {"epochs": 0}}


def mpjpe(pred: np.ndarray, gt: np.ndarray, frames: np.ndarray) -> float:
    return float(np.linalg.norm(pred[frames] - gt[frames], axis=-1).mean())


def bench_time(configs: list[str], full_epochs: list[int], repeats: int) -> None:
    poses = camera_poses("S9", "walk", 0, 243) + np.random.default_rng(0).normal(0.0, 15.0, (243, 17, 3))
    print("| config | input frame rate | TTT epochs | median s per 243 frames | runs |")
    print("|---|---|---|---|---|")
    for name in configs:
        cfg = load_config("stride", name)
        rates = [FPS, cfg["fps"]] if cfg["fps"] != FPS else [FPS]
        for fps in rates:
            for epochs in (full_epochs if name == "full" else [cfg["ttt"]["epochs"]]):
                refiner = S.build_stride({**cfg, "ttt": {**cfg["ttt"], "epochs": epochs}}, "cpu")
                runs = []
                for _ in range(repeats if name != "full" else 1):
                    t0 = time.perf_counter()
                    refiner.refine(poses, fps)
                    runs.append(time.perf_counter() - t0)
                print(f"| {name} | {fps:g} fps | {epochs} | {np.median(runs):.1f} | {len(runs)} |", flush=True)


def bench_occlusion(work: Path) -> None:
    folder = work / "prior"
    t0 = time.perf_counter()
    S.pretrain(S.parse_config(PRIOR_CONFIG), prior_sequences(), folder, "cpu", config=PRIOR_CONFIG)
    print(f"prior: {time.perf_counter() - t0:.0f} s (0 if cached in {folder})")
    state, meta = load_checkpoint(folder)
    refiners = {}
    for label, extra in VARIANTS.items():
        refiners[label] = S.build_stride({**meta["config"], "ttt": {**meta["config"]["ttt"], **extra}}, "cpu")
        refiners[label].load_state_dict(state)
    head = ["linear interpolation", "denoised-end interpolation", *VARIANTS]
    print("\nMPJPE (mm) on the failed frames")
    print("| sequence | " + " | ".join(head) + " |")
    print("|---|" + "---|" * len(head))
    table, visible, limb = [], [], []
    for case in OCCLUSION_CASES:
        gt, base, failed = occluded_case(*case)
        interp = S.interpolate_missing(np.where(failed[:, None, None], 0.0, base), failed)
        prior_fps = PRIOR_CONFIG["fps"]
        smooth = S.resample(S.resample(np.where(failed[:, None, None], np.nan, base), FPS, prior_fps), prior_fps, FPS,
                            n_out=len(gt))
        bad = ~np.isfinite(smooth).all(axis=(1, 2))
        smooth = S.interpolate_missing(np.where(bad[:, None, None], 0.0, smooth), bad)
        outs = {label: r.refine(base, FPS) for label, r in refiners.items()}
        row = [mpjpe(interp, gt, failed), mpjpe(smooth, gt, failed), *(mpjpe(o, gt, failed) for o in outs.values())]
        table.append(row)
        visible.append([mpjpe(base, gt, ~failed), *(mpjpe(o, gt, ~failed) for o in outs.values())])
        limb.append([S.limb_length_variance_np(base), *(S.limb_length_variance_np(o) for o in outs.values())])
        print(f"| {case[0]} {case[1]}, camera {case[2]} | " + " | ".join(f"{v:.1f}" for v in row) + " |")
    print("| **mean** | " + " | ".join(f"{v:.1f}" for v in np.mean(table, axis=0)) + " |")
    print("\nmeans over the sequences | base | " + " | ".join(VARIANTS) + " |")
    print("|---|---|" + "---|" * len(VARIANTS))
    print("| MPJPE visible frames (mm) | " + " | ".join(f"{v:.1f}" for v in np.mean(visible, axis=0)) + " |")
    print("| limb-length variance (mm^2) | " + " | ".join(f"{v:.0f}" for v in np.mean(limb, axis=0)) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["time", "occlusion"])
    parser.add_argument("--configs", default="tiny,full")
    parser.add_argument("--full-epochs", default="0,1,30", help="TTT epochs to time the full config with")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path("/tmp/corrupt-bench-stride"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.what == "time":
        bench_time(args.configs.split(","), [int(e) for e in args.full_epochs.split(",")], args.repeats)
    else:
        bench_occlusion(args.work)


if __name__ == "__main__":
    main()
