"""Tiny generated-benchmark folders in the real layout (label parquet via the generator's own schema),
built from a raw fixture, for the scoring and report tests; plus user models loaded by `module:factory`."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
from fixtures_raw import write_raw

from corrupt_bench.data.cameras import project_world, world_to_camera
from corrupt_bench.data.raw import RawH36M
from corrupt_bench.generate.writers import labels_table, write_labels
from corrupt_bench.layout import image_folder, image_name
from corrupt_bench.models.protocol import InputSpec

SEQUENCES = {"S9": ["Eating 2", "Walking 1"], "S11": ["Posing"]}


def raw_source(root: Path, n_frames: int = 12) -> Path:
    """A raw folder (cameras.json at 1/20 size, CDF mocap and 2D, no videos)."""
    return write_raw(root, SEQUENCES, n_frames=n_frames, videos=False)


def generated_benchmark(root: Path, raw: Path, grid: dict[str, list[int]] | None = None, variant: str = "demo",
                        images: int | None = None) -> Path:  # fmt: skip
    """Label files for `grid` {corruption: severities} (clean 0 always): 'kp_noise' puts GT 2D plus
    severity x 0.1 px of seeded noise (the frames are 50 px wide) into `keypoints_2d`; 'view_drop' marks the last camera invalid and
    hides joints 11..16 (`occluded`). `images=S`: every row also gets an S x S PNG person crop (seeded
    noise, written through OpenCV in the benchmark layout) named in its `image` column."""
    grid = {"kp_noise": [1, 2, 3], "view_drop": [1, 2]} if grid is None else grid
    source = RawH36M(raw)
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(raw / "cameras.json", root / "cameras.json")
    (root / "lock.json").write_text(json.dumps({"manifest_digest": "fixture", "files": {}}))
    cells = [("clean", 0)] + [(c, s) for c, sev in grid.items() for s in sev]
    for corruption, severity in cells:
        for ref in source.sequences():
            columns: dict[str, list] = {}
            world = source.poses_world(ref)
            for ci, camera_id in enumerate(ref.cameras):
                cam = source.camera(ref.subject, camera_id)
                j2d = project_world(world, cam)
                j3d = world_to_camera(world, cam)
                rng = np.random.default_rng([severity, ci, len(ref.sequence)])
                for f in range(ref.n_frames):
                    kp = conf = None
                    occluded = [False] * 17
                    valid = True
                    if corruption == "kp_noise":
                        kp = (j2d[f] + rng.normal(0.0, 0.1 * severity, size=(17, 2))).ravel().tolist()
                        conf = [1.0] * 17
                    if corruption == "view_drop":
                        occluded = [j >= 11 for j in range(17)]
                        valid = ci != len(ref.cameras) - 1
                    image = None
                    if images:
                        folder = image_folder(root, variant, corruption, severity, ref.subject, ref.sequence, camera_id)
                        folder.mkdir(parents=True, exist_ok=True)
                        pixel_rng = np.random.default_rng([severity, ci, len(ref.sequence), f, 1])  # not the 2D noise's stream
                        pixels = pixel_rng.integers(1, 256, size=(images, images, 3), dtype=np.uint8)
                        cv2.imwrite(str(folder / image_name(f, "png")), pixels)
                        image = str((folder / image_name(f, "png")).relative_to(root))
                    row = {
                        "variant": variant, "corruption": corruption, "severity": severity, "subject": ref.subject,
                        "sequence": ref.sequence, "action": ref.action, "subaction": ref.subaction, "camera": camera_id,
                        "frame": f, "image": image, "joints_3d_cam": j3d[f].ravel().tolist(),
                        "joints_3d_world": world[f].ravel().tolist(), "joints_2d": j2d[f].ravel().tolist(),
                        "joints_2d_crop": j2d[f].ravel().tolist(), "box": [0.0, 0.0, 50.0, 50.0],
                        "crop": [0.0, 0.0, 50.0, 50.0], "image_size": [images or 50] * 2, "keypoints_2d": kp,
                        "keypoint_conf": conf, "occluded": occluded, "view_valid": valid, "time_offset": 0.0,
                        "params": "{}",
                    }  # fmt: skip
                    for k, v in row.items():
                        columns.setdefault(k, []).append(v)
            path = root / variant / corruption / str(severity) / "labels" / f"{ref.subject}_{ref.sequence}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_labels(path, labels_table(columns))
    return root


class SlowZero:
    """A user model (loaded as `fixtures_bench:slow_zero`) predicting zeros, slowly, for the kill test."""

    name = "slow-zero"
    module = None

    def __init__(self, config: dict, device):
        self.delay = float(config.get("delay", 0.3))
        self.input_spec = InputSpec(kind="keypoints2d", multi_view=False, window=int(config.get("window", 4)))

    def predict(self, batch: dict) -> np.ndarray:
        time.sleep(self.delay)
        b, v, t = batch["keypoints_2d"].shape[:3]
        return np.zeros((b, v, t, 17, 3))


def slow_zero(config: dict, device) -> SlowZero:
    return SlowZero(config, device)


class Failing:
    """A user model that fails on one subject (`bad_subject: "*"`: on every one): the cell error is
    recorded and the run goes on."""

    name = "failing"
    module = None
    input_spec = InputSpec(kind="keypoints2d")

    def __init__(self, config: dict, device):
        self.bad_subject = config.get("bad_subject", "S11")

    def predict(self, batch: dict) -> np.ndarray:
        if self.bad_subject in ("*", batch["subject"][0]):
            raise RuntimeError("boom on purpose")
        b, v, t = batch["keypoints_2d"].shape[:3]
        out = np.zeros((b, v, t, 17, 3))
        out[:, :, :, 1:] = 100.0
        odd = np.asarray(batch["frames"]) % 2 == 1  # (B, T): odd source frames are non-finite
        out[np.broadcast_to(odd[:, None, :], (b, v, t))] = np.nan
        return out


def failing(config: dict, device) -> Failing:
    return Failing(config, device)


class LinearLifter:
    """A user model with weights (`fixtures_bench:linear_lifter`): one linear layer 2D -> 3D."""

    name = "linear-lifter"
    input_spec = InputSpec(kind="keypoints2d")

    def __init__(self, config: dict, device):
        import torch

        self.module = torch.nn.Linear(34, 51)
        with torch.no_grad():  # deterministic init without the global torch RNG
            self.module.weight.copy_(torch.linspace(-1.0, 1.0, 51 * 34).reshape(51, 34))
            self.module.bias.zero_()
        self.device = torch.device(device or "cpu")
        self.module.to(self.device)

    def predict(self, batch: dict) -> np.ndarray:
        import torch

        kp = torch.as_tensor(batch["keypoints_2d"], dtype=torch.float32, device=self.device)
        out = self.module(kp.flatten(-2)).reshape(*kp.shape[:-2], 17, 3)
        return out.cpu().numpy().astype(np.float64)


def linear_lifter(config: dict, device) -> LinearLifter:
    return LinearLifter(config, device)


class ShiftRefiner:
    """A user refiner (`fixtures_bench:shift_refiner`): moves every non-root joint so MPJPE grows by `mm`."""

    name = "shift"
    module = None

    def __init__(self, config: dict, device):
        self.mm = float(config.get("mm", 5.0))
        self.calls: list[float] = []

    def refine(self, poses: np.ndarray, fps: float) -> np.ndarray:
        out = np.array(poses, dtype=np.float64)
        out[:, 1:, 0] += self.mm * 17 / 16
        return out


def shift_refiner(config: dict, device) -> ShiftRefiner:
    return ShiftRefiner(config, device)


class ImageProbe:
    """A user image model (`fixtures_bench:image_probe`): checks the decoded crops and predicts zeros.

    Its error (the GT pose norm) is finite only if every image arrived as (B, 1, T, S, S, 3) uint8 RGB
    with content; otherwise it returns NaN so the test sees non-finite frames."""

    name = "image-probe"
    module = None

    def __init__(self, config: dict, device):
        self.size = int(config.get("image_size", 48))
        self.input_spec = InputSpec(kind="images", window=int(config.get("window", 3)), image_size=self.size)

    def predict(self, batch: dict) -> np.ndarray:
        images = batch["images"]
        b, v, t = images.shape[:3]
        ok = images.dtype == np.uint8 and images.shape[3:] == (self.size, self.size, 3) and "keypoints_2d" not in batch
        out = np.zeros((b, v, t, 17, 3))
        bright = images.reshape(b, v, t, -1).max(axis=-1) > 0
        out[~bright] = np.nan
        return out if ok else np.full_like(out, np.nan)


def image_probe(config: dict, device) -> ImageProbe:
    return ImageProbe(config, device)
