"""Train every reference model's tiny config on a synthetic source and print how well it does.

    python benchmarks/train_tiny.py [--data DIR] [--work DIR] [--models detector2d,tcn-lifter] [--threads 2]
                                    [--config deprope=PATH.yaml]   (another config than tiny, e.g. an ablation)

Writes the synthetic source into `--data` if it is not there yet (resumable), trains each model's
`baselines/<name>/tiny.yaml` into `--work/<name>` (an existing finished run is reused), and prints on
the synthetic test subjects (S9, S11; the first `--eval-frames` frames of every sequence and camera):
detector2d PCK@0.1 on clean crops, each lifter's MPJPE from clean ground-truth 2D and from detector
2D, beside the mean-pose baseline (the training set's mean root-relative pose).

This is a benchmark that prints a table, not a timed test. Model developers add an entry to `MODELS`
(name -> function(Context) -> rows); `Context` trains/caches checkpoints, detections and test data.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from corrupt_bench.data.crop import from_crop, person_box
from corrupt_bench.models.data import (
    TEST_SUBJECTS,
    TRAIN_SUBJECTS,
    PoseSequence,
    load_crops,
    load_pose_sequences,
    mean_pose,
    present_subjects,
    root_relative,
)

SYNTH = {"subjects": (*TRAIN_SUBJECTS, *TEST_SUBJECTS), "actions": None, "seconds": 4.0, "divisor": 4, "seed": 0}


@dataclass
class Context:
    """Shared state of one benchmark run: data, trained checkpoints, detections (all lazily built, cached)."""

    data: Path
    work: Path
    device: str = "cpu"
    eval_frames: int = 100
    configs: dict[str, str] = field(default_factory=dict)  # model -> config file used instead of tiny
    timings: dict[str, float] = field(default_factory=dict)
    _cache: dict = field(default_factory=dict)

    def checkpoint(self, name: str, config: str = "tiny") -> Path:
        """Train `name`'s config into work/<name> (resumes or reuses a finished run); returns the folder."""
        from corrupt_bench.models.checkpoint import load_config
        from corrupt_bench.models.registry import get_trainer

        out = self.work / name
        key = ("ckpt", name)
        if key not in self._cache:
            t0 = time.perf_counter()
            cfg = load_config(name, self.configs.get(name, config))
            if _finished(out, cfg):  # reuse without calling the trainer (which would load its data first)
                result = None
            else:
                result = get_trainer(name)(cfg, data=self.data, out=out, device=self.device)
            self.timings[f"train {name}"] = time.perf_counter() - t0
            import pandas as pd

            log = pd.read_csv(out / "train_log.csv")  # the whole run, also when it was resumed or reused
            print(f"[{name}] loss {log['loss'].iloc[0]:.4g} -> {log['loss'].iloc[-1]:.4g} over {len(log)} epochs, "
                  f"{log['seconds'].sum():.0f} s training ({result.epochs_run if result else 0} epochs run now)", flush=True)
            self._cache[key] = out
        return self._cache[key]

    def load(self, name: str):
        """The trained Predictor (or detector) of `name`."""
        from corrupt_bench.models.loading import load_model

        return load_model(name, self.checkpoint(name), device=self.device).model

    def train_sequences(self) -> list[PoseSequence]:
        if "train" not in self._cache:
            self._cache["train"] = load_pose_sequences(self.data, present_subjects(self.data, TRAIN_SUBJECTS))
        return self._cache["train"]

    def test_sequences(self) -> list[PoseSequence]:
        """Test (sequence, camera) pairs cut to the first `eval_frames` frames."""
        if "test" not in self._cache:
            full = load_pose_sequences(self.data, present_subjects(self.data, TEST_SUBJECTS))
            n = self.eval_frames
            self._cache["test"] = [
                PoseSequence(s.subject, s.sequence, s.action, s.camera, s.joints_3d_cam[:n], s.joints_2d[:n],
                             s.joints_3d_world[:n]) for s in full
            ]
        return self._cache["test"]

    def detections(self) -> dict:
        """detector2d on clean test crops: {(subject, sequence, camera): (kp full-frame px (N,17,2), conf (N,17))}
        and the PCK@0.1 of those crops (under key "pck")."""
        if "det" not in self._cache:
            detector = self.load("detector2d")
            size = detector.config.image_size
            crops = load_crops(self.data, present_subjects(self.data, TEST_SUBJECTS), size=size, step=1,
                               margin=detector.config.margin, max_frames=self.eval_frames)
            t0 = time.perf_counter()
            xy, conf = detector.detect(crops.images)
            self.timings["detect"] = time.perf_counter() - t0
            tight = person_box(crops.joints_2d, 0.0)
            side = np.max(tight[:, 2:] - tight[:, :2], axis=1)
            err = np.linalg.norm(xy - crops.joints_2d, axis=-1)
            out: dict = {"pck": float(np.mean(err < 0.1 * side[:, None])), "n_crops": len(crops),
                         "err_px": float(np.mean(err))}
            keys = list(zip(crops.subjects, crops.sequences, [c.camera_id for c in crops.cameras], strict=True))
            for key in dict.fromkeys(keys):
                sel = [i for i, k in enumerate(keys) if k == key]
                full = np.stack([from_crop(xy[i].astype(np.float64), crops.crops[i], size) for i in sel])
                out[key] = (full.astype(np.float32), conf[sel])
            self._cache["det"] = out
        return self._cache["det"]

    def inputs_2d(self, seq: PoseSequence, source: str) -> tuple[np.ndarray, np.ndarray]:
        """(N,17,2) px and (N,17) confidence for a test sequence: 'gt' or 'detector'."""
        if source == "gt":
            return seq.joints_2d, np.ones(seq.joints_2d.shape[:2], np.float32)
        return self.detections()[(seq.subject, seq.sequence, seq.camera.camera_id)]

    def evaluate(self, predictor, source: str, batch_windows: int = 64) -> float:
        """MPJPE (mm) of a Predictor over the test sequences: windows of `input_spec.window` frames with
        stride = window (the last one repeats the final frame), every returned frame scored once."""
        spec = predictor.input_spec
        t = spec.window
        groups: dict[tuple[str, str], list[PoseSequence]] = {}
        for s in self.test_sequences():
            groups.setdefault((s.subject, s.sequence), []).append(s)
        views_list = list(groups.values()) if spec.multi_view else [[s] for s in self.test_sequences()]
        errors = []
        for views in views_list:
            n = views[0].n_frames
            kp, conf = zip(*(self.inputs_2d(s, source) for s in views), strict=True)
            kp, conf = np.stack(kp), np.stack(conf)  # (V, N, ...)
            gt = np.stack([root_relative(s.joints_3d_cam) for s in views])  # (V, N, 17, 3)
            starts = list(range(0, n, t))
            for b0 in range(0, len(starts), batch_windows):
                idx = np.stack([np.minimum(np.arange(s, s + t), n - 1) for s in starts[b0 : b0 + batch_windows]])
                boxes = person_box(kp[:, idx], 0.2)
                batch = {"keypoints_2d": kp[:, idx].transpose(1, 0, 2, 3, 4),
                         "confidence": conf[:, idx].transpose(1, 0, 2, 3),
                         "crop": boxes.transpose(1, 0, 2, 3),
                         "cameras": [s.camera for s in views],
                         "view_valid": np.ones((len(idx), len(views), t), bool)}
                pred = predictor.predict(batch)  # (B, V, T, 17, 3)
                for b, s in enumerate(starts[b0 : b0 + batch_windows]):
                    keep = min(t, n - s)
                    err = np.linalg.norm(pred[b, :, :keep] - gt[:, s : s + keep], axis=-1)
                    errors.append(err.reshape(-1, 17))
        return float(np.mean(np.concatenate(errors)))


def _finished(out: Path, config: dict) -> bool:
    """Whether `out` holds a finished training run of exactly `config`."""
    import json

    from corrupt_bench.models.checkpoint import META, config_digest

    try:
        meta = json.loads((out / META).read_text())
    except (OSError, ValueError):
        return False
    return meta.get("config_digest") == config_digest(config) and meta.get("epoch") == meta.get("epochs")


Row = dict[str, object]


def _row(model: str, metric: str, source: str, value: float, unit: str) -> Row:
    return {"model": model, "metric": metric, "input": source, "value": value, "unit": unit}


def eval_mean_pose(ctx: Context) -> list[Row]:
    pose = mean_pose(ctx.train_sequences())
    errs = [np.linalg.norm(root_relative(s.joints_3d_cam) - pose, axis=-1) for s in ctx.test_sequences()]
    return [_row("mean-pose", "MPJPE", "-", float(np.mean(np.concatenate(errs))), "mm")]


def eval_detector2d(ctx: Context) -> list[Row]:
    det = ctx.detections()
    return [_row("detector2d", "PCK@0.1 box", f"clean crops ({det['n_crops']})", 100 * det["pck"], "%"),
            _row("detector2d", "mean error", "clean crops", det["err_px"], "crop px")]


def lifter_entry(name: str) -> Callable[[Context], list[Row]]:
    """Rows of a keypoint lifter: MPJPE from clean ground-truth 2D and from detector2d's 2D."""

    def run(ctx: Context) -> list[Row]:
        model = ctx.load(name)
        return [_row(name, "MPJPE", source, ctx.evaluate(model, source), "mm") for source in ("gt", "detector")]

    return run


def eval_deprope(ctx: Context) -> list[Row]:
    """deprope (issue 7): MPJPE of the fused pose on clean test crops (4 views x T frames, windows with
    stride T), then with one view per window replaced by uniform noise, and how often that view gets
    the lowest fusion weight (weights from the learned error head: no ground truth)."""
    from corrupt_bench.models.data import TEST_SUBJECTS, present_subjects
    from corrupt_bench.models.deprope import ClipSet

    model = ctx.load("deprope")
    t = model.cfg.frames
    cfg = model.cfg.model_copy(update={"train": model.cfg.train.model_copy(update={"max_frames": ctx.eval_frames})})
    clips = ClipSet(ctx.data, present_subjects(ctx.data, TEST_SUBJECTS), cfg)
    rng = np.random.default_rng(0)
    clean, noisy, lowest = [], [], []
    for i in range(len(clips.index)):
        starts = list(range(0, clips.index[i].shape[1] - t + 1, t))
        batch, labels = clips.harness_batch(i, starts, t)
        clean.append(np.linalg.norm(model.predict(batch) - labels, axis=-1).ravel())
        bad = rng.integers(0, labels.shape[1], len(starts))
        images = batch["images"].copy()
        for b, v in enumerate(bad):
            images[b, v] = rng.integers(0, 256, images.shape[2:], dtype=np.uint8)
        pred, weights = model.predict_with_weights({**batch, "images": images})
        noisy.append(np.linalg.norm(pred - labels, axis=-1).ravel())
        lowest.append(weights.mean(axis=2).argmin(axis=1) == bad)
    return [_row("deprope", "MPJPE", "clean images (4 views)", float(np.mean(np.concatenate(clean))), "mm"),
            _row("deprope", "MPJPE", "one view noise", float(np.mean(np.concatenate(noisy))), "mm"),
            _row("deprope", "noise view weight lowest", "one view noise", 100 * float(np.mean(np.concatenate(lowest))), "%")]


def eval_stride(ctx: Context) -> list[Row]:
    """stride (issue 7): refine a base estimate (ground truth + 15 mm noise, failing (NaN) for 1.6 s in
    the middle) of every test sequence (first camera, first 200 frames); MPJPE on the failed frames after
    linear interpolation vs after STRIDE, MPJPE on the visible frames, limb-length variance."""
    import time as _time

    from corrupt_bench.models.data import TEST_SUBJECTS, load_pose_sequences, present_subjects
    from corrupt_bench.models.stride import interpolate_missing, limb_length_variance_np

    refiner = ctx.load("stride")
    seqs = load_pose_sequences(ctx.data, present_subjects(ctx.data, TEST_SUBJECTS), cameras=["54138969"])
    rng = np.random.default_rng(0)
    occ_i, occ_r, vis_b, vis_r, lv_b, lv_r, secs, frames = [], [], [], [], [], [], 0.0, 0
    for s in seqs:
        gt = root_relative(s.joints_3d_cam[:200].astype(np.float64))
        n = len(gt)
        base = gt + rng.normal(0.0, 15.0, gt.shape)
        base -= base[:, :1]
        occ = np.zeros(n, bool)
        occ[max(n // 2 - 40, 0) : n // 2 + 40] = True
        base[occ] = np.nan
        interp = interpolate_missing(np.where(occ[:, None, None], 0.0, base), occ)
        t0 = _time.perf_counter()
        out = refiner.refine(base, 50.0)
        secs += _time.perf_counter() - t0
        frames += n
        occ_i.append(np.linalg.norm(interp[occ] - gt[occ], axis=-1).mean())
        occ_r.append(np.linalg.norm(out[occ] - gt[occ], axis=-1).mean())
        print(f"  stride {s.subject} {s.action}: failed frames {occ_i[-1]:.1f} mm interpolated, {occ_r[-1]:.1f} mm refined",
              flush=True)
        vis_b.append(np.linalg.norm(base[~occ] - gt[~occ], axis=-1).mean())
        vis_r.append(np.linalg.norm(out[~occ] - gt[~occ], axis=-1).mean())
        lv_b.append(limb_length_variance_np(base))
        lv_r.append(limb_length_variance_np(out))
    ctx.timings["stride refine per 243 frames"] = secs / max(frames, 1) * 243
    return [_row("stride", "MPJPE failed frames", "linear interpolation", float(np.mean(occ_i)), "mm"),
            _row("stride", "MPJPE failed frames", "refined", float(np.mean(occ_r)), "mm"),
            _row("stride", "MPJPE visible frames", "base (GT + 15 mm noise)", float(np.mean(vis_b)), "mm"),
            _row("stride", "MPJPE visible frames", "refined", float(np.mean(vis_r)), "mm"),
            _row("stride", "limb-length variance", "base", float(np.mean(lv_b)), "mm^2"),
            _row("stride", "limb-length variance", "refined", float(np.mean(lv_r)), "mm^2")]


# name -> function(Context) -> rows. Append new models at the end.
MODELS: dict[str, Callable[[Context], list[Row]]] = {
    "mean-pose": eval_mean_pose,
    "detector2d": eval_detector2d,
    "tcn-lifter": lifter_entry("tcn-lifter"),
    "dtf": lifter_entry("dtf"),
    "syncdiffpose": lifter_entry("syncdiffpose"),
    "deprope": eval_deprope,
    "stride": eval_stride,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("/tmp/corrupt-bench-train-tiny/synth"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/corrupt-bench-train-tiny/runs"))
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated names from MODELS")
    parser.add_argument("--eval-frames", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--config", action="append", default=[], help="MODEL=PATH: train MODEL with this config file instead of tiny")
    args = parser.parse_args(argv)

    import torch

    from corrupt_bench.data.synth import ACTIONS, write_synthetic

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    write_synthetic(args.data, subjects=SYNTH["subjects"], actions=SYNTH["actions"] or ACTIONS,
                    seconds=SYNTH["seconds"], divisor=SYNTH["divisor"], seed=SYNTH["seed"], workers=args.threads)
    configs = dict(item.split("=", 1) for item in args.config)
    ctx = Context(args.data, args.work, args.device, args.eval_frames, configs)
    ctx.timings["synthetic source"] = time.perf_counter() - t0
    rows: list[Row] = []
    for name in args.models.split(","):
        rows.extend(MODELS[name.strip()](ctx))

    import pandas as pd

    table = pd.DataFrame(rows)
    with pd.option_context("display.float_format", "{:.1f}".format, "display.width", 120):
        print(table.to_string(index=False))
    print("timings (s): " + ", ".join(f"{k} {v:.0f}" for k, v in ctx.timings.items()))


if __name__ == "__main__":
    main()
