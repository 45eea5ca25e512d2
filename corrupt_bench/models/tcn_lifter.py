"""`tcn-lifter`: a VideoPose3D-style temporal convolution lifter (Pavllo et al., CVPR 2019) with the two
robustness techniques of Hoang et al. 2024 (Human3.6M-C) as switches:

- TAGN, temporally correlated additive Gaussian noise on the 2D input during training;
- CA-Conv, a confidence-aware first convolution.

Their code is not public; the formulations chosen are in `baselines/tcn-lifter/README.md` and in the
docstrings of `tagn_noise` and `ConfidenceAwareConv1d`.

Input: 2D keypoints in full-frame px (+ confidence), normalised to VideoPose3D screen coordinates with
the view's camera size. Output: root-relative 3D in the camera frame (metres inside, mm outside).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from corrupt_bench.data.skeleton import FLIP_PERMUTATION, JOINTS_LEFT, JOINTS_RIGHT, N_JOINTS
from corrupt_bench.layout import H36M_FPS
from corrupt_bench.models.data import (
    TEST_SUBJECTS,
    TRAIN_SUBJECTS,
    flip_pose,
    load_pose_sequences,
    normalize_screen,
    present_subjects,
    root_relative,
    sample_windows,
)
from corrupt_bench.models.protocol import InputSpec
from corrupt_bench.models.training import FitResult, fit, pick_device

NAME = "tcn-lifter"
REFERENCE_WIDTH = 1000.0  # TAGN sigmas are given in px of a 1000-px-wide Human3.6M frame


class TagnConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    p: float = Field(0.5, ge=0.0, le=1.0)  # share of training windows that get noise
    sigma_max_px: float = Field(10.0, ge=0.0)  # sigma ~ U(0, sigma_max) per window (1000-px frame)
    length_frames: float = Field(3.0, gt=0.0)  # std of the Gaussian low-pass kernel along time


class ConfidenceSimConfig(BaseModel):
    """How training confidences are made when the training 2D is ground truth (CA-Conv only)."""

    model_config = ConfigDict(extra="forbid")
    drop_p: float = Field(0.05, ge=0.0, le=1.0)  # joint-frames replaced by junk with confidence 0
    tau_px: float = Field(10.0, gt=0.0)  # conf = exp(-|noise| / tau) (1000-px frame)
    swap_p: float = Field(0.0, ge=0.0, le=1.0)  # per window and left/right pair: swap the pair over a segment
    swap_conf: float = Field(0.5, ge=0.0, le=1.0)  # confidence of swapped joints


class TcnConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = NAME
    filter_widths: list[int] = Field(default_factory=lambda: [3, 3, 3])
    channels: int = 128
    dropout: float = 0.25
    ca_conv: bool = True
    tagn: TagnConfig = Field(default_factory=TagnConfig)
    confidence_sim: ConfidenceSimConfig = Field(default_factory=ConfidenceSimConfig)
    flip_augment: bool = True
    flip_test: bool = True
    batch_size: int = 256
    lr: float = 1e-3
    lr_decay: float = 0.95  # per epoch, as VideoPose3D
    amsgrad: bool = True
    epochs: int = 10
    steps_per_epoch: int = 100
    seed: int = 0

    @property
    def receptive_field(self) -> int:
        rf = 1
        for fw in self.filter_widths:
            rf *= fw
        return rf


def input_spec(config: dict) -> InputSpec:
    """2D keypoints of one view, a window of one receptive field, at the 50 fps it trains at."""
    return InputSpec(kind="keypoints2d", multi_view=False, window=TcnConfig.model_validate(config).receptive_field, fps=H36M_FPS)


class ConfidenceAwareConv1d(nn.Module):
    """CA-Conv: a first convolution that weights each joint's coordinates by its confidence.

    With x (B, J*F, T) keypoint features, c (B, J, T) confidences in [0, 1] and kernel width k:

        y = W_x * (x . c) * (J k) / max(sum_window(c), 1)  +  W_c * c  +  b

    (x . c: each joint's F features times its confidence; sum_window(c): sum of the confidences over
    the J joints and k frames under the kernel). Zero-confidence inputs contribute exactly nothing
    (their coordinates are never read), the normalisation keeps the response scale when some joints
    are missing (partial convolution, Liu et al. 2018, with soft masks; the floor at 1 bounds the
    gain), and the confidence map itself is convolved alongside so the network knows what is missing.
    """

    def __init__(self, joints: int, features: int, out_channels: int, kernel_size: int):
        super().__init__()
        self.joints, self.features, self.kernel_size = joints, features, kernel_size
        self.conv_x = nn.Conv1d(joints * features, out_channels, kernel_size, bias=False)
        self.conv_c = nn.Conv1d(joints, out_channels, kernel_size, bias=True)

    def forward(self, x: torch.Tensor, conf: torch.Tensor) -> torch.Tensor:
        c = conf.repeat_interleave(self.features, dim=1)
        xc = torch.where(c > 0, x * c, torch.zeros_like(x))
        ones = torch.ones(1, self.joints, self.kernel_size, dtype=conf.dtype, device=conf.device)
        total = nn.functional.conv1d(conf, ones)  # (B, 1, T')
        scale = (self.joints * self.kernel_size) / total.clamp_min(1.0)
        return self.conv_x(xc) * scale + self.conv_c(conf)


class TemporalModel(nn.Module):
    """VideoPose3D's temporal convolution network (symmetric, non-causal): (B, T, J, 2) -> (B, T - RF + 1, J, 3)."""

    def __init__(self, filter_widths: list[int], channels: int, dropout: float, ca_conv: bool, joints: int = N_JOINTS):
        super().__init__()
        self.joints, self.ca_conv = joints, ca_conv
        self.filter_widths = list(filter_widths)
        if ca_conv:
            self.expand = ConfidenceAwareConv1d(joints, 2, channels, filter_widths[0])
        else:
            self.expand = nn.Conv1d(joints * 2, channels, filter_widths[0], bias=False)
        self.expand_bn = nn.BatchNorm1d(channels, momentum=0.1)
        self.drop = nn.Dropout(dropout)
        self.relu = nn.ReLU(inplace=True)
        convs, bns = [], []
        self.pads: list[int] = []
        dilation = filter_widths[0]
        for fw in filter_widths[1:]:
            self.pads.append((fw - 1) * dilation // 2)
            convs += [nn.Conv1d(channels, channels, fw, dilation=dilation, bias=False), nn.Conv1d(channels, channels, 1, bias=False)]
            bns += [nn.BatchNorm1d(channels, momentum=0.1), nn.BatchNorm1d(channels, momentum=0.1)]
            dilation *= fw
        self.layers_conv = nn.ModuleList(convs)
        self.layers_bn = nn.ModuleList(bns)
        self.shrink = nn.Conv1d(channels, joints * 3, 1)

    @property
    def receptive_field(self) -> int:
        return int(np.prod(self.filter_widths))

    def forward(self, x: torch.Tensor, conf: torch.Tensor | None = None) -> torch.Tensor:
        b, t = x.shape[:2]
        x = x.reshape(b, t, -1).permute(0, 2, 1)
        if self.ca_conv:
            if conf is None:
                conf = torch.ones(b, t, self.joints, dtype=x.dtype, device=x.device)
            h = self.expand(x, conf.permute(0, 2, 1).to(x.dtype))
        else:
            h = self.expand(torch.nan_to_num(x))
        h = self.drop(self.relu(self.expand_bn(h)))
        for i, pad in enumerate(self.pads):
            res = h[:, :, pad : h.shape[2] - pad]
            h = self.drop(self.relu(self.layers_bn[2 * i](self.layers_conv[2 * i](h))))
            h = res + self.drop(self.relu(self.layers_bn[2 * i + 1](self.layers_conv[2 * i + 1](h))))
        out = self.shrink(h)  # (B, J*3, T')
        return out.permute(0, 2, 1).reshape(b, -1, self.joints, 3)


def tagn_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: np.ndarray, length: float) -> np.ndarray:
    """TAGN noise for windows of shape (B, T, J, 2): white Gaussian noise low-pass filtered along time.

    n = sigma_b * (g * e) / sqrt(sum g^2), e ~ N(0, 1) i.i.d. over (t, j, axis), g a Gaussian kernel
    of std `length` frames (truncated at 3 std): every coordinate's noise has marginal std sigma_b
    (drawn per window) and a temporal correlation of about `length` frames, the way a detector's
    error drifts over neighbouring frames rather than flickering independently.
    """
    b, t = shape[:2]
    half = max(1, int(np.ceil(3 * length)))
    taps = np.exp(-0.5 * (np.arange(-half, half + 1) / length) ** 2)
    taps /= np.sqrt(np.sum(taps**2))
    white = rng.standard_normal((b, t + 2 * half, *shape[2:]))
    filtered = np.zeros(shape)
    for k, w in enumerate(taps):
        filtered += w * white[:, k : k + t]
    return filtered * np.asarray(sigma).reshape(b, *([1] * (len(shape) - 1)))


def swap_sides(
    px: np.ndarray, conf: np.ndarray, p: float, swap_conf: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Simulated left/right confusions of a detector: for each window (B, T, 17, 2) and each left/right
    joint pair, with probability `p`, exchange the pair's 2D over a random contiguous span of frames
    and set both confidences there to at most `swap_conf`."""
    px, conf = px.copy(), conf.copy()
    b, t = px.shape[:2]
    for left, right in zip(JOINTS_LEFT, JOINTS_RIGHT, strict=True):
        hit = rng.random(b) < p
        start = rng.integers(0, t, size=b)
        length = rng.integers(1, t + 1, size=b)
        for i in np.nonzero(hit)[0]:
            span = slice(start[i], min(start[i] + length[i], t))
            px[i, span, [left, right]] = px[i, span, [right, left]]
            conf[i, span, left] = np.minimum(conf[i, span, left], swap_conf)
            conf[i, span, right] = np.minimum(conf[i, span, right], swap_conf)
    return px, conf


def make_inputs(
    cfg: TcnConfig, joints_2d: np.ndarray, widths: np.ndarray, heights: np.ndarray, rng: np.random.Generator | None
) -> tuple[np.ndarray, np.ndarray]:
    """Training inputs from ground-truth px windows (B, T, 17, 2): TAGN and simulated confidences when
    `rng` is given, then normalised screen coordinates. Returns (inputs (B,T,17,2), conf (B,T,17))."""
    px = joints_2d.astype(np.float64)
    b = len(px)
    conf = np.ones(px.shape[:3])
    scale = (widths / REFERENCE_WIDTH).reshape(b, 1, 1)
    if rng is not None and cfg.tagn.enabled:
        sigma = rng.uniform(0.0, cfg.tagn.sigma_max_px, size=b) * (rng.random(b) < cfg.tagn.p)
        noise = tagn_noise(rng, px.shape, sigma, cfg.tagn.length_frames) * scale[..., None]
        px = px + noise
        if cfg.ca_conv:
            conf = np.exp(-np.linalg.norm(noise, axis=-1) / (cfg.confidence_sim.tau_px * scale))
    if rng is not None and cfg.ca_conv and cfg.confidence_sim.drop_p > 0:
        drop = rng.random(px.shape[:3]) < cfg.confidence_sim.drop_p
        junk = rng.uniform(0.0, 1.0, size=px.shape) * np.stack([widths, heights], -1).reshape(b, 1, 1, 2)
        px = np.where(drop[..., None], junk, px)
        conf = np.where(drop, 0.0, conf)
    if rng is not None and cfg.confidence_sim.swap_p > 0:
        px, conf = swap_sides(px, conf, cfg.confidence_sim.swap_p, cfg.confidence_sim.swap_conf, rng)
    norm = np.stack([normalize_screen(p, w, h) for p, w, h in zip(px, widths, heights, strict=True)])
    return norm.astype(np.float32), conf.astype(np.float32)


class TcnLifter:
    """The Predictor: single view, window = receptive field; returns the pose of every frame of the window.

    Each window is processed on its own: it is padded by replicating its first and last frames by
    (RF - 1) / 2, so frames near the window's ends see replicated context (as VideoPose3D does at the
    ends of a sequence). Missing keypoints (NaN) get confidence 0.
    """

    name = NAME

    def __init__(self, config: dict, device: str | None = None):
        self.config = TcnConfig(**config)
        self.device = pick_device(device)
        c = self.config
        with torch.random.fork_rng(devices=[]):  # initial weights from the config's seed, global state untouched
            torch.manual_seed(c.seed)
            self.module = TemporalModel(c.filter_widths, c.channels, c.dropout, c.ca_conv).to(self.device)
        self.input_spec = input_spec(config)

    @torch.no_grad()
    def lift(self, inputs: np.ndarray, conf: np.ndarray) -> np.ndarray:
        """(N, T, 17, 2) normalised screen coordinates + (N, T, 17) conf -> (N, T, 17, 3) root-relative mm."""
        self.module.eval()
        pad = (self.config.receptive_field - 1) // 2
        x = torch.as_tensor(inputs, dtype=torch.float32, device=self.device)
        c = torch.as_tensor(conf, dtype=torch.float32, device=self.device)
        idx = torch.clamp(torch.arange(-pad, x.shape[1] + pad, device=self.device), 0, x.shape[1] - 1)
        x, c = x[:, idx], c[:, idx]
        out = self.module(x, c)
        if self.config.flip_test:
            flipped = self.module(flip_pose(x), c[..., list(FLIP_PERMUTATION)])
            out = (out + flip_pose(flipped)) / 2
        out = out - out[..., :1, :]
        return out.float().cpu().numpy() * 1000.0

    def predict(self, batch: dict) -> np.ndarray:
        kp = np.asarray(batch["keypoints_2d"], dtype=np.float64)  # (B, V, T, 17, 2)
        b, v, t = kp.shape[:3]
        conf = batch.get("confidence")
        conf = np.ones(kp.shape[:4]) if conf is None else np.asarray(conf, dtype=np.float64)
        missing = ~np.isfinite(kp).all(axis=-1)
        conf = np.where(missing | ~np.isfinite(conf), 0.0, conf)
        kp = np.where(missing[..., None], 0.0, kp)
        norm = np.empty_like(kp)
        for view, camera in enumerate(batch["cameras"]):
            norm[:, view] = normalize_screen(kp[:, view], camera.width, camera.height)
        out = self.lift(norm.reshape(b * v, t, N_JOINTS, 2), conf.reshape(b * v, t, N_JOINTS))
        return out.reshape(b, v, t, N_JOINTS, 3)


def train_tcn_lifter(config: dict, data: Path, out: Path, device: str | None = None) -> FitResult:
    """Train on the train subjects present in `data` (all cameras); MPJPE loss on the centre frame."""
    cfg = TcnConfig(**config)
    dev = pick_device(device)
    subjects = present_subjects(data, TRAIN_SUBJECTS)
    sequences = load_pose_sequences(data, subjects)
    predictor = TcnLifter(config, str(dev))
    model = predictor.module
    rf = cfg.receptive_field
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, amsgrad=cfg.amsgrad)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, cfg.lr_decay)
    centre = (rf - 1) // 2

    def batches(epoch: int):
        rng = np.random.default_rng([cfg.seed, epoch])
        for _ in range(cfg.steps_per_epoch):
            w = sample_windows(sequences, rf, cfg.batch_size, rng)
            widths = np.array([c.width for c in w.cameras], dtype=np.float64)
            heights = np.array([c.height for c in w.cameras], dtype=np.float64)
            inputs, conf = make_inputs(cfg, w.joints_2d, widths, heights, rng)
            target = root_relative(w.joints_3d_cam[:, centre : centre + 1]) / 1000.0
            if cfg.flip_augment:
                flip = rng.random(len(inputs)) < 0.5
                inputs[flip] = flip_pose(inputs[flip])
                conf[flip] = conf[flip][..., list(FLIP_PERMUTATION)]
                target[flip] = flip_pose(target[flip])
            yield (torch.from_numpy(inputs).to(dev), torch.from_numpy(conf).to(dev),
                   torch.from_numpy(target.astype(np.float32)).to(dev))

    def loss_fn(module: nn.Module, batch) -> tuple[torch.Tensor, dict[str, float]]:
        inputs, conf, target = batch
        pred = module(inputs, conf).float()
        pred = pred - pred[..., :1, :]
        loss = torch.linalg.norm(pred - target, dim=-1).mean()
        return loss, {"mpjpe_mm": float(loss.detach()) * 1000.0}

    info = {"train_subjects": subjects, "test_subjects": present_subjects(data, TEST_SUBJECTS)}
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):  # dropout draws: seeded, not leaked
        torch.manual_seed(cfg.seed)
        return fit(model_name=NAME, model=model, config=config, optimizer=optimizer, batches=batches,
                   loss_fn=loss_fn, epochs=cfg.epochs, out=out, device=dev, scheduler=scheduler, extra_meta=info,
                   steps_per_epoch=cfg.steps_per_epoch)


def create_tcn_lifter(config: dict, device: str | None = None) -> TcnLifter:
    """VideoPose3D temporal convolutions with TAGN and CA-Conv (Hoang et al. 2024) as switches."""
    return TcnLifter(config, device)
