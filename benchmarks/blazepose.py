"""BlazePose (pretrained, `corrupt_bench.models.blazepose`) measured on the synthetic test subjects and on
real footage.

    python benchmarks/blazepose.py --data SYNTH [--detector2d CKPT] [--step 25] [--size 256] [--sections ...]
    python benchmarks/blazepose.py --sections real [--rig tests/fixtures/pose2sim]

SYNTH is a raw-layout synthetic source (`corrupt-bench synth --out SYNTH --divisor 2`) holding S9 and
S11; CKPT a trained `detector2d` checkpoint (`corrupt-bench train detector2d --config tiny --data ...`),
left out of the tables when not given. Sections (all by default):

- `pck`: PCK@0.1 (error < 0.1 x the longer side of the tight ground-truth 2D box; a frame without a
  person counts every joint as a miss) of `blazepose` and `detector2d` on person crops (`--size` px,
  margin 0.15 as the manifests cut them) of every `--step`-th frame of S9 and S11, every camera, clean
  and under every image corruption (pixel and temporal) x severity 1-5, applied by the engine
  (`corrupt_clip`) to clips of those crops; plus blazepose's found rate.
- `joints`: per joint, the 2D error (crop px, PCK@0.1) and the 3D error (mm) of `blazepose` on the clean
  crops, so the derived joints' rules are measured; MPJPE / P-MPJPE over the 17 joints and over the
  declared joint set.
- `size`: found rate and PCK@0.1 by person size: frames rendered in memory at 1/2 .. 1/16 of the camera
  resolution (no video compression), fed whole and as 64 / 128 / 256 px crops.
- `time`: median seconds per image on this CPU (and the load average while measured).
- `real`: on a calibrated multi-view rig of real video (`--rig`, default the pose2sim demo fixture: 4
  cameras x 13 frames, 1080 x 1920 portrait), whole frames at their native size: the detection rate
  (person found), and, since the footage has no 2D labels, the cross-view consistency of the 2D: the
  found frames triangulated with the rig's OpenCV calibration (confidence-weighted DLT,
  `corrupt_bench.models.triangulation`) and reprojected, error in px per camera, with all views and
  with the camera itself held out of the triangulation. Needs no `--data`.

Prints markdown tables; writes nothing. Deterministic: the same arguments print the same numbers
(timings aside).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from corrupt_bench.data.crop import crop_affine, person_box
from corrupt_bench.data.skeleton import FLIP_PERMUTATION, JOINT_NAMES, ROOT
from corrupt_bench.engine import Clip, corrupt_clip, list_corruptions
from corrupt_bench.models.data import (
    TEST_SUBJECTS,
    crop_box_for,
    load_crops,
    load_pose_sequences,
    present_subjects,
)

SEED = 0
SEVERITIES = (1, 2, 3, 4, 5)
MARGIN = 0.15


def pck_hits(keypoints: np.ndarray, labels: np.ndarray, threshold: float = 0.1) -> np.ndarray:
    """(N, 17) bool: joint within threshold x the longer side of the tight label box (NaN = miss)."""
    tight = person_box(labels, 0.0)
    side = np.max(tight[:, 2:] - tight[:, :2], axis=1)
    err = np.nan_to_num(np.linalg.norm(keypoints - labels, axis=-1), nan=np.inf)
    return err < threshold * side[:, None]


def load_detector2d(checkpoint: Path):
    from corrupt_bench.models.loading import load_detector

    return load_detector(checkpoint, "cpu").model


def test_clips(data: Path, size: int, step: int) -> list[tuple[Clip, np.ndarray]]:
    """One single-view clip of person crops per (subject, sequence, camera) of S9 / S11, with its
    (T, 17, 3) camera-frame ground truth (mm)."""
    subjects = present_subjects(data, TEST_SUBJECTS)
    crops = load_crops(data, subjects, size=size, step=step, margin=MARGIN)
    sequences = {(s.subject, s.sequence, s.camera.camera_id): s for s in load_pose_sequences(data, subjects)}
    keys = list(zip(crops.subjects, crops.sequences, [c.camera_id for c in crops.cameras], strict=True))
    out = []
    for key in dict.fromkeys(keys):
        sel = np.array([i for i, k in enumerate(keys) if k == key])
        seq = sequences[key]
        frames = crops.frames[sel]
        labels = crops.joints_2d[sel].astype(np.float64)
        clip = Clip(
            subject=key[0], sequence=key[1], fps=50.0, frame_indices=frames, cameras=(seq.camera,),
            images=crops.images[sel][None], joints_2d=labels[None], joints_3d_world=seq.joints_3d_world[frames],
            boxes=person_box(labels, MARGIN)[None],
            crop_affine=np.stack([crop_affine(box, size) for box in crops.crops[sel]])[None],
            n_frames=seq.n_frames,
        )  # fmt: skip
        out.append((clip, seq.joints_3d_cam[frames].astype(np.float64)))
    return out


def image_corruptions() -> list[str]:
    return [c.name for c in list_corruptions() if c.family.modality in ("pixel", "temporal")]


def section_pck(clips, blaze, det2d) -> None:
    names = ["clean", *image_corruptions()]
    n = sum(c.n_times for c, _ in clips)
    print(f"\n### PCK@0.1 on {n} person crops per cell (S9, S11; {clips[0][0].images.shape[2]} px)\n")
    cols = ["corruption", "severity", "blazepose PCK@0.1 %", "blazepose found %"]
    cols += ["detector2d PCK@0.1 %"] if det2d is not None else []
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for name in names:
        for severity in (0,) if name == "clean" else SEVERITIES:
            images, labels = [], []
            for clip, _ in clips:
                out, record = corrupt_clip(clip, name, severity, SEED)
                images.append(out.images[0])
                labels.append(record.joints_2d[0])
            images, labels = np.concatenate(images), np.concatenate(labels)
            kp, conf = blaze.detect(images)
            row = [name, str(severity), f"{100 * pck_hits(kp, labels).mean():.1f}", f"{100 * np.mean(conf[:, 0] > 0):.1f}"]
            if det2d is not None:
                row.append(f"{100 * pck_hits(det2d.detect(images)[0], labels).mean():.1f}")
            print("| " + " | ".join(row) + " |", flush=True)


def section_joints(clips, blaze, model3d) -> None:
    from corrupt_bench.harness.metrics import mpjpe, p_mpjpe
    from corrupt_bench.models.blazepose import PREDICTED_JOINTS

    images = np.concatenate([c.images[0] for c, _ in clips])
    labels = np.concatenate([c.joints_2d[0] for c, _ in clips])
    gt = np.concatenate([g for _, g in clips])
    gt = gt - gt[:, ROOT : ROOT + 1]
    kp, conf = blaze.detect(images)
    found = conf[:, 0] > 0
    pred = model3d.predict({"images": images[:, None, None]})[:, 0, 0]
    err2 = np.linalg.norm(kp - labels, axis=-1)
    hits = pck_hits(kp, labels)
    err3 = np.linalg.norm(pred - gt, axis=-1)
    print(f"\n### Per joint, clean crops ({len(images)}; person found in {found.sum()})\n")
    print("| joint | rule | 2D error px (found) | PCK@0.1 % | 3D error mm (found) |")
    print("|---|---|---|---|---|")
    for j, name in enumerate(JOINT_NAMES):
        rule = "landmark" if j in PREDICTED_JOINTS and j != ROOT else "derived"
        print(f"| {name} | {rule} | {np.mean(err2[found, j]):.1f} | {100 * hits[:, j].mean():.1f} | "
              f"{np.mean(err3[found, j]):.0f} |")
    p, g = pred[found], gt[found]
    sel = list(PREDICTED_JOINTS)
    print(f"\n3D on the {found.sum()} crops with a person (root-relative, camera frame):\n")
    print("| joints | MPJPE mm | P-MPJPE mm |")
    print("|---|---|---|")
    print(f"| all 17 | {float(mpjpe(p, g)):.1f} | {float(p_mpjpe(p, g)):.1f} |")
    print(f"| declared {len(sel)} | {float(mpjpe(p[:, sel], g[:, sel])):.1f} | {float(p_mpjpe(p[:, sel], g[:, sel])):.1f} |")
    print(f"\n(failed frames: {int((~found).sum())} of {len(found)}; not in the 3D means above)")
    swapped = np.linalg.norm(kp[:, list(FLIP_PERMUTATION)] - labels, axis=-1)
    limbs = [j for j in PREDICTED_JOINTS if j != ROOT]
    flips = np.nanmean(swapped[found][:, limbs], 1) < np.nanmean(err2[found][:, limbs], 1)
    print(f"left/right swapped (the mirrored assignment fits the 12 limb joints better): {flips.mean() * 100:.1f} % "
          "of found crops")
    h = np.einsum("nji,njk->ik", p, g)  # the rotation that best maps predictions onto ground truth
    u, _, vt = np.linalg.svd(h)
    rotation = (u @ vt).T
    angle = np.degrees(np.arccos(np.clip((np.trace(rotation) - 1) / 2, -1, 1)))
    corr = [np.corrcoef(p[..., a].ravel(), g[..., a].ravel())[0, 1] for a in range(3)]
    print(f"3D axes: correlation with ground truth x {corr[0]:.2f}, y {corr[1]:.2f}, z {corr[2]:.2f}; best global "
          f"rotation prediction -> ground truth {angle:.1f} deg (diagonal {np.round(np.diag(rotation), 3).tolist()})")


def section_size(blaze) -> None:
    from corrupt_bench.data.cameras import CAMERA_IDS, get_camera, project, world_to_camera
    from corrupt_bench.data.crop import crop_image, to_crop
    from corrupt_bench.data.skeleton import raw_to_h36m17
    from corrupt_bench.data.synth import (
        appearance_for,
        camera_background,
        render_frames,
        synthetic_motion_raw,
    )

    print("\n### By person size (rendered frames, S9 S11, 6 motions, 4 cameras, 5 instants each)\n")
    print("| divisor | frame px | person height px (median) | input | found % | PCK@0.1 % |")
    print("|---|---|---|---|---|---|")
    for divisor in (2, 4, 6, 8, 12, 16):
        frames, labels = [], []
        for subject in TEST_SUBJECTS:
            for action in ("walk", "wave", "sit", "squat", "bend", "jump"):
                joints = raw_to_h36m17(synthetic_motion_raw(subject, action, 200, SEED))[5::40]
                for cam_id in CAMERA_IDS:
                    camera = get_camera(subject, cam_id).scaled(divisor)
                    bg = camera_background(subject, cam_id, divisor, SEED)
                    j2 = project(world_to_camera(joints, camera), camera)
                    for image, label in zip(render_frames(joints, camera, appearance_for(subject, SEED), bg), j2, strict=True):
                        frames.append(image)
                        labels.append(label)
        labels = np.asarray(labels)
        height = np.median(labels[..., 1].max(-1) - labels[..., 1].min(-1))
        shape = f"{frames[0].shape[1]}x{frames[0].shape[0]}"
        kp, conf = [], []
        for frame in frames:  # camera sizes differ by a row: one at a time
            k, c = blaze.detect(frame[None])
            kp.append(k[0])
            conf.append(c[0])
        kp, conf = np.asarray(kp), np.asarray(conf)
        print(f"| {divisor} | {shape} | {height:.0f} | full frame | {100 * np.mean(conf[:, 0] > 0):.1f} | "
              f"{100 * pck_hits(kp, labels).mean():.1f} |")
        boxes = crop_box_for(labels, MARGIN)
        for size in (64, 128, 256):
            crops = np.stack([crop_image(f, b, size) for f, b in zip(frames, boxes, strict=True)])
            lab = np.stack([to_crop(j, b, size) for j, b in zip(labels, boxes, strict=True)])
            k, c = blaze.detect(crops)
            print(f"| {divisor} | {shape} | {height:.0f} | {size} px crop | {100 * np.mean(c[:, 0] > 0):.1f} | "
                  f"{100 * pck_hits(k, lab).mean():.1f} |", flush=True)


def section_time(clips, blaze, det2d, repeats: int) -> None:
    import cv2

    crops = np.concatenate([c.images[0] for c, _ in clips])[:repeats]
    large = np.stack([cv2.resize(c, (1000, 1000), interpolation=cv2.INTER_LINEAR) for c in crops[:20]])
    print(f"\n### Time per image on CPU ({os.cpu_count()} cores; load average before: "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())})\n")
    print("| model | input | call | median s/image | images |")
    print("|---|---|---|---|---|")
    blaze.detect(crops[:1])  # graph start-up outside the timing
    rows = [("blazepose", f"{crops.shape[1]} px crop", blaze.detect, crops),
            ("blazepose", "1000 px image", blaze.detect, large)]
    if det2d is not None:
        rows.append(("detector2d tiny (flip test)", f"{crops.shape[1]} px crop -> 64", det2d.detect, crops))
    for name, what, fn, images in rows:
        secs = []
        for image in images:
            t0 = time.perf_counter()
            fn(image[None])
            secs.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        fn(images)
        batched = (time.perf_counter() - t0) / len(images)
        print(f"| {name} | {what} | one image | {np.median(secs):.4f} | {len(secs)} |")
        print(f"| {name} | {what} | all at once (mean) | {batched:.4f} | {len(images)} |")
    print(f"\n(load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())})")


def real_footage(rig_path: Path, blaze) -> dict:
    """BlazePose on every frame of every camera of a rig (RGB, native size): keypoints (V, T, 17, 2) px,
    confidence (V, T, 17), the triangulated world joints (T, 17, 3) mm and the reprojections (V, T, 17, 2)
    with all views and with each view held out; the cameras, frame sizes and seconds per frame."""
    from corrupt_bench.data.cameras import project_world
    from corrupt_bench.data.multiview import MultiViewRig
    from corrupt_bench.models.triangulation import triangulate_dlt

    rig = MultiViewRig(rig_path)
    keypoints, confidence, cameras, sizes, seconds = [], [], [], [], []
    for ref in rig.sequences():
        for camera_id in ref.cameras:
            with rig.video(ref, camera_id) as video:
                frames = np.stack([video.frame(i) for i in range(ref.n_frames)])
            t0 = time.perf_counter()
            kp, conf = blaze.detect(frames)
            seconds.append((time.perf_counter() - t0) / len(frames))
            keypoints.append(kp.astype(np.float64))
            confidence.append(conf.astype(np.float64))
            cameras.append(rig.camera(ref.subject, camera_id))
            sizes.append(frames.shape[1:3])
    kp, conf = np.stack(keypoints), np.stack(confidence)
    world = triangulate_dlt(kp, conf, cameras)
    held_out = []
    for v in range(len(cameras)):
        others = [u for u in range(len(cameras)) if u != v]
        held_out.append(project_world(triangulate_dlt(kp[others], conf[others], [cameras[u] for u in others]), cameras[v]))
    return {"keypoints": kp, "confidence": conf, "world": world, "cameras": cameras, "sizes": sizes,
            "reprojected": np.stack([project_world(world, c) for c in cameras]), "held_out": np.stack(held_out),
            "seconds": seconds}  # fmt: skip


def section_real(rig_path: Path, blaze) -> None:
    out = real_footage(rig_path, blaze)
    kp = out["keypoints"]
    found = np.isfinite(kp).all(axis=(-1, -2))  # (V, T)
    err = np.linalg.norm(out["reprojected"] - kp, axis=-1)  # (V, T, 17), NaN where not found
    loo = np.linalg.norm(out["held_out"] - kp, axis=-1)
    ys = np.where(found[..., None], kp[..., 1], 0.0)
    height = np.where(found, ys.max(axis=-1) - ys.min(axis=-1), np.nan)  # of the detected joints
    print(f"\n### Real footage: {rig_path} ({len(out['cameras'])} cameras x {kp.shape[1]} frames; load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())})\n")
    print("| camera | frame (h x w) | found | person height px (median) | reprojection px, median (mean) | "
          "held-out reprojection px, median | s/frame |")
    print("|---|---|---|---|---|---|---|")
    for v, camera in enumerate(out["cameras"]):
        h, w = out["sizes"][v]
        print(f"| {camera.camera_id} | {h} x {w} | {found[v].sum()}/{found.shape[1]} | {np.nanmedian(height[v]):.0f} | "
              f"{np.nanmedian(err[v]):.1f} ({np.nanmean(err[v]):.1f}) | {np.nanmedian(loo[v]):.1f} | {out['seconds'][v]:.3f} |")
    print(f"| all | | {found.sum()}/{found.size} ({100 * found.mean():.1f} %) | {np.nanmedian(height):.0f} | "
          f"{np.nanmedian(err):.1f} ({np.nanmean(err):.1f}) | {np.nanmedian(loo):.1f} | {np.mean(out['seconds']):.3f} |")
    print(f"\nTriangulated frames (>= 2 views found): {int(np.isfinite(out['world']).all(axis=(-1, -2)).sum())}/{kp.shape[1]}; "
          f"median confidence of found joints {np.median(out['confidence'][found]):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="synthetic raw-layout source with S9 and S11 (all but real)")
    parser.add_argument("--detector2d", type=Path, default=None, help="trained detector2d checkpoint (optional)")
    parser.add_argument("--step", type=int, default=25, help="every n-th frame of every test sequence and camera")
    parser.add_argument("--size", type=int, default=256, help="person crop size in px")
    parser.add_argument("--sections", default="pck,joints,size,time,real")
    parser.add_argument("--rig", type=Path, default=Path(__file__).resolve().parents[1] / "tests/fixtures/pose2sim",
                        help="calibrated multi-view rig of real video (section real)")
    parser.add_argument("--time-images", type=int, default=100)
    args = parser.parse_args()

    import torch

    from corrupt_bench.models.loading import load_detector, load_model

    torch.set_num_threads(2)
    sections = set(args.sections.split(","))
    if args.data is None and sections - {"size", "real"}:
        parser.error("--data is needed for the sections pck, joints and time")
    blaze = load_detector("blazepose", "cpu").model
    det2d = load_detector2d(args.detector2d) if args.detector2d else None
    clips = test_clips(args.data, args.size, args.step) if sections - {"size", "real"} else []
    print(f"blazepose config {blaze.config.model_dump()}; digest {blaze.digest[:16]}")
    if "pck" in sections:
        section_pck(clips, blaze, det2d)
    if "joints" in sections:
        section_joints(clips, blaze, load_model("blazepose", device="cpu", kind="predictor").model)
    if "size" in sections:
        section_size(blaze)
    if "time" in sections:
        section_time(clips, blaze, det2d, args.time_images)
    if "real" in sections:
        section_real(args.rig, blaze)


if __name__ == "__main__":
    main()
