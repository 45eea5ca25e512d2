"""DTF: Dual Transformer Fusion (Ghafoor et al., arXiv 2410.04574), an occlusion-robust 2D-to-3D lifter.

Input: a window of (x, y, confidence) 2D poses of one view. Occlusion guidance fills every missing
joint from the nearest frame where it is visible (past or future, within a window) and lowers its
confidence with the temporal distance. A multi-view generator (two chained transformers over
joint-channel tokens) produces two intermediate "views" of the sequence; each is embedded by a
Conv1d, refined by two self-refinement layers (per-view self-attention over frames, then an MLP
over the concatenated views) and one cross-view fusion layer; LayerNorm + BatchNorm + Conv1d
regress the 3D pose of every frame (root-relative, camera frame). See baselines/dtf/README.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from corrupt_bench.data.skeleton import FLIP_PERMUTATION, N_JOINTS
from corrupt_bench.layout import H36M_FPS
from corrupt_bench.models.data import TRAIN_SUBJECTS, normalize_screen
from corrupt_bench.models.protocol import InputSpec

NAME = "dtf"


# ----------------------------------------------------------------------------------------------
# Occlusion guidance (a pure function; the paper's confidence rule, written from the paper's text)


def fill_occluded(xy: np.ndarray, confidence: np.ndarray, past: int, future: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fill missing joints of (..., T, J, 2) keypoints from the nearest frame where they are visible.

    A joint is missing when its confidence is <= 0 or not finite, or a coordinate is not finite.
    The paper's rule: for a missing joint at frame t, neighbours at distance d = 1, 2, ... are
    searched, up to `past` (fp) frames back and `future` (ff, default `past`) frames ahead; the
    nearest visible one gives the coordinates, and its confidence reduced by 1/fp per frame of
    distance for a past neighbour, 1/ff for a future one: `c_src - d / fp` or `c_src - d / ff`
    (floored at 0). When a past and a future neighbour at the same distance are both visible, the
    joint takes the mean of their coordinates and of their reduced confidences (as the released
    code does). A joint not visible within the windows gets coordinates 0 and confidence 0.
    Visible joints are returned unchanged.
    """
    future = past if future is None else future
    xy = np.asarray(xy, dtype=np.float64)
    conf = np.asarray(confidence, dtype=np.float64)
    if xy.shape[:-1] != conf.shape or xy.shape[-1] != 2:
        raise ValueError(f"keypoints {xy.shape} and confidences {conf.shape} do not match")
    if past < 0 or future < 0:
        raise ValueError(f"search windows must be >= 0, got past {past}, future {future}")
    visible = np.isfinite(conf) & (conf > 0) & np.isfinite(xy).all(axis=-1)
    src_xy = np.where(visible[..., None], xy, 0.0)
    src_c = np.where(visible, conf, 0.0)
    out_xy, out_c = src_xy.copy(), src_c.copy()
    todo = ~visible
    n_frames = xy.shape[-3]
    for d in range(1, min(max(past, future), n_frames - 1) + 1):
        found = []  # (visible, xy, reduced confidence) of the past and the future neighbour at distance d
        for shift, size in ((d, past), (-d, future)):  # source frame t - shift
            vis = np.zeros_like(visible)
            if d <= size:
                vis = _shifted(visible, shift, 1)
            found.append((vis, _shifted(src_xy, shift, 2), np.maximum(_shifted(src_c, shift, 1) - d / max(size, 1), 0.0)))
        (p_vis, p_xy, p_c), (f_vis, f_xy, f_c) = found
        both = todo & p_vis & f_vis
        only_p = todo & p_vis & ~f_vis
        only_f = todo & f_vis & ~p_vis
        out_xy = np.where(both[..., None], 0.5 * (p_xy + f_xy), np.where(only_p[..., None], p_xy, np.where(only_f[..., None], f_xy, out_xy)))
        out_c = np.where(both, 0.5 * (p_c + f_c), np.where(only_p, p_c, np.where(only_f, f_c, out_c)))
        todo = todo & ~(p_vis | f_vis)
    return out_xy, out_c


def _shifted(values: np.ndarray, shift: int, trailing: int) -> np.ndarray:
    """values[..., t - shift, ...] at frame t (zeros/False outside): the frame axis is the one before the
    last `trailing` axes."""
    out = np.zeros_like(values)
    axis = values.ndim - 1 - trailing
    src = [slice(None)] * values.ndim
    dst = [slice(None)] * values.ndim
    if shift > 0:
        src[axis], dst[axis] = slice(None, -shift), slice(shift, None)
    else:
        src[axis], dst[axis] = slice(-shift, None), slice(None, shift)
    out[tuple(dst)] = values[tuple(src)]
    return out


# ----------------------------------------------------------------------------------------------
# Network


class DTFConfig(BaseModel):
    """Every key of a DTF config (`baselines/dtf/*.yaml`); an unknown key is an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    # network
    frames: int = Field(27, ge=1)  # window (receptive field); divisible by generator_heads
    channels: int = 64
    generator_layers: int = 1  # encoder layers in each of the two chained generator transformers
    generator_heads: int = 9  # attention over joint-channel tokens of width `frames`
    view_heads: int = 8
    mlp_ratio: float = 2.0
    dropout: float = 0.1
    fill_window: int = Field(10, ge=0)  # occlusion guidance: frames searched back (fp) and, unless fill_future, ahead
    fill_future: int | None = Field(None, ge=0)  # frames searched ahead (ff); None: fill_window
    flip_test: bool = True
    # detector-like training inputs synthesised from ground-truth 2D (`_augment_confidence`)
    conf_min: float = Field(0.5, ge=0.0, le=1.0)
    jitter: float = Field(0.04, ge=0.0)
    drop_prob: float = Field(0.05, ge=0.0, le=1.0)
    drop_span: int = Field(5, ge=1)
    flip_augment: bool = True
    # optimisation
    train_subjects: tuple[str, ...] = TRAIN_SUBJECTS
    lr: float = 1e-3
    lr_decay: float = 0.95
    batch_size: int = Field(32, ge=1)
    steps_per_epoch: int = Field(50, ge=1)
    epochs: int = Field(10, ge=0)
    seed: int = 0

    @model_validator(mode="after")
    def _tokens_fit_heads(self) -> DTFConfig:
        if self.frames % self.generator_heads:
            raise ValueError(f"frames ({self.frames}) must be divisible by generator_heads ({self.generator_heads})")
        return self

    @property
    def joints(self) -> int:
        return N_JOINTS


def input_spec(config: dict) -> InputSpec:
    """2D keypoints (+ confidence) of one view, a window of `frames`, at the 50 fps it trains at."""
    return InputSpec(kind="keypoints2d", multi_view=False, window=DTFConfig.model_validate(config).frames, fps=H36M_FPS)


def _mlp(dim: int, hidden: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim),
                         nn.Dropout(dropout))


class _Encoder(nn.Module):
    """Pre-norm transformer encoder (self-attention + MLP, residuals) over tokens of width `dim`."""

    def __init__(self, dim: int, heads: int, layers: int, mlp_ratio: float, dropout: float):
        super().__init__()
        layer = nn.TransformerEncoderLayer(dim, heads, int(dim * mlp_ratio), dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.layers = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.layers(x))


class _SelfRefinement(nn.Module):
    """Per-view self-attention over frames, then an MLP over the concatenated views."""

    def __init__(self, dim: int, heads: int, n_views: int, mlp_ratio: float, dropout: float):
        super().__init__()
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(n_views))
        self.attn = nn.ModuleList(nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
                                  for _ in range(n_views))
        self.mix_norm = nn.LayerNorm(dim * n_views)
        self.mix = _mlp(dim * n_views, int(dim * n_views * mlp_ratio), dropout)

    def forward(self, views: list[torch.Tensor]) -> list[torch.Tensor]:
        out = []
        for v, norm, attn in zip(views, self.norms, self.attn, strict=True):
            h = norm(v)
            out.append(v + attn(h, h, h, need_weights=False)[0])
        cat = torch.cat(out, dim=-1)
        cat = cat + self.mix(self.mix_norm(cat))
        return list(cat.chunk(len(views), dim=-1))


class _CrossFusion(nn.Module):
    """Each view attends to the other (query: itself; key/value: the other), then a joint MLP."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float):
        super().__init__()
        self.q_norm = nn.ModuleList(nn.LayerNorm(dim) for _ in range(2))
        self.kv_norm = nn.ModuleList(nn.LayerNorm(dim) for _ in range(2))
        self.attn = nn.ModuleList(nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
                                  for _ in range(2))
        self.mix_norm = nn.LayerNorm(dim * 2)
        self.mix = _mlp(dim * 2, int(dim * 2 * mlp_ratio), dropout)

    def forward(self, v1: torch.Tensor, v2: torch.Tensor) -> torch.Tensor:
        k1, k2 = self.kv_norm[0](v2), self.kv_norm[1](v1)
        a1 = v1 + self.attn[0](self.q_norm[0](v1), k1, k1, need_weights=False)[0]
        a2 = v2 + self.attn[1](self.q_norm[1](v2), k2, k2, need_weights=False)[0]
        cat = torch.cat([a1, a2], dim=-1)
        return cat + self.mix(self.mix_norm(cat))


class DTFNet(nn.Module):
    """(B, T, J, 3) filled (x, y, confidence) -> (B, T, J, 3) root-relative 3D (metres, camera frame)."""

    def __init__(self, cfg: DTFConfig):
        super().__init__()
        self.cfg = cfg
        tokens = cfg.joints * 3  # one token per joint channel (x, y, confidence), width = frames
        self.gen_pos = nn.Parameter(torch.zeros(1, tokens, cfg.frames))
        self.gen1 = _Encoder(cfg.frames, cfg.generator_heads, cfg.generator_layers, 2.0, cfg.dropout)
        self.gen2 = _Encoder(cfg.frames, cfg.generator_heads, cfg.generator_layers, 2.0, cfg.dropout)
        self.embed = nn.ModuleList(nn.Conv1d(tokens, cfg.channels, 1) for _ in range(2))
        self.view_pos = nn.Parameter(torch.zeros(2, 1, cfg.frames, cfg.channels))
        self.refine = nn.ModuleList(_SelfRefinement(cfg.channels, cfg.view_heads, 2, cfg.mlp_ratio, cfg.dropout)
                                    for _ in range(2))
        self.fusion = _CrossFusion(cfg.channels, cfg.view_heads, cfg.mlp_ratio, cfg.dropout)
        self.head_norm = nn.LayerNorm(cfg.channels * 2)
        self.head_bn = nn.BatchNorm1d(cfg.channels * 2, momentum=0.1)
        self.head = nn.Conv1d(cfg.channels * 2, cfg.joints * 3, 1)
        nn.init.trunc_normal_(self.gen_pos, std=0.02)
        nn.init.trunc_normal_(self.view_pos, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, j, c = x.shape
        tokens = x.reshape(b, t, j * c).transpose(1, 2) + self.gen_pos  # (B, 3J, T)
        h1 = tokens + self.gen1(tokens)
        h2 = h1 + self.gen2(h1)
        views = [emb(h).transpose(1, 2) + self.view_pos[i] for i, (emb, h) in enumerate(zip(self.embed, (h1, h2),
                                                                                           strict=True))]
        for layer in self.refine:
            views = layer(views)
        fused = self.fusion(*views)  # (B, T, 2C)
        y = self.head_norm(fused).transpose(1, 2)
        y = self.head(self.head_bn(y)).transpose(1, 2).reshape(b, t, j, 3)
        return y - y[:, :, :1]


# ----------------------------------------------------------------------------------------------
# Inputs, flips, loss


def flip_2d(x: torch.Tensor) -> torch.Tensor:
    """Mirror (..., J, C) inputs whose channel 0 is the normalised x, swapping left and right joints."""
    x = x[..., list(FLIP_PERMUTATION), :].clone()
    x[..., 0] = -x[..., 0]
    return x


def flip_3d(y: torch.Tensor) -> torch.Tensor:
    """Mirror (..., J, 3) camera-frame poses (x -> -x), swapping left and right joints."""
    y = y[..., list(FLIP_PERMUTATION), :].clone()
    y[..., 0] = -y[..., 0]
    return y


def mpjpe_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vector_norm(pred - target, dim=-1).mean()


def prepare_inputs(xy_norm: np.ndarray, confidence: np.ndarray, fill_window: int, fill_future: int | None = None) -> np.ndarray:
    """(..., T, J, 2) normalised keypoints + (..., T, J) confidences -> filled (..., T, J, 3) float32."""
    xy, conf = fill_occluded(xy_norm, confidence, fill_window, fill_future)
    return np.concatenate([xy, conf[..., None]], axis=-1).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# Predictor


class DTFPredictor:
    """Single-view lifter: a window of `frames` 2D poses with confidences -> 3D of every frame."""

    name = NAME

    def __init__(self, config: dict, device: str | None = None):
        from corrupt_bench.models.training import pick_device

        self.config = dict(config)
        self.cfg = DTFConfig.model_validate(config)
        self.input_spec = input_spec(config)
        self.device = pick_device(device)
        self.module = DTFNet(self.cfg).to(self.device)
        self.flip_test = self.cfg.flip_test

    @torch.no_grad()
    def predict(self, batch: dict) -> np.ndarray:
        kp = np.asarray(batch["keypoints_2d"], dtype=np.float64)  # (B, V, T, J, 2) px
        b, v, t = kp.shape[:3]
        if t != self.cfg.frames:
            raise ValueError(f"dtf expects windows of {self.cfg.frames} frames, got {t}")
        conf = batch.get("confidence")
        conf = np.ones(kp.shape[:-1]) if conf is None else np.asarray(conf, dtype=np.float64)
        valid = batch.get("view_valid")
        if valid is not None:
            conf = np.where(np.asarray(valid, dtype=bool)[..., None], conf, 0.0)
        xy = np.empty_like(kp)
        for i, cam in enumerate(batch["cameras"]):
            xy[:, i] = normalize_screen(kp[:, i], cam.width, cam.height)
        inputs = prepare_inputs(xy, conf, self.cfg.fill_window, self.cfg.fill_future).reshape(b * v, t, kp.shape[3], 3)
        self.module.eval()
        x = torch.from_numpy(inputs).to(self.device)
        y = self.module(x)
        if self.flip_test:
            y = (y + flip_3d(self.module(flip_2d(x)))) / 2
        return (y.float().cpu().numpy() * 1000.0).reshape(b, v, t, kp.shape[3], 3)


# ----------------------------------------------------------------------------------------------
# Training


def _augment_confidence(xy: np.ndarray, rng: np.random.Generator, cfg: DTFConfig) -> tuple[np.ndarray, np.ndarray]:
    """Detector-like inputs from ground-truth 2D (B, T, J, 2) normalised: confidences, jitter, dropped joints.

    Confidence c ~ U(conf_min, 1) per joint and frame; Gaussian jitter, independent per frame like a
    detector's errors, of std `s * (1.5 - c)` (normalised units) with one level s ~ U(0, jitter) per
    window; joints dropped (confidence 0) with probability `drop_prob`, in runs of 1..`drop_span`
    frames, as keypoint occlusion corruptions do.
    """
    conf = rng.uniform(cfg.conf_min, 1.0, size=xy.shape[:-1])
    level = rng.uniform(0.0, cfg.jitter, size=(xy.shape[0],) + (1,) * (conf.ndim - 1))
    xy = xy + rng.normal(size=xy.shape) * (level * (1.5 - conf))[..., None]
    drop_prob, span = cfg.drop_prob, cfg.drop_span
    starts = rng.random(size=xy.shape[:-1]) < drop_prob / max(span, 1)
    dropped = np.zeros_like(starts)
    lengths = rng.integers(1, span + 1, size=starts.shape)
    for k in range(span):
        shifted = np.zeros_like(starts)
        shifted[:, k:] = starts[:, : starts.shape[1] - k] & (lengths[:, : starts.shape[1] - k] > k)
        dropped |= shifted
    conf = np.where(dropped, 0.0, conf)
    return xy, conf


def train(config: dict, data: Path, out: Path, device: str | None = None):
    """Train DTF on the train subjects present in a raw-layout folder; returns fit's FitResult."""
    from corrupt_bench.models.data import load_pose_sequences, present_subjects, sample_windows
    from corrupt_bench.models.training import fit, pick_device

    cfg = DTFConfig.model_validate(config)
    dev = pick_device(device)
    seed = cfg.seed
    subjects = present_subjects(data, cfg.train_subjects)
    sequences = load_pose_sequences(data, subjects)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = DTFNet(cfg)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, amsgrad=True)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, cfg.lr_decay)
    batch_size = cfg.batch_size
    steps = cfg.steps_per_epoch

    def batches(epoch: int):
        rng = np.random.default_rng([seed, epoch])
        for _ in range(steps):
            wb = sample_windows(sequences, cfg.frames, batch_size, rng)
            xy = np.stack([normalize_screen(j, c.width, c.height) for j, c in zip(wb.joints_2d, wb.cameras,
                                                                                 strict=True)])
            pose = wb.joints_3d_cam.astype(np.float64)
            y = torch.from_numpy(((pose - pose[..., :1, :]) / 1000.0).astype(np.float32))
            xy, conf = _augment_confidence(xy, rng, cfg)
            x = torch.from_numpy(prepare_inputs(xy, conf, cfg.fill_window, cfg.fill_future))
            if cfg.flip_augment:
                flip = torch.from_numpy(rng.random(batch_size) < 0.5)[:, None, None, None]
                x = torch.where(flip, flip_2d(x), x)
                y = torch.where(flip, flip_3d(y), y)
            yield x.to(dev), y.to(dev)

    def loss_fn(module: nn.Module, batch):
        x, y = batch
        loss = mpjpe_loss(module(x).float(), y)
        return loss, {"mpjpe_mm": float(loss.detach()) * 1000.0}

    return fit(model_name=NAME, model=model, config=config, optimizer=optimizer, batches=batches, loss_fn=loss_fn,
               epochs=cfg.epochs, out=out, device=dev, scheduler=scheduler, steps_per_epoch=steps)


def create(config: dict, device: str | None = None) -> DTFPredictor:
    """DTF (Dual Transformer Fusion): occlusion-guided single-view 2D->3D lifter over (x, y, conf) windows."""
    return DTFPredictor(config, device)
