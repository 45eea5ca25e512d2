"""A source written in mmpose's processed Human3.6M layout from a raw fixture, exactly as mmpose's
`tools/dataset_converters/preprocess_h36m.py` writes it: frames as JPEG (`cv2.imwrite` of the decoded
video frame), `annotation_body3d/fps<50 // rate>/h36m_{train,test}.npz` (np.savez: imgname, center, scale,
part (D2_Positions px + 1), S (D3_Positions_mono in metres + 1)) and `annotation_body3d/cameras.pkl`."""

from __future__ import annotations

import pickle
from pathlib import Path

import cv2
import numpy as np

from corrupt_bench.data.cameras import Camera
from corrupt_bench.data.cdf_io import read_pose_cdf
from corrupt_bench.data.raw import RawH36M
from corrupt_bench.data.skeleton import raw_to_h36m17

TRAIN = ("S1", "S5", "S6", "S7", "S8")


def mmpose_camera(cam: Camera, index: int) -> dict:
    """One camera in mmpose's cameras.pkl convention (row vectors, metres, metadata's p order)."""
    column = lambda values: np.asarray(values, dtype=np.float64).reshape(-1, 1)  # noqa: E731
    return {
        "R": cam.R.T, "T": column(cam.position) / 1000.0, "c": column(cam.center), "f": column(cam.focal_length),
        "k": column(cam.radial), "p": column(cam.tangential[::-1]), "w": cam.width, "h": cam.height,
        "name": f"camera{index + 1}", "id": cam.camera_id,
    }  # fmt: skip


def write_mmpose(raw_root: Path, out: Path, sample_rate: int = 1, images: bool = True) -> Path:
    raw = RawH36M(raw_root, include_damaged=True, include_corrupt_video=True)
    splits: dict[str, dict[str, list]] = {"train": {}, "test": {}}
    cameras = {}
    for ref in raw.sequences():
        for index, camera_id in enumerate(ref.cameras):
            cam = raw.camera(ref.subject, camera_id)
            cameras[(ref.subject, camera_id)] = mmpose_camera(cam, index)
            frames = np.arange(0, ref.n_frames, sample_rate)
            kps_2d = raw.poses_2d(ref, camera_id)[frames]
            kps_3d = raw_to_h36m17(read_pose_cdf(raw.d3_mono_path(ref, camera_id), 96).reshape(-1, 32, 3))[frames] / 1000.0
            base = f"{ref.subject}_{ref.sequence.replace(' ', '_')}.{camera_id}"
            names = [f"{ref.subject}/{base}/{base}_{f + 1:06d}.jpg" for f in frames]
            if images:
                (out / "images" / ref.subject / base).mkdir(parents=True, exist_ok=True)
                capture = cv2.VideoCapture(str(raw.video_path(ref, camera_id)))
                for i in range(ref.n_frames):
                    ok, bgr = capture.read()
                    assert ok
                    if i % sample_rate == 0:
                        cv2.imwrite(str(out / "images" / f"{ref.subject}/{base}/{base}_{i + 1:06d}.jpg"), bgr)
                capture.release()
            lo, hi = kps_2d.min(axis=1), kps_2d.max(axis=1)
            rows = splits["train" if ref.subject in TRAIN else "test"]
            rows.setdefault("imgname", []).append(np.array(names))
            rows.setdefault("center", []).append((lo + hi) / 2)
            rows.setdefault("scale", []).append(1.2 * np.max(hi - lo, axis=1) / 200)
            rows.setdefault("part", []).append(np.concatenate([kps_2d, np.ones((len(frames), 17, 1))], axis=2))
            rows.setdefault("S", []).append(np.concatenate([kps_3d, np.ones((len(frames), 17, 1))], axis=2))
    folder = out / "annotation_body3d" / f"fps{50 // sample_rate}"
    folder.mkdir(parents=True, exist_ok=True)
    for split, rows in splits.items():
        if rows:
            np.savez(folder / f"h36m_{split}.npz", **{k: np.concatenate(v) for k, v in rows.items()})
    with open(out / "annotation_body3d" / "cameras.pkl", "wb") as handle:
        pickle.dump(cameras, handle)
    return out
