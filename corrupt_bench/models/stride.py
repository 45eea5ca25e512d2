"""STRIDE (WACV 2025): a DSTFormer motion prior refined per video by test-time training (TTT).

Written from the papers (STRIDE; MotionBERT for the DSTFormer), not from their code.

1. Pretraining (`corrupt-bench train stride`): a DSTFormer learns to restore clean root-relative
   3D windows from corrupted ones: joint-level (5 %) and frame-level (10 %) masks, contiguous
   masked spans (an addition, see the model card) and Gaussian noise; loss MPJPE + velocity.
2. Refinement (`StrideRefiner.refine`): a video is resampled to the prior's frame rate (box-filtered
   when downsampling) and cut into overlapping clips; a fresh copy of the prior is trained for
   `ttt.epochs` steps on all its clips at once, on pseudo-labels: the base estimator's poses with
   its failed frames (non-finite or flagged) linearly interpolated (edges copied). Loss 1.0 MPJPE +
   0.5 N-MPJPE + 20 velocity + 200 limb-length variance (over all frames of the video), AdamW at
   2e-4. The prediction is the average of each clip and its left/right mirror; overlapping clips
   are blended with triangular weights. The pretrained weights are never changed.

Units inside the network: metres, root-relative, camera frame. Masked entries enter as their
temporal linear interpolation plus a learned mask embedding.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from corrupt_bench.data.skeleton import BONES, FLIP_PERMUTATION, N_JOINTS
from corrupt_bench.models.protocol import InputSpec

MODEL_NAME = "stride"
MM = 1000.0  # network units are metres


# --------------------------------------------------------------------------------------- config


class PretrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    epochs: int = 10
    steps_per_epoch: int = 50
    batch_size: int = 16
    lr: float = 5e-4
    weight_decay: float = 0.01
    joint_mask: float = 0.05  # probability that a joint of a frame is masked
    frame_mask: float = 0.1  # probability that a whole frame is masked
    span_mask: float = 0.5  # probability that a window also gets one contiguous masked span
    span_max_seconds: float = 2.0  # longest span (may reach beyond the window)
    noise_mm: float = 20.0  # std of the Gaussian noise on visible entries
    w_velocity: float = 1.0
    seed: int = 0


class TTTConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    epochs: int = 30
    lr: float = 2e-4
    weight_decay: float = 0.01
    w_mpjpe: float = 1.0
    w_nmpjpe: float = 0.5
    w_velocity: float = 20.0
    w_limb: float = 200.0
    failed_weight: float = 1.0  # weight of failed (interpolated) frames in the MPJPE, N-MPJPE and velocity terms
    remask: bool = False  # mask the TTT input afresh each epoch with the pretraining masks
    failed_target: Literal["interpolation", "prior"] = "interpolation"  # pseudo-labels of the failed frames
    flip: bool = True


class StrideConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dim: int = 32
    depth: int = 2
    heads: int = 4
    mlp_ratio: float = 2.0
    dim_rep: int = 64
    window: int = 27
    fps: float = 50.0  # frame rate the prior works at; sequences at other rates are resampled
    hop: int = 0  # start-to-start distance of the overlapping clips at refinement (0: a third of the window)
    pretrain: PretrainConfig = Field(default_factory=PretrainConfig)
    ttt: TTTConfig = Field(default_factory=TTTConfig)


def parse_config(config: dict | None) -> StrideConfig:
    cfg = dict(config or {})
    if "epochs" in cfg:  # `corrupt-bench train --epochs N` sets a top-level key
        cfg["pretrain"] = {**(cfg["pretrain"] if "pretrain" in cfg else {}), "epochs": cfg.pop("epochs")}
    return StrideConfig.model_validate(cfg)


def input_spec(config: dict) -> InputSpec:
    """3D pose sequences of one view (a Refiner), clips of `window` frames."""
    return InputSpec(kind="poses3d", multi_view=False, window=parse_config(config).window)


# -------------------------------------------------------------------------------------- network


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, L, C)
        n, length, c = x.shape
        qkv = self.qkv(x).view(n, length, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        out = nn.functional.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])  # softmax(q k^T / sqrt(d)) v
        return self.proj(out.transpose(1, 2).reshape(n, length, c))


class AxisBlock(nn.Module):
    """Pre-norm attention + MLP along one axis of (B, T, J, C): 'spatial' (over J) or 'temporal' (over T)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, axis: str) -> None:
        super().__init__()
        self.axis = axis
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, j, c = x.shape
        if self.axis == "spatial":
            y = x.reshape(b * t, j, c)
            y = y + self.attn(self.norm1(y))
            y = y + self.mlp(self.norm2(y))
            return y.view(b, t, j, c)
        y = x.permute(0, 2, 1, 3).reshape(b * j, t, c)
        y = y + self.attn(self.norm1(y))
        y = y + self.mlp(self.norm2(y))
        return y.view(b, j, t, c).permute(0, 2, 1, 3)


class DualStreamBlock(nn.Module):
    """Spatial-then-temporal and temporal-then-spatial streams, fused by learned per-token weights."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.st = nn.Sequential(AxisBlock(dim, heads, mlp_ratio, "spatial"), AxisBlock(dim, heads, mlp_ratio, "temporal"))
        self.ts = nn.Sequential(AxisBlock(dim, heads, mlp_ratio, "temporal"), AxisBlock(dim, heads, mlp_ratio, "spatial"))
        self.fusion = nn.Linear(2 * dim, 2)
        nn.init.zeros_(self.fusion.weight)  # start from equal weights
        nn.init.zeros_(self.fusion.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.st(x), self.ts(x)
        alpha = torch.softmax(self.fusion(torch.cat([a, b], dim=-1)), dim=-1)
        return a * alpha[..., :1] + b * alpha[..., 1:]


class DSTFormer(nn.Module):
    """(B, T, 17, 3) corrupted root-relative poses (metres) + (B, T, 17) mask -> (B, T, 17, 3) restored.

    Masked entries arrive filled (temporal linear interpolation) and flagged by the mask embedding;
    the head predicts a correction added to the input (a residual output, see the model card).
    """

    def __init__(self, dim: int, depth: int, heads: int, mlp_ratio: float, dim_rep: int, window: int) -> None:
        super().__init__()
        self.window = window
        self.embed = nn.Linear(3, dim)
        self.mask_token = nn.Parameter(torch.zeros(dim))
        self.joint_pos = nn.Parameter(torch.zeros(1, 1, N_JOINTS, dim))
        self.time_pos = nn.Parameter(torch.zeros(1, window, 1, dim))
        for p in (self.mask_token, self.joint_pos, self.time_pos):
            nn.init.trunc_normal_(p, std=0.02)
        self.blocks = nn.ModuleList([DualStreamBlock(dim, heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.pre_logits = nn.Sequential(nn.Linear(dim, dim_rep), nn.Tanh())
        self.head = nn.Linear(dim_rep, 3)
        nn.init.zeros_(self.head.weight)  # start as the identity on the filled input
        nn.init.zeros_(self.head.bias)

    def forward(self, poses: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        t = poses.shape[1]
        if t > self.window:
            raise ValueError(f"clip of {t} frames is longer than the prior's window {self.window}")
        x = self.embed(poses) + mask.unsqueeze(-1).to(poses.dtype) * self.mask_token
        x = x + self.joint_pos + self.time_pos[:, :t]
        for block in self.blocks:
            x = block(x)
        out = poses + self.head(self.pre_logits(self.norm(x)))  # a correction of the (filled) input
        return out - out[:, :, :1]  # root-relative


def build_network(cfg: StrideConfig) -> DSTFormer:
    return DSTFormer(cfg.dim, cfg.depth, cfg.heads, cfg.mlp_ratio, cfg.dim_rep, cfg.window)


# ------------------------------------------------------------------------------ losses and utils


def _weighted_mean(values: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Mean of (..., T) values, weighted per frame by (..., T) weights when given."""
    if weights is None:
        return values.mean()
    return (values * weights).sum() / weights.sum().clamp_min(1e-8)


def mpjpe(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean per-joint position error of (..., T, J, 3); optional per-frame weights (..., T)."""
    return _weighted_mean(torch.linalg.norm(pred - target, dim=-1).mean(dim=-1), weights)


def n_mpjpe(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """MPJPE after the per-frame least-squares scale of `pred` onto `target`."""
    num = (pred * target).sum(dim=(-1, -2), keepdim=True)
    den = (pred * pred).sum(dim=(-1, -2), keepdim=True).clamp_min(1e-8)
    return mpjpe(pred * num / den, target, weights)


def velocity_loss(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Error of the frame-to-frame velocities; a step is weighted by the smaller weight of its two frames."""
    if pred.shape[-3] < 2:
        return pred.new_zeros(())
    err = torch.linalg.norm(torch.diff(pred, dim=-3) - torch.diff(target, dim=-3), dim=-1).mean(dim=-1)
    if weights is not None:
        weights = torch.minimum(weights[..., 1:], weights[..., :-1])
    return _weighted_mean(err, weights)


def limb_length_variance(poses: torch.Tensor) -> torch.Tensor:
    """Variance over time of each bone length of (..., T, 17, 3), mean over bones (and batch)."""
    child = [c for c, _ in BONES]
    parent = [p for _, p in BONES]
    lengths = torch.linalg.norm(poses[..., child, :] - poses[..., parent, :], dim=-1)  # (..., T, 16)
    return lengths.var(dim=-2, unbiased=False).mean()


def limb_length_variance_np(poses: np.ndarray) -> float:
    """Numpy twin of `limb_length_variance` (mm^2 for mm input), over the finite frames."""
    from corrupt_bench.data.skeleton import bone_lengths

    finite = np.isfinite(poses).all(axis=(-1, -2))
    return float(np.var(bone_lengths(poses[finite]), axis=0).mean())


def flip_poses(poses: torch.Tensor) -> torch.Tensor:
    """Mirror camera-frame poses about x = 0 and swap left/right joints."""
    out = poses[..., list(FLIP_PERMUTATION), :].clone()
    out[..., 0] = -out[..., 0]
    return out


def interpolate_missing(values: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """Fill missing entries of (T, J, D) by linear interpolation in time per joint (edges copied).

    `missing` is (T,) (whole frames) or (T, J). A joint missing at every frame becomes 0.
    """
    values = np.asarray(values, dtype=np.float64)
    missing = np.asarray(missing, dtype=bool)
    if missing.ndim == 1:
        missing = np.repeat(missing[:, None], values.shape[1], axis=1)
    out = values.copy()
    t = np.arange(values.shape[0])
    for j in range(values.shape[1]):
        gone = missing[:, j]
        if not gone.any():
            continue
        seen = ~gone
        if not seen.any():
            out[:, j] = 0.0
            continue
        for d in range(values.shape[2]):
            out[gone, j, d] = np.interp(t[gone], t[seen], values[seen, j, d])
    return out


def clip_starts(n_frames: int, window: int, hop: int | None = None) -> list[int]:
    """Starts of the clips that cover `n_frames`: every `hop` frames (default: the window), the last
    clip aligned to the end."""
    hop = window if hop is None or hop <= 0 else hop
    if n_frames <= window:
        return [0]
    starts = list(range(0, n_frames - window + 1, hop))
    if starts[-1] + window < n_frames:
        starts.append(n_frames - window)
    return starts


def clip_weights(window: int) -> np.ndarray:
    """Triangular blending weights of a clip's frames: a frame counts most in the clip it is central to."""
    k = np.arange(window)
    return np.minimum(k + 1, window - k).astype(np.float64)


def resample(poses: np.ndarray, src_fps: float, dst_fps: float, n_out: int | None = None) -> np.ndarray:
    """Linear resampling of (N, 17, 3) along time.

    Downsampling first averages over the source frames one output frame stands for (a box filter
    of width src/dst frames, edges repeated), so that frame-to-frame noise is averaged rather than
    aliased; a non-finite source frame makes the output frames whose box reaches it non-finite.
    """
    n = poses.shape[0]
    if n_out is None:
        n_out = max(1, int(round((n - 1) * dst_fps / src_fps)) + 1)
    width = int(round(src_fps / dst_fps))
    if width > 1:
        padded = np.concatenate([poses[:1].repeat(width // 2, 0), poses, poses[-1:].repeat((width - 1) // 2, 0)])
        poses = np.lib.stride_tricks.sliding_window_view(padded, width, axis=0).mean(axis=-1)
    t_src = np.arange(n) / src_fps
    t_dst = np.clip(np.arange(n_out) / dst_fps, 0, t_src[-1])
    pos = np.interp(t_dst, t_src, np.arange(n))
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, n - 1)
    w = (pos - lo)[:, None, None]
    return poses[lo] * (1 - w) + poses[hi] * w


# ---------------------------------------------------------------------------------------- refiner


class StrideRefiner:
    """`refine(poses (T,17,3) root-relative camera-frame mm, fps) -> (T,17,3)` by per-clip TTT."""

    name = MODEL_NAME

    def __init__(self, config: dict | None = None, device: str | None = None) -> None:
        from corrupt_bench.models.training import pick_device

        self.cfg = parse_config(config)
        self.config = self.cfg.model_dump()
        self.device = pick_device(device)
        self.module = build_network(self.cfg).to(self.device)
        self.input_spec = input_spec(config)
        self.seed = 0

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state)

    def _ttt_loss(self, pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """TTT loss over all clips of one video (C, T, 17, 3); limb-length variance over all its frames.

        `weights` (C, T) weighs each frame in the MPJPE, N-MPJPE and velocity terms (`failed_weight`
        on failed frames, whose pseudo-labels are the interpolation or the prior's fill, 1 elsewhere).
        """
        c = self.cfg.ttt
        return (
            c.w_mpjpe * mpjpe(pred, target, weights)
            + c.w_nmpjpe * n_mpjpe(pred, target, weights)
            + c.w_velocity * velocity_loss(pred, target, weights)
            + c.w_limb * limb_length_variance(pred.reshape(-1, N_JOINTS, 3))
        )

    def _predict(self, net: nn.Module, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out = net(x, mask)
        if self.cfg.ttt.flip:
            out = 0.5 * (out + flip_poses(net(flip_poses(x), mask[..., list(FLIP_PERMUTATION)])))
        return out

    def ttt_masks(self, failed: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One epoch's input mask (M, 17) over a video when `ttt.remask`: its failed frames plus fresh
        pretraining-style joint, frame and span masks, so that TTT keeps the prior filling gaps from
        context instead of teaching it to copy its input."""
        m = failed.shape[0]
        p = self.cfg.pretrain
        mask = np.repeat(failed[:, None], N_JOINTS, axis=1)
        mask |= rng.random((m, N_JOINTS)) < p.joint_mask
        mask |= (rng.random(m) < p.frame_mask)[:, None]
        longest = max(2, int(p.span_max_seconds * self.cfg.fps))
        for _ in range(int(rng.binomial(max(1, round(m / self.cfg.window)), p.span_mask))):
            span = int(rng.integers(1, longest + 1))
            begin = int(rng.integers(-span + 1, m))
            mask[max(begin, 0) : max(begin + span, 0)] = True
        return mask

    def refine_clips(self, pseudo: np.ndarray, failed: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """TTT of a fresh copy of the prior on the clips of one video, then prediction.

        pseudo (M, 17, 3) metres: the video's pseudo-labels (failed frames interpolated); failed (M,)
        bool; idx (C, T) the frames of each clip. Returns (C, T, 17, 3) metres. The prior's own
        weights are not touched.
        """
        net = copy.deepcopy(self.module).to(self.device)

        def tensor(a: np.ndarray, dtype=None) -> torch.Tensor:
            return torch.as_tensor(a, dtype=dtype, device=self.device)

        inputs = tensor(pseudo[idx], torch.float32)
        failed_t = tensor(np.repeat(failed[idx][..., None], N_JOINTS, axis=-1))
        c = self.cfg.ttt
        target = inputs
        if c.failed_target == "prior" and failed.any():  # the frozen prior's fill of the failed frames
            net.eval()
            with torch.no_grad():
                target = torch.where(failed_t[..., None], self._predict(net, inputs, failed_t), inputs)
        weights = tensor(np.where(failed[idx], c.failed_weight, 1.0), torch.float32)
        rng = np.random.default_rng(self.seed)
        if c.epochs > 0:
            opt = torch.optim.AdamW(net.parameters(), lr=c.lr, weight_decay=c.weight_decay)
            net.train()
            for _ in range(c.epochs):
                x, mask = inputs, failed_t
                if c.remask:
                    fresh = self.ttt_masks(failed, rng)
                    x, mask = tensor(interpolate_missing(pseudo, fresh)[idx], torch.float32), tensor(fresh[idx])
                loss = self._ttt_loss(net(x, mask), target, weights)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        net.eval()
        with torch.no_grad():
            return self._predict(net, inputs, failed_t).double().cpu().numpy()

    def refine(self, poses: np.ndarray, fps: float, failed: np.ndarray | None = None) -> np.ndarray:
        """Refine a sequence; frames with a non-finite joint (or flagged in `failed`) are the failures."""
        poses = np.asarray(poses, dtype=np.float64)
        n = poses.shape[0]
        if n == 0:
            return poses.copy()
        bad = ~np.isfinite(poses).all(axis=(1, 2))
        if failed is not None:
            bad |= np.asarray(failed, dtype=bool)
        if bad.all():
            return np.full_like(poses, np.nan)
        clean = np.where(bad[:, None, None], 0.0, poses)
        clean = clean - clean[:, :1]
        resampled = abs(fps - self.cfg.fps) > 1e-3 * self.cfg.fps
        if resampled:
            clean = resample(clean, fps, self.cfg.fps)
            bad = resample(bad[:, None, None].astype(np.float64), fps, self.cfg.fps)[:, 0, 0] > 0
        pseudo = interpolate_missing(clean / MM, bad)
        m, w = pseudo.shape[0], self.cfg.window
        if m < w:  # one short clip, edges replicated to the window
            idx = np.clip(np.arange(w), 0, m - 1)[None]
        else:
            hop = self.cfg.hop if self.cfg.hop > 0 else max(1, w // 3)
            idx = np.stack([np.arange(s, s + w) for s in clip_starts(m, w, hop)])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            refined = self.refine_clips(pseudo, bad, idx)
        # overlapping clips blended with triangular weights (each frame leans on the clips it is central to)
        out = np.zeros_like(pseudo)
        total = np.zeros(m)
        blend = clip_weights(w)
        for clip, frames in zip(refined, idx, strict=True):
            np.add.at(out, frames, clip * blend[:, None, None])
            np.add.at(total, frames, blend)
        out = out / total[:, None, None] * MM
        if resampled:
            out = resample(out, self.cfg.fps, fps, n_out=n)
        return out


# --------------------------------------------------------------------------------------- training


def corrupt_window(
    segment: np.ndarray, lo: int, window: int, cfg: PretrainConfig, fps: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Corrupt a clean segment (L,17,3 metres) and return the window [lo, lo+window): (input, mask)."""
    length = segment.shape[0]
    mask = np.zeros((length, N_JOINTS), dtype=bool)
    body = slice(lo, lo + window)
    mask[body] |= rng.random((window, N_JOINTS)) < cfg.joint_mask
    mask[body] |= (rng.random(window) < cfg.frame_mask)[:, None]
    if rng.random() < cfg.span_mask:
        span = int(rng.integers(1, max(2, int(cfg.span_max_seconds * fps)) + 1))
        start = int(rng.integers(lo - span + 1, lo + window))
        mask[max(start, 0) : max(start + span, 0)] = True
    noisy = segment + rng.normal(0.0, cfg.noise_mm / MM, segment.shape)
    noisy = noisy - noisy[:, :1]
    filled = interpolate_missing(noisy, mask)
    return filled[body], mask[body]


def pretrain_batch(
    sequences: list[np.ndarray], cfg: StrideConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(input (B,T,17,3), mask (B,T,17), clean target (B,T,17,3)) in metres from root-relative mm sequences."""
    p, w = cfg.pretrain, cfg.window
    pad = int(p.span_max_seconds * cfg.fps)
    lengths = np.array([len(s) for s in sequences], dtype=np.float64)
    xs, ms, ys = [], [], []
    for i in rng.choice(len(sequences), size=p.batch_size, p=lengths / lengths.sum()):
        seq = sequences[i]
        start = int(rng.integers(0, max(len(seq) - w, 0) + 1))
        idx = np.clip(np.arange(start - pad, start + w + pad), 0, len(seq) - 1)
        segment = seq[idx] / MM
        if rng.random() < 0.5:
            segment = segment * np.array([-1.0, 1.0, 1.0])
            segment = segment[:, list(FLIP_PERMUTATION)]
        x, m = corrupt_window(segment, pad, w, p, cfg.fps, rng)
        xs.append(x)
        ms.append(m)
        ys.append(segment[pad : pad + w])
    return np.stack(xs), np.stack(ms), np.stack(ys)


def load_training_sequences(data: Path) -> list[np.ndarray]:
    """Root-relative camera-frame (N,17,3) mm sequences of the train subjects present in `data`."""
    from corrupt_bench.models.data import TRAIN_SUBJECTS, load_pose_sequences, present_subjects, root_relative

    seqs = load_pose_sequences(data, present_subjects(data, TRAIN_SUBJECTS))
    return [root_relative(s.joints_3d_cam.astype(np.float64)) for s in seqs]


def pretrain(
    cfg: StrideConfig, sequences: list[np.ndarray], out: Path, device: str | None = None, config: dict | None = None,
    source_fps: float = 50.0,
):
    """Pretrain the prior on clean (N,17,3) mm sequences at `source_fps` with `fit` (the one training loop).

    Sequences are resampled to the prior's `fps` when it differs.
    """
    from corrupt_bench.models.training import fit, pick_device

    if abs(source_fps - cfg.fps) > 1e-3 * cfg.fps:
        sequences = [resample(s, source_fps, cfg.fps) for s in sequences]
    dev = pick_device(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.pretrain.seed)
        net = build_network(cfg)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.pretrain.lr, weight_decay=cfg.pretrain.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.pretrain.epochs, 1))

    def batches(epoch: int):
        rng = np.random.default_rng([cfg.pretrain.seed, epoch])
        for _ in range(cfg.pretrain.steps_per_epoch):
            x, m, y = pretrain_batch(sequences, cfg, rng)
            yield (torch.as_tensor(x, dtype=torch.float32, device=dev), torch.as_tensor(m, device=dev),
                   torch.as_tensor(y, dtype=torch.float32, device=dev))

    def loss_fn(model: nn.Module, batch):
        x, m, y = batch
        pred = model(x, m).float()
        e = mpjpe(pred, y)
        v = velocity_loss(pred, y)
        return e + cfg.pretrain.w_velocity * v, {"mpjpe_mm": float(e.detach()) * MM, "velocity_mm": float(v.detach()) * MM}

    return fit(model_name=MODEL_NAME, model=net, config=config if config is not None else cfg.model_dump(),
               optimizer=opt, batches=batches, loss_fn=loss_fn, epochs=cfg.pretrain.epochs, out=out,
               device=dev, scheduler=sched, steps_per_epoch=cfg.pretrain.steps_per_epoch)


def train_stride(config: dict, data: Path, out: Path, device: str | None = None):
    """Trainer for `corrupt-bench train stride`: pretrain the motion prior on the train subjects of `data`."""
    cfg = parse_config(config)
    return pretrain(cfg, load_training_sequences(Path(data)), Path(out), device, config=config)


def build_stride(config: dict, device: str | None = None) -> StrideRefiner:
    """STRIDE refiner (weights: a pretrained prior from `corrupt-bench train stride`)."""
    return StrideRefiner(config, device)
