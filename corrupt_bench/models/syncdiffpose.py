"""SyncDiffPose (Li et al., AAAI 2025): multi-view 3D pose from weakly synchronised views by diffusion.

Every view's 2D pose goes through a linear spatial encoder to J tokens of width 64 (plus a joint
embedding and a view embedding computed from the camera's extrinsics); a short transformer mixes the
V x J tokens. A noise-embedding module reads these tokens and predicts the distribution of the pose
error that weak synchronisation causes: a per-joint Gaussian (mean pose mu, std sigma). The
diffusion runs on the standardised residual r = (x - mu) / sigma of the root-relative 3D pose in
the reference frame (the camera of the first valid view, or the world orientation: config `frame`); the denoiser (timestep embedding; blocks of linear/MLP + self-attention over joints +
cross-attention to the multi-view tokens) predicts r0 (x0-parameterisation). Sampling is DDIM
(eta = 0) over K steps from N seeded noise draws whose results are averaged. The returned pose is
rotated into each view's camera frame. No public code exists; every choice is in
baselines/syncdiffpose/README.md.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from corrupt_bench.data.cameras import Camera
from corrupt_bench.data.skeleton import N_JOINTS
from corrupt_bench.models.data import TRAIN_SUBJECTS, normalize_screen
from corrupt_bench.models.protocol import InputSpec

NAME = "syncdiffpose"


class SyncDiffPoseConfig(BaseModel):
    """Every key of a SyncDiffPose config (`baselines/syncdiffpose/*.yaml`); an unknown key is an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    # network and sampling
    token_dim: int = 64  # spatial encoder width (the paper's J x 64)
    cond_layers: int = 1  # transformer layers over the V x J condition tokens
    dim: int = 64  # denoiser width
    depth: int = 2  # denoiser blocks
    heads: int = 4
    mlp_ratio: float = 2.0
    dropout: float = 0.0
    diffusion_steps: int = Field(1000, ge=1)  # training timesteps of the cosine schedule
    sampling_steps: int = Field(5, ge=1)  # K reverse (DDIM) steps
    hypotheses: int = Field(5, ge=1)  # N
    seed: int = 0  # sampling noise (and training) generator
    frame: Literal["reference", "world"] = "reference"  # frame the pose is predicted in
    # training inputs
    desync_frames: float = Field(2.0, ge=0.0)  # per view offset ~ U(-d, d) frames
    view_drop_prob: float = Field(0.1, ge=0.0, le=1.0)
    joint_drop_prob: float = Field(0.05, ge=0.0, le=1.0)
    conf_min: float = Field(0.5, ge=0.0, le=1.0)
    jitter: float = Field(0.04, ge=0.0)  # 2D noise std per sample ~ U(0, jitter) x (1.5 - c), normalised units
    nll_weight: float = Field(0.1, ge=0.0)
    # optimisation
    train_subjects: tuple[str, ...] = TRAIN_SUBJECTS
    lr: float = 1e-3
    lr_decay: float = 0.95
    weight_decay: float = 1e-4
    batch_size: int = Field(64, ge=1)
    steps_per_epoch: int = Field(50, ge=1)
    epochs: int = Field(10, ge=0)

    @property
    def joints(self) -> int:
        return N_JOINTS


def input_spec(config: dict) -> InputSpec:
    """All views' 2D keypoints (+ confidence) of one frame."""
    SyncDiffPoseConfig.model_validate(config)
    return InputSpec(kind="keypoints2d", multi_view=True, window=1)


def cosine_alpha_bar(steps: int, s: float = 0.008) -> torch.Tensor:
    """alpha_bar(t) for t = 0..steps-1 of the cosine schedule (Nichol & Dhariwal 2021), betas capped at 0.999."""
    f = torch.cos(((torch.arange(steps + 1, dtype=torch.float64) / steps + s) / (1 + s)) * math.pi / 2) ** 2
    betas = torch.clamp(1 - f[1:] / f[:-1], max=0.999)
    return torch.cumprod(1 - betas, 0).float()


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding (B,) integer timesteps -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def reference_frames(cameras: list[Camera], valid: np.ndarray, frame: str) -> tuple[np.ndarray, np.ndarray]:
    """Per sample the frame the pose is predicted in: (R_ref (B, 3, 3) world -> reference, c_ref (B, 3) mm).

    'world': the world orientation (identity, origin). 'reference': the camera of the first valid
    view of each sample (`valid` (B, V) bool).
    """
    b = valid.shape[0]
    if frame == "world":
        return np.broadcast_to(np.eye(3), (b, 3, 3)).copy(), np.zeros((b, 3))
    if frame != "reference":
        raise ValueError(f"frame must be 'world' or 'reference', got {frame!r}")
    first = np.argmax(valid, axis=1)
    rot = np.stack([c.R for c in cameras])
    pos = np.stack([np.asarray(c.position, dtype=np.float64) for c in cameras])
    return rot[first], pos[first]


def camera_features(cameras: list[Camera], r_ref: np.ndarray, c_ref: np.ndarray) -> np.ndarray:
    """(B, V, 12) view descriptors relative to each sample's reference frame: the rotation reference ->
    camera R_v R_ref^T (9) and the camera centre in the reference frame, metres (3)."""
    rot = np.stack([c.R for c in cameras])  # (V, 3, 3)
    pos = np.stack([np.asarray(c.position, dtype=np.float64) for c in cameras])  # (V, 3)
    rel_rot = np.einsum("vij,bkj->bvik", rot, r_ref)
    rel_pos = np.einsum("bij,bvj->bvi", r_ref, pos[None] - c_ref[:, None]) / 1000.0
    return np.concatenate([rel_rot.reshape(*rel_rot.shape[:2], 9), rel_pos], -1).astype(np.float32)


class _Block(nn.Module):
    """Denoiser block: MLP (linear) + self-attention over joint tokens + cross-attention to the 2D tokens."""

    def __init__(self, dim: int, cond_dim: int, heads: int, mlp_ratio: float, dropout: float):
        super().__init__()
        self.n1, self.n2, self.n3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, int(dim * mlp_ratio)), nn.GELU(), nn.Linear(int(dim * mlp_ratio), dim))
        self.self_attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True, kdim=cond_dim,
                                                vdim=cond_dim)
        self.time = nn.Linear(dim, dim)

    def forward(self, h: torch.Tensor, temb: torch.Tensor, cond: torch.Tensor, cond_pad: torch.Tensor) -> torch.Tensor:
        h = h + self.mlp(self.n1(h) + self.time(temb)[:, None])
        x = self.n2(h)
        h = h + self.self_attn(x, x, x, need_weights=False)[0]
        h = h + self.cross_attn(self.n3(h), cond, cond, key_padding_mask=cond_pad, need_weights=False)[0]
        return h


class SyncDiffPoseNet(nn.Module):
    """Condition encoder, noise-embedding module and x0-predicting denoiser."""

    def __init__(self, cfg: SyncDiffPoseConfig):
        super().__init__()
        self.cfg = cfg
        j, d0, d = cfg.joints, cfg.token_dim, cfg.dim
        self.spatial = nn.Linear(3, d0)  # (x, y, confidence) of one joint in one view -> 64
        self.joint_emb = nn.Parameter(torch.zeros(1, 1, j, d0))
        self.view_emb = nn.Sequential(nn.Linear(12, d0), nn.GELU(), nn.Linear(d0, d0))
        layer = nn.TransformerEncoderLayer(d0, cfg.heads, int(d0 * cfg.mlp_ratio), cfg.dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.cond_encoder = nn.TransformerEncoder(layer, cfg.cond_layers, enable_nested_tensor=False)
        self.cond_norm = nn.LayerNorm(d0)
        # noise embedding: per joint, pooled over the valid views -> Gaussian (mu, log sigma) of the pose
        self.noise_embed = nn.Sequential(nn.Linear(d0, d0 * 2), nn.GELU(), nn.Linear(d0 * 2, 6))
        self.noise_tokens = nn.Linear(6, d)
        self.pose_in = nn.Linear(3, d)
        self.pose_joint_emb = nn.Parameter(torch.zeros(1, j, d))
        self.time_mlp = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, d))
        self.blocks = nn.ModuleList(_Block(d, d0, cfg.heads, cfg.mlp_ratio, cfg.dropout) for _ in range(cfg.depth))
        self.out_norm = nn.LayerNorm(d)
        self.out = nn.Linear(d, 3)
        nn.init.trunc_normal_(self.joint_emb, std=0.02)
        nn.init.trunc_normal_(self.pose_joint_emb, std=0.02)
        self.register_buffer("alpha_bar", cosine_alpha_bar(cfg.diffusion_steps), persistent=False)

    def encode(self, kp: torch.Tensor, cam: torch.Tensor, valid: torch.Tensor):
        """kp (B, V, J, 3) normalised (x, y, conf), cam (B, V, 12), valid (B, V) bool ->
        condition tokens (B, V*J, d0), their padding mask, and the noise embedding mu, log_sigma (B, J, 3)."""
        b, v, j, _ = kp.shape
        tok = self.spatial(kp) + self.joint_emb + self.view_emb(cam)[:, :, None]
        pad = (~valid)[:, :, None].expand(b, v, j).reshape(b, v * j)
        tok = self.cond_norm(self.cond_encoder(tok.reshape(b, v * j, -1), src_key_padding_mask=pad))
        w = valid.float()[:, :, None, None]
        pooled = (tok.reshape(b, v, j, -1) * w).sum(1) / w.sum(1).clamp(min=1.0)
        stats = self.noise_embed(pooled)
        mu, log_sigma = stats[..., :3], stats[..., 3:].clamp(-7.0, 2.0)
        return tok, pad, mu, log_sigma

    def denoise(self, r_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, pad: torch.Tensor,
                mu: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
        """Predict the clean standardised residual r0 (B, J, 3) from r_t at integer timesteps t (B,)."""
        temb = self.time_mlp(timestep_embedding(t, self.cfg.dim))
        h = self.pose_in(r_t) + self.pose_joint_emb + self.noise_tokens(torch.cat([mu, log_sigma], -1))
        for block in self.blocks:
            h = block(h, temb, cond, pad)
        return self.out(self.out_norm(h))

    def training_losses(self, kp, cam, valid, x0, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """x0 (B, J, 3) root-relative world-frame pose in metres -> {'mpjpe', 'nll'}."""
        cond, pad, mu, log_sigma = self.encode(kp, cam, valid)
        sigma = log_sigma.exp()
        r0 = (x0 - mu.detach()) / sigma.detach()
        b = x0.shape[0]
        t = torch.randint(0, self.cfg.diffusion_steps, (b,), generator=generator, device="cpu").to(x0.device)
        eps = torch.randn(r0.shape, generator=generator, device="cpu").to(x0.device)
        ab = self.alpha_bar[t][:, None, None]
        r_t = ab.sqrt() * r0 + (1 - ab).sqrt() * eps
        r0_hat = self.denoise(r_t, t, cond, pad, mu, log_sigma)
        x_hat = mu + sigma * r0_hat
        nll = (((x0 - mu) / sigma) ** 2 / 2 + log_sigma).mean()
        mpjpe = torch.linalg.vector_norm(_root_rel(x_hat) - x0, dim=-1).mean()
        coarse = torch.linalg.vector_norm(_root_rel(mu) - x0, dim=-1).mean()
        return {"mpjpe": mpjpe, "nll": nll, "coarse_mpjpe": coarse}

    @torch.no_grad()
    def sample(self, kp, cam, valid, generator: torch.Generator, hypotheses: int | None = None,
               steps: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """DDIM (eta = 0) from N noise draws: returns (mean pose (B, J, 3), hypotheses (B, N, J, 3)), metres."""
        n = hypotheses or self.cfg.hypotheses
        k = steps or self.cfg.sampling_steps
        cond, pad, mu, log_sigma = self.encode(kp, cam, valid)
        b, j = mu.shape[:2]
        rep = lambda x: x.repeat_interleave(n, dim=0)  # noqa: E731
        cond, pad, mu_n, ls_n = rep(cond), rep(pad), rep(mu), rep(log_sigma)
        r = torch.randn((b * n, j, 3), generator=generator, device="cpu").to(mu.device)
        times = torch.linspace(self.cfg.diffusion_steps - 1, 0, k).round().long().tolist()
        for i, t in enumerate(times):
            tt = torch.full((b * n,), t, device=mu.device, dtype=torch.long)
            r0_hat = self.denoise(r, tt, cond, pad, mu_n, ls_n)
            ab = self.alpha_bar[t]
            eps = (r - ab.sqrt() * r0_hat) / (1 - ab).sqrt().clamp(min=1e-8)
            ab_next = self.alpha_bar[times[i + 1]] if i + 1 < len(times) else torch.tensor(1.0, device=mu.device)
            r = ab_next.sqrt() * r0_hat + (1 - ab_next).sqrt() * eps
        x = _root_rel(mu_n + ls_n.exp() * r).reshape(b, n, j, 3)
        return x.mean(dim=1), x


def _root_rel(x: torch.Tensor) -> torch.Tensor:
    return x - x[..., :1, :]


# ----------------------------------------------------------------------------------------------
# Inputs


def prepare_views(keypoints_px: np.ndarray, confidence: np.ndarray, cameras: list[Camera]) -> np.ndarray:
    """(B, V, J, 2) px + (B, V, J) confidences -> (B, V, J, 3) normalised (x, y, conf); missing joints -> 0."""
    kp = np.asarray(keypoints_px, dtype=np.float64)
    conf = np.asarray(confidence, dtype=np.float64)
    xy = np.stack([normalize_screen(kp[:, i], c.width, c.height) for i, c in enumerate(cameras)], axis=1)
    ok = np.isfinite(xy).all(-1) & np.isfinite(conf) & (conf > 0)
    xy = np.where(ok[..., None], xy, 0.0)
    conf = np.where(ok, conf, 0.0)
    return np.concatenate([xy, conf[..., None]], -1).astype(np.float32)


def to_views(pose_ref: np.ndarray, cameras: list[Camera], r_ref: np.ndarray) -> np.ndarray:
    """(B, J, 3) root-relative poses in each sample's reference frame (r_ref (B, 3, 3) world -> reference)
    -> (B, V, J, 3) in each camera's orientation: x_v = R_v R_ref^T x_ref."""
    world = np.einsum("bji,bkj->bki", r_ref, pose_ref)  # R_ref^T x
    return np.stack([world @ c.R.T for c in cameras], axis=1)


def interpolate_sequence(seq: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Linear interpolation of a (N, ...) sequence at fractional frame times (clamped to [0, N-1])."""
    times = np.clip(np.asarray(times, dtype=np.float64), 0, len(seq) - 1)
    lo = np.floor(times).astype(np.int64)
    hi = np.minimum(lo + 1, len(seq) - 1)
    w = (times - lo).reshape(times.shape + (1,) * (seq.ndim - 1))
    return seq[lo] * (1 - w) + seq[hi] * w


# ----------------------------------------------------------------------------------------------
# Predictor


class SyncDiffPosePredictor:
    """Multi-view, single-frame: all views' 2D of one frame -> (B, V, 1, 17, 3) camera-frame mm."""

    name = NAME

    def __init__(self, config: dict, device: str | None = None):
        from corrupt_bench.models.training import pick_device

        self.config = dict(config)
        self.cfg = SyncDiffPoseConfig.model_validate(config)
        self.input_spec = input_spec(config)
        self.device = pick_device(device)
        self.module = SyncDiffPoseNet(self.cfg).to(self.device)
        self.frame = self.cfg.frame

    @torch.no_grad()
    def sample(self, batch: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mean (B, J, 3), hypotheses (B, N, J, 3), R_ref (B, 3, 3)): root-relative mm in each sample's
        reference frame (see `reference_frames`); the noise is seeded from the config at every call."""
        kp = np.asarray(batch["keypoints_2d"], dtype=np.float64)[:, :, 0]  # (B, V, J, 2)
        conf = batch.get("confidence")
        conf = np.ones(kp.shape[:-1]) if conf is None else np.asarray(conf, dtype=np.float64)[:, :, 0]
        cameras = list(batch["cameras"])
        valid = batch.get("view_valid")
        valid = np.ones(kp.shape[:2], dtype=bool) if valid is None else np.asarray(valid, dtype=bool)[:, :, 0]
        inputs = prepare_views(kp, conf, cameras)
        valid = valid & (inputs[..., 2] > 0).any(-1)
        none = ~valid.any(1)
        valid[none] = True  # no usable view at all: let the model see the (empty) inputs rather than fail
        r_ref, c_ref = reference_frames(cameras, valid, self.frame)
        cam = camera_features(cameras, r_ref, c_ref)
        to = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(self.device)  # noqa: E731
        generator = torch.Generator().manual_seed(self.cfg.seed)
        self.module.eval()
        mean, hyps = self.module.sample(to(inputs), to(cam), to(valid), generator)
        return mean.float().cpu().numpy() * 1000.0, hyps.float().cpu().numpy() * 1000.0, r_ref

    def predict(self, batch: dict) -> np.ndarray:
        mean, _, r_ref = self.sample(batch)
        return to_views(mean, list(batch["cameras"]), r_ref)[:, :, None]


# ----------------------------------------------------------------------------------------------
# Training


def desync_batch(sequences, seq_ids: np.ndarray, centres: np.ndarray, max_offset: float,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per sample and view, the 2D of the view interpolated at t + u, u ~ U(-max_offset, max_offset) frames.

    Returns (B, V, J, 2) px and the offsets (B, V). Implemented here: the engine's `subframe_desync`
    works on whole clips (images + mocap), not on a keypoint sequence.
    """
    b, v = len(centres), sequences[seq_ids[0]].joints_2d.shape[0]
    offsets = rng.uniform(-max_offset, max_offset, size=(b, v))
    out = np.empty((b, v) + sequences[seq_ids[0]].joints_2d.shape[-2:], dtype=np.float64)
    for i in range(b):
        seq = sequences[seq_ids[i]]
        for k in range(v):
            out[i, k] = interpolate_sequence(seq.joints_2d[k], np.array(centres[i] + offsets[i, k]))
    return out, offsets


def train(config: dict, data: Path, out: Path, device: str | None = None):
    """Train SyncDiffPose on the multi-view train sequences present in a raw-layout folder."""
    from corrupt_bench.models.data import load_multiview, present_subjects
    from corrupt_bench.models.training import fit, pick_device

    cfg = SyncDiffPoseConfig.model_validate(config)
    dev = pick_device(device)
    seed = cfg.seed
    sequences = load_multiview(data, present_subjects(data, cfg.train_subjects))
    if not sequences:
        from corrupt_bench.errors import UserError

        raise UserError("no sequence seen by all four cameras among the train subjects", data)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = SyncDiffPoseNet(cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, cfg.lr_decay)
    batch_size = cfg.batch_size
    steps = cfg.steps_per_epoch
    max_offset = cfg.desync_frames
    drop_view, drop_joint = cfg.view_drop_prob, cfg.joint_drop_prob
    nll_weight = cfg.nll_weight
    jitter = cfg.jitter
    lengths = np.array([s.n_frames for s in sequences], dtype=np.float64)
    frame = cfg.frame

    def batches(epoch: int):
        rng = np.random.default_rng([seed, epoch])
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        for _ in range(steps):
            seq_ids = rng.choice(len(sequences), size=batch_size, p=lengths / lengths.sum())
            centres = np.floor(rng.random(batch_size) * lengths[seq_ids]).astype(np.int64)
            kp, _ = desync_batch(sequences, seq_ids, centres, max_offset, rng)
            conf = rng.uniform(cfg.conf_min, 1.0, size=kp.shape[:-1])
            conf[rng.random(conf.shape) < drop_joint] = 0.0
            valid = rng.random(kp.shape[:2]) >= drop_view
            valid[np.arange(batch_size), rng.integers(0, kp.shape[1], batch_size)] = True  # at least one view
            inputs = np.stack([prepare_views(kp[i : i + 1], conf[i : i + 1], sequences[s].cameras)[0]
                               for i, s in enumerate(seq_ids)])
            level = rng.uniform(0.0, jitter, size=(batch_size, 1, 1, 1))  # detector-like 2D noise, per sample
            noise = rng.normal(size=inputs[..., :2].shape) * level * ((1.5 - conf) * (conf > 0))[..., None]
            inputs[..., :2] += noise.astype(np.float32)
            inputs[~valid] = 0.0
            refs = [reference_frames(sequences[s].cameras, valid[i : i + 1], frame) for i, s in enumerate(seq_ids)]
            r_ref = np.concatenate([r for r, _ in refs])
            cam = np.concatenate([camera_features(sequences[s].cameras, *refs[i]) for i, s in enumerate(seq_ids)])
            world = np.stack([sequences[s].joints_3d_world[c] for s, c in zip(seq_ids, centres, strict=True)])
            x0 = np.einsum("bij,bkj->bki", r_ref, (world - world[:, :1]) / 1000.0).astype(np.float32)
            yield tuple(torch.from_numpy(np.ascontiguousarray(a)).to(dev) for a in (inputs, cam, valid, x0)) + (gen,)

    def loss_fn(module: nn.Module, batch):
        kp, cam, valid, x0, gen = batch
        losses = module.training_losses(kp.float(), cam.float(), valid, x0, generator=gen)
        loss = losses["mpjpe"].float() + nll_weight * losses["nll"].float()
        return loss, {"mpjpe_mm": float(losses["mpjpe"].detach()) * 1000.0, "nll": float(losses["nll"].detach()),
                      "coarse_mpjpe_mm": float(losses["coarse_mpjpe"].detach()) * 1000.0}

    return fit(model_name=NAME, model=model, config=config, optimizer=optimizer, batches=batches, loss_fn=loss_fn,
               epochs=cfg.epochs, out=out, device=dev, scheduler=scheduler, steps_per_epoch=steps)


def create(config: dict, device: str | None = None) -> SyncDiffPosePredictor:
    """SyncDiffPose: diffusion over the 3D pose conditioned on weakly synchronised multi-view 2D."""
    return SyncDiffPosePredictor(config, device)
