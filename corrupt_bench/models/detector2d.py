"""`detector2d`: a heatmap 2D keypoint detector for square person crops, with per-joint confidence.

A SimpleBaselines-style network (Xiao et al., ECCV 2018) written here: a ResNet of basic blocks, then
transposed convolutions back to 1/4 of the input size and one heatmap per joint. Decoding: argmax,
then a quadratic (parabola) fit through the peak and its neighbours along x and y for sub-pixel
accuracy; the confidence is the heatmap's peak value clipped to [0, 1]. Flip test averaging
(heatmaps of the mirrored crop, flipped back with left/right swapped) is a config switch.

It implements the `Detector2D` protocol (`corrupt_bench.models.protocol`); the harness runs it over
a benchmark's images through that protocol (`score --detector`, INTERFACES "2D detections"). A
heatmap detector always has a best guess: it never reports "no person" (its confidence says how sure
it is).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from corrupt_bench.data.skeleton import FLIP_PERMUTATION, N_JOINTS
from corrupt_bench.models.data import TRAIN_SUBJECTS, load_crops, present_subjects
from corrupt_bench.models.protocol import InputSpec
from corrupt_bench.models.training import FitResult, fit, pick_device

NAME = "detector2d"


class AugmentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scale: float = 0.2  # scale factor drawn in [1 - scale, 1 + scale]
    shift: float = 0.08  # shift in [-shift, shift] of the crop size, per axis
    rotation_deg: float = 15.0
    flip_p: float = 0.5
    colour: float = 0.25  # per-channel gain in [1 - colour, 1 + colour], brightness offset +-64*colour


class DetectorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = NAME
    image_size: int = 64
    stem_channels: int = 32
    stage_channels: list[int] = Field(default_factory=lambda: [32, 64, 128])
    blocks: list[int] = Field(default_factory=lambda: [1, 1, 1])
    deconv_channels: int = 64
    sigma: float = 1.0  # target Gaussian std in heatmap px
    margin: float = 0.2  # person box margin of the training crops
    crop_step: int = 2  # every n-th frame of the training videos
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    flip_test: bool = True
    batch_size: int = 32
    lr: float = 2e-3
    lr_decay: float = 0.9
    epochs: int = 6
    steps_per_epoch: int = 100
    seed: int = 0

    @property
    def stride(self) -> int:
        return 4  # stem /4, stages /2^(n-1), deconvs x2 each back to /4

    @property
    def heatmap_size(self) -> int:
        return self.image_size // self.stride


def input_spec(config: dict) -> InputSpec:
    """Square person crops of the configured size, one at a time."""
    cfg = DetectorConfig.model_validate(config)
    return InputSpec(kind="images", multi_view=False, window=1, image_size=cfg.image_size)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + (x if self.down is None else self.down(x)))


class HeatmapNet(nn.Module):
    """ResNet (basic blocks) + transposed convolutions: (B, 3, S, S) in [0, 1] -> (B, 17, S/4, S/4) heatmaps."""

    def __init__(self, cfg: DetectorConfig):
        super().__init__()
        c0 = cfg.stem_channels
        self.stem = nn.Sequential(
            nn.Conv2d(3, c0, 3, 2, 1, bias=False), nn.BatchNorm2d(c0), nn.ReLU(inplace=True),
            nn.Conv2d(c0, c0, 3, 2, 1, bias=False), nn.BatchNorm2d(c0), nn.ReLU(inplace=True),
        )
        layers, cin = [], c0
        for i, (c, n) in enumerate(zip(cfg.stage_channels, cfg.blocks, strict=True)):
            for j in range(n):
                layers.append(BasicBlock(cin, c, 2 if (i > 0 and j == 0) else 1))
                cin = c
        self.stages = nn.Sequential(*layers)
        ups = []
        for _ in range(len(cfg.stage_channels) - 1):
            ups += [nn.ConvTranspose2d(cin, cfg.deconv_channels, 4, 2, 1, bias=False),
                    nn.BatchNorm2d(cfg.deconv_channels), nn.ReLU(inplace=True)]
            cin = cfg.deconv_channels
        self.up = nn.Sequential(*ups)
        self.head = nn.Conv2d(cin, N_JOINTS, 1)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = (images - self.mean) / self.std
        return self.head(self.up(self.stages(self.stem(x))))


def gaussian_targets(joints_hm: np.ndarray, size: int, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """(B, 17, 2) heatmap-px joints -> (B, 17, size, size) Gaussians (peak 1) and (B, 17) weights (0 off-map)."""
    grid = np.arange(size, dtype=np.float32)
    dx = grid[None, None, None, :] - joints_hm[..., 0, None, None]
    dy = grid[None, None, :, None] - joints_hm[..., 1, None, None]
    maps = np.exp(-(dx**2 + dy**2) / (2 * sigma**2)).astype(np.float32)
    inside = np.all((joints_hm >= -0.5) & (joints_hm <= size - 0.5), axis=-1)
    return maps, inside.astype(np.float32)


def decode_heatmaps(heatmaps: np.ndarray, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, 17, h, w) -> (N, 17, 2) crop px and (N, 17) confidence: argmax + parabola refinement.

    Heatmap cell i has its centre at crop px (i + 0.5) * stride - 0.5."""
    n, j, h, w = heatmaps.shape
    flat = heatmaps.reshape(n, j, -1)
    idx = flat.argmax(-1)
    peak = np.take_along_axis(flat, idx[..., None], -1)[..., 0]
    ys, xs = np.divmod(idx, w)

    def refine(center, lo, hi, pos, limit):
        denom = lo - 2 * center + hi
        off = np.where(denom < 0, 0.5 * (lo - hi) / np.where(denom < 0, denom, -1.0), 0.0)
        off = np.clip(off, -0.5, 0.5)
        return np.where((pos > 0) & (pos < limit - 1), off, 0.0)

    nn_, jj = np.meshgrid(np.arange(n), np.arange(j), indexing="ij")
    left = heatmaps[nn_, jj, ys, np.clip(xs - 1, 0, w - 1)]
    right = heatmaps[nn_, jj, ys, np.clip(xs + 1, 0, w - 1)]
    up = heatmaps[nn_, jj, np.clip(ys - 1, 0, h - 1), xs]
    down = heatmaps[nn_, jj, np.clip(ys + 1, 0, h - 1), xs]
    x = xs + refine(peak, left, right, xs, w)
    y = ys + refine(peak, up, down, ys, h)
    coords = (np.stack([x, y], -1) + 0.5) * stride - 0.5
    return coords.astype(np.float32), np.clip(peak, 0.0, 1.0).astype(np.float32)


class HeatmapDetector:
    """The 2D detector (a `Detector2D`): `detect(images (N, H, W, 3) uint8) -> (N, 17, 2) px of those
    images, (N, 17) confidence`."""

    name = NAME

    def __init__(self, config: dict, device: str | None = None):
        self.config = DetectorConfig(**config)
        self.device = pick_device(device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed)
            self.module = HeatmapNet(self.config).to(self.device)
        self.input_spec = input_spec(config)

    def _resize(self, images: np.ndarray) -> tuple[np.ndarray, float, float]:
        import cv2

        n, h, w = images.shape[:3]
        size = self.config.image_size
        if (h, w) == (size, size):
            return images, 1.0, 1.0
        out = np.stack([cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA if h > size else cv2.INTER_LINEAR)
                        for im in images])
        return out, w / size, h / size

    @torch.no_grad()
    def heatmaps(self, images: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 at the detector's size -> (N, 17, S/4, S/4) float32 (flip-averaged if set)."""
        self.module.eval()
        x = torch.as_tensor(images, device=self.device).permute(0, 3, 1, 2).float() / 255.0
        hm = self.module(x)
        if self.config.flip_test:
            hf = self.module(torch.flip(x, dims=[3]))
            hm = (hm + torch.flip(hf, dims=[3])[:, list(FLIP_PERMUTATION)]) / 2
        return hm.float().cpu().numpy()

    def detect(self, images: np.ndarray, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints in the pixels of the given images (resized to the detector's size and mapped back)."""
        images = np.asarray(images)
        if len(images) == 0:
            return np.zeros((0, N_JOINTS, 2), np.float32), np.zeros((0, N_JOINTS), np.float32)
        resized, sx, sy = self._resize(images)
        coords, confs = [], []
        for i in range(0, len(resized), batch_size):
            c, p = decode_heatmaps(self.heatmaps(resized[i : i + batch_size]), self.config.stride)
            coords.append(c)
            confs.append(p)
        xy = np.concatenate(coords)
        xy = (xy + 0.5) * np.array([sx, sy], dtype=np.float32) - 0.5  # pixel centres of the given size
        return xy.astype(np.float32), np.concatenate(confs)


def augment(
    images: np.ndarray, joints: np.ndarray, cfg: DetectorConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Random similarity warp (scale, shift, rotation), horizontal flip with joint swap, colour jitter."""
    import cv2

    a = cfg.augment
    size = images.shape[1]
    out_img = np.empty_like(images)
    out_j = np.empty_like(joints)
    c = (size - 1) / 2
    for i in range(len(images)):
        s = rng.uniform(1 - a.scale, 1 + a.scale)
        rot = rng.uniform(-a.rotation_deg, a.rotation_deg)
        shift = rng.uniform(-a.shift, a.shift, size=2) * size
        m = cv2.getRotationMatrix2D((c, c), rot, s)
        m[:, 2] += shift
        img = cv2.warpAffine(images[i], m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        jt = joints[i] @ m[:, :2].T + m[:, 2]
        if rng.random() < a.flip_p:
            img = img[:, ::-1]
            jt = jt[list(FLIP_PERMUTATION)]
            jt[:, 0] = size - 1 - jt[:, 0]
        gain = rng.uniform(1 - a.colour, 1 + a.colour, size=3)
        offset = rng.uniform(-64 * a.colour, 64 * a.colour)
        out_img[i] = np.clip(img.astype(np.float32) * gain + offset, 0, 255).astype(np.uint8)
        out_j[i] = jt
    return out_img, out_j


def train_detector2d(config: dict, data: Path, out: Path, device: str | None = None) -> FitResult:
    """Train on person crops of the train subjects present in `data`; MSE on Gaussian heatmaps."""
    cfg = DetectorConfig(**config)
    dev = pick_device(device)
    subjects = present_subjects(data, TRAIN_SUBJECTS)
    crops = load_crops(data, subjects, size=cfg.image_size, step=cfg.crop_step, margin=cfg.margin)
    detector = HeatmapDetector(config, str(dev))
    model = detector.module
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, cfg.lr_decay)
    hm_size, stride = cfg.heatmap_size, cfg.stride

    def batches(epoch: int):
        rng = np.random.default_rng([cfg.seed, epoch])
        for _ in range(cfg.steps_per_epoch):
            idx = rng.integers(0, len(crops), size=cfg.batch_size)
            images, joints = augment(crops.images[idx], crops.joints_2d[idx].astype(np.float64), cfg, rng)
            maps, weights = gaussian_targets(((joints + 0.5) / stride - 0.5).astype(np.float32), hm_size, cfg.sigma)
            x = torch.from_numpy(images).to(dev).permute(0, 3, 1, 2).float() / 255.0
            yield x, torch.from_numpy(maps).to(dev), torch.from_numpy(weights).to(dev)

    def loss_fn(module: nn.Module, batch) -> tuple[torch.Tensor, dict[str, float]]:
        x, maps, weights = batch
        pred = module(x).float()
        per_joint = ((pred - maps) ** 2).mean(dim=(2, 3))
        loss = (per_joint * weights).sum() / weights.sum().clamp_min(1.0) * 1000.0
        return loss, {}

    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(cfg.seed)
        return fit(model_name=NAME, model=model, config=config, optimizer=optimizer, batches=batches,
                   loss_fn=loss_fn, epochs=cfg.epochs, out=out, device=dev, scheduler=scheduler,
                   extra_meta={"train_subjects": subjects, "train_crops": len(crops)}, steps_per_epoch=cfg.steps_per_epoch)


def create_detector2d(config: dict, device: str | None = None) -> HeatmapDetector:
    """Heatmap 2D keypoint detector for person crops (ResNet + deconvolutions), with confidences."""
    return HeatmapDetector(config, device)
