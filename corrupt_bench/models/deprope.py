"""DeProPose (arXiv 2502.16419): multi-view, multi-frame person crops -> 3D poses, written from the paper.

Pipeline per view and frame: a Swin-style encoder (`swin.SwinEncoder`) -> camera-ray positional
encoding (a unit ray direction per crop pixel, from the crop-adjusted intrinsics, rotated to world
orientation, space-to-depth down to the token grid, concatenated with the tokens and projected) ->
a per-view temporal transformer with a pose head after every block (deep supervision) -> adaptive
multi-view fusion as the paper does it: w_v = 1 / (e_proj + e_abs + eps), normalised over views,
weighs the per-view temporal FEATURES (scalar channels, and vector channels rotated from each camera
to world orientation so that the views' features share one frame); a fusion head regresses the
world-oriented root-relative pose from the fused features, rotated back into every camera. `fusion: poses` (an ablation) instead
averages the per-view poses rotated to world orientation with the same weights.

Deviation (stated in the model card): the released code computes e_proj / e_abs from ground truth at
test time. Here the weights use the true errors only during training; an error head learns to
predict them and inference uses the predictions, so no ground truth enters a prediction.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from corrupt_bench.data.cameras import Camera
from corrupt_bench.data.crop import crop_intrinsics
from corrupt_bench.data.skeleton import N_JOINTS
from corrupt_bench.layout import H36M_FPS
from corrupt_bench.models.protocol import InputSpec
from corrupt_bench.models.swin import SwinEncoder

MODEL_NAME = "deprope"
MM = 1000.0  # pose heads predict metres
IMAGE_MEAN, IMAGE_STD = 0.45, 0.25


# --------------------------------------------------------------------------------------- config


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    epochs: int = 4
    steps_per_epoch: int = 40
    batch_size: int = 4
    lr: float = 5e-4
    weight_decay: float = 0.05
    frame_step: int = 2  # temporal stride between the frames of a training window (source frames)
    crop_margin: float = 0.2
    noise_view: float = 0.3  # probability that one view of a sample is replaced by noise
    w_fused: float = 1.0
    w_error: float = 0.1
    error_lr_scale: float = 10.0  # the error head learns at lr * this (it chases a moving target)
    max_frames: int | None = None  # cap on frames read per (sequence, camera), for tests
    seed: int = 0


class DeProPoseConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image_size: int = 64
    patch: int = 4
    embed_dim: int = 24
    depths: list[int] = Field(default_factory=lambda: [2, 2])
    heads: list[int] = Field(default_factory=lambda: [2, 4])
    window: int = 4  # attention window of the encoder (tokens)
    mlp_ratio: float = 4.0
    views: int = 4
    frames: int = 4
    token_dim: int = 16
    temporal_dim: int = 128
    temporal_depth: int = 2
    temporal_heads: int = 4
    error_hidden: int = 64
    eps: float = 1.0  # added to e_proj + e_abs (units: px + mm)
    fusion: Literal["features", "poses"] = "features"  # the paper's feature fusion, or pose-level (ablation)
    fusion_vectors: int = 32  # 3D vector channels per view feature (rotated to world orientation before fusion)
    train: TrainConfig = Field(default_factory=TrainConfig)


def parse_config(config: dict | None) -> DeProPoseConfig:
    cfg = dict(config or {})
    if "epochs" in cfg:  # `corrupt-bench train --epochs N`
        cfg["train"] = {**(cfg["train"] if "train" in cfg else {}), "epochs": cfg.pop("epochs")}
    return DeProPoseConfig.model_validate(cfg)


def input_spec(config: dict) -> InputSpec:
    """Person crops of every view, a window of `frames`, at the rate it trains at (Human3.6M's 50 fps
    over its training stride `train.frame_step`)."""
    cfg = parse_config(config)
    return InputSpec(kind="images", multi_view=True, window=cfg.frames, image_size=cfg.image_size, fps=H36M_FPS / cfg.train.frame_step)


# -------------------------------------------------------------------------------------- network


def camera_rays(k_inv: torch.Tensor, r_cw: torch.Tensor, size: int) -> torch.Tensor:
    """Unit world-oriented ray directions of every crop pixel: (N, 3, 3), (N, 3, 3) -> (N, size, size, 3)."""
    coords = torch.arange(size, dtype=k_inv.dtype, device=k_inv.device)
    v, u = torch.meshgrid(coords, coords, indexing="ij")
    pix = torch.stack([u, v, torch.ones_like(u)], dim=-1).reshape(-1, 3)  # (S*S, 3)
    rays = torch.einsum("nij,njk,pk->npi", r_cw, k_inv, pix)  # r_cw @ k_inv @ p
    rays = rays / torch.linalg.norm(rays, dim=-1, keepdim=True)
    return rays.view(-1, size, size, 3)


def space_to_depth(x: torch.Tensor, block: int) -> torch.Tensor:
    """(N, H, W, C) -> (N, H/block, W/block, block*block*C)."""
    n, h, w, c = x.shape
    x = x.view(n, h // block, block, w // block, block, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(n, h // block, w // block, block * block * c)


class TemporalBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float = 2.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, int(dim * mlp_ratio)), nn.GELU(), nn.Linear(int(dim * mlp_ratio), dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class DeProPoseNet(nn.Module):
    """The network; `forward` returns a dict (see `forward`)."""

    def __init__(self, cfg: DeProPoseConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = SwinEncoder(cfg.image_size, cfg.embed_dim, cfg.depths, cfg.heads, cfg.window, cfg.patch,
                                   cfg.mlp_ratio)
        grid, c = self.encoder.grid, self.encoder.out_dim
        self.block = cfg.image_size // grid
        self.ray_proj = nn.Sequential(nn.Linear(c + 3 * self.block**2, c), nn.LayerNorm(c))
        self.token_proj = nn.Linear(c, cfg.token_dim)
        self.frame_proj = nn.Sequential(nn.Linear(grid * grid * cfg.token_dim, cfg.temporal_dim), nn.LayerNorm(cfg.temporal_dim))
        self.time_pos = nn.Parameter(torch.zeros(1, cfg.frames, cfg.temporal_dim))
        nn.init.trunc_normal_(self.time_pos, std=0.02)
        self.temporal = nn.ModuleList([TemporalBlock(cfg.temporal_dim, cfg.temporal_heads) for _ in range(cfg.temporal_depth)])
        self.pose_heads = nn.ModuleList([
            nn.Sequential(nn.LayerNorm(cfg.temporal_dim), nn.Linear(cfg.temporal_dim, N_JOINTS * 3))
            for _ in range(cfg.temporal_depth)
        ])
        self.error_head = nn.Sequential(
            nn.LayerNorm(2 * cfg.temporal_dim), nn.Linear(2 * cfg.temporal_dim, cfg.error_hidden), nn.GELU(),
            nn.Linear(cfg.error_hidden, 2),
        )
        nn.init.constant_(self.error_head[-1].bias, 3.0)  # log1p of errors of tens of px / mm
        if cfg.fusion == "features":  # the fused features -> the world-oriented pose
            d, k = cfg.temporal_dim, cfg.fusion_vectors
            self.vector_proj = nn.Linear(d, 3 * k)  # a view's vector features, in its camera frame
            self.fused_head = nn.Sequential(nn.LayerNorm(d + k), nn.Linear(d + k, d), nn.GELU(), nn.Linear(d, N_JOINTS * k))

    def view_features(self, images: torch.Tensor, k_inv: torch.Tensor, r_cw: torch.Tensor) -> torch.Tensor:
        """(B,V,T,3,S,S), (B,V,T,3,3), (B,V,3,3) -> per-frame features (B,V,T,D)."""
        b, v, t = images.shape[:3]
        s = self.cfg.image_size
        tokens = self.encoder(images.reshape(b * v * t, 3, s, s))  # (N, G, G, C)
        r = r_cw[:, :, None].expand(b, v, t, 3, 3).reshape(-1, 3, 3)
        rays = space_to_depth(camera_rays(k_inv.reshape(-1, 3, 3).to(tokens.dtype), r.to(tokens.dtype), s), self.block)
        tokens = self.ray_proj(torch.cat([tokens, rays.to(tokens.dtype)], dim=-1))
        feats = self.frame_proj(self.token_proj(tokens).flatten(1))
        return feats.view(b, v, t, -1)

    def forward(
        self,
        images: torch.Tensor,
        k_inv: torch.Tensor,
        r_cw: torch.Tensor,
        valid: torch.Tensor,
        true_errors: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        """Poses and fusion.

        images (B,V,T,3,S,S) normalised; k_inv (B,V,T,3,3) inverse crop intrinsics; r_cw (B,V,3,3)
        camera->world rotations; valid (B,V,T) bool. `true_errors` (B,V,T,2) (e_proj px, e_abs mm)
        replaces the predicted errors in the fusion weights (training only; None at inference).
        Returns `per_block` (list of (B,V,T,17,3) mm, root-relative, camera frame), `errors`
        (B,V,T,2) predicted, `weights` (B,V,T), `fused` (B,V,T,17,3) mm in each camera frame.
        """
        out = self.encode(images, k_inv, r_cw)
        used = true_errors.detach() if true_errors is not None else out["errors"]
        weights = fuse_weights(used, valid, self.cfg.eps)
        return {**out, "weights": weights, "fused": self.fuse_views(out, r_cw, weights)}

    def encode(self, images: torch.Tensor, k_inv: torch.Tensor, r_cw: torch.Tensor) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        """Per view: `per_block` poses (deep supervision), `features` (B,V,T,D) of the last temporal
        block, `log_errors` / `errors` (B,V,T,2) predicted (e_proj px, e_abs mm)."""
        b, v, t = images.shape[:3]
        frame = self.view_features(images, k_inv, r_cw).reshape(b * v, t, -1)
        x = frame + self.time_pos[:, :t]
        per_block = []
        for block, head in zip(self.temporal, self.pose_heads, strict=True):
            x = block(x)
            pose = head(x).view(b, v, t, N_JOINTS, 3) * MM
            per_block.append(pose - pose[..., :1, :])
        # the error head reads the frame's own features and the temporal ones; its loss also trains the
        # encoder, so the image features come to encode how reliable a view is
        log_err = self.error_head(torch.cat([frame, x], dim=-1)).view(b, v, t, 2).float()
        errors = torch.expm1(log_err).clamp_min(0.0)
        return {"per_block": per_block, "features": x.view(b, v, t, -1), "log_errors": log_err, "errors": errors}

    def fuse_views(self, encoded: dict, r_cw: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """(B,V,T,17,3) mm: the fused pose in every camera frame, from the views weighted by `weights`
        (B,V,T): their features through the fusion head (`fusion: features`), or their poses."""
        if self.cfg.fusion == "poses":
            return fuse(encoded["per_block"][-1].float(), r_cw.float(), weights)
        feats = encoded["features"].float()  # (B,V,T,D)
        b, v, t = feats.shape[:3]
        k = self.cfg.fusion_vectors
        vectors = self.vector_proj(feats).view(b, v, t, k, 3)
        vectors = torch.einsum("bvij,bvtkj->bvtki", r_cw.float(), vectors)  # to world orientation
        w = weights[..., None]
        scalars = (feats * w).sum(dim=1)  # (B,T,D)
        vectors = (vectors * w[..., None]).sum(dim=1)  # (B,T,K,3)
        # the head mixes the fused vector channels into joints with coefficients read from the fused
        # scalar channels and the vectors' lengths (both independent of the world's orientation)
        mix = self.fused_head(torch.cat([scalars, torch.linalg.vector_norm(vectors, dim=-1)], dim=-1)).view(b, t, N_JOINTS, k)
        world = torch.einsum("btjk,btki->btji", mix, vectors) * MM / k
        world = world - world[..., :1, :]
        return torch.einsum("bvji,btkj->bvtki", r_cw.float(), world)  # R_wc = R_cw^T, into every camera


def fuse_weights(errors: torch.Tensor, valid: torch.Tensor, eps: float) -> torch.Tensor:
    """w_v = 1 / (e_proj + e_abs + eps), zero for invalid views, normalised over views (B,V,T)."""
    w = 1.0 / (errors.sum(-1) + eps) * valid.to(errors.dtype)
    total = w.sum(dim=1, keepdim=True)
    uniform = torch.ones_like(w) / w.shape[1]
    return torch.where(total > 0, w / total.clamp_min(1e-12), uniform)


def fuse(poses: torch.Tensor, r_cw: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Rotate per-view (B,V,T,17,3) camera-frame poses to world orientation, average with weights, rotate back."""
    world = torch.einsum("bvij,bvtkj->bvtki", r_cw, poses)
    fused = (world * weights[..., None, None]).sum(dim=1)  # (B,T,17,3)
    return torch.einsum("bvji,btkj->bvtki", r_cw, fused)  # R_wc = R_cw^T


# ----------------------------------------------------------------------------------- geometry


def true_errors(pred: torch.Tensor, gt: torch.Tensor, root: torch.Tensor, k_crop: torch.Tensor) -> torch.Tensor:
    """(e_proj, e_abs) per view and frame (B,V,T,2) from ground truth (training only).

    e_abs: MPJPE (mm) of the root-relative prediction; e_proj: mean 2D distance (crop px, pinhole)
    between the prediction placed at the true root and the true pose, both projected with the crop
    intrinsics.
    """
    e_abs = torch.linalg.norm(pred - gt, dim=-1).mean(-1)

    def proj(p: torch.Tensor) -> torch.Tensor:
        q = torch.einsum("bvtij,bvtkj->bvtki", k_crop, p + root[..., None, :])
        return q[..., :2] / q[..., 2:3].clamp_min(1.0)

    e_proj = torch.linalg.norm(proj(pred) - proj(gt), dim=-1).mean(-1)
    return torch.stack([e_proj, e_abs], dim=-1)


def normalise_images(images: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    """(..., H, W, 3) uint8 -> (..., 3, H, W) float normalised."""
    x = torch.as_tensor(np.asarray(images), device=device).float().div_(255.0)
    return ((x - IMAGE_MEAN) / IMAGE_STD).movedim(-1, -3)


def _resize(images: np.ndarray, size: int) -> np.ndarray:
    import cv2

    flat = images.reshape(-1, *images.shape[-3:])
    out = np.stack([cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA) for im in flat])
    return out.reshape(*images.shape[:-3], size, size, 3)


# ------------------------------------------------------------------------------------- predictor


class DeProPosePredictor:
    """Predictor: batch `images`, `crop`, `cameras`, `view_valid` -> (B,V,T,17,3) root-relative mm per camera."""

    name = MODEL_NAME

    def __init__(self, config: dict | None = None, device: str | None = None) -> None:
        from corrupt_bench.models.training import pick_device

        self.cfg = parse_config(config)
        self.config = self.cfg.model_dump()
        self.device = pick_device(device)
        self.module = DeProPoseNet(self.cfg).to(self.device).eval()
        self.input_spec = input_spec(config)

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state)

    def inputs(self, batch: dict) -> tuple[torch.Tensor, ...]:
        """Network inputs from a harness batch (only images, crop, cameras, view_valid are read)."""
        images = np.asarray(batch["images"])
        b, v, t = images.shape[:3]
        s = self.cfg.image_size
        if images.shape[3] != s or images.shape[4] != s:
            images = _resize(images, s)
        cameras: list[Camera] = list(batch["cameras"])
        crops = batch.get("crop")
        if crops is None:
            crops = np.broadcast_to(
                np.array([[0.0, 0.0, c.width, c.height] for c in cameras])[None, :, None], (b, v, t, 4)
            )
        crops = np.asarray(crops, dtype=np.float64)
        k_inv = np.empty((b, v, t, 3, 3))
        for vi, cam in enumerate(cameras):
            for bi in range(b):
                for ti in range(t):
                    k_inv[bi, vi, ti] = np.linalg.inv(crop_intrinsics(cam, crops[bi, vi, ti], s))
        r_cw = np.broadcast_to(np.stack([c.R.T for c in cameras])[None], (b, v, 3, 3))
        valid = batch.get("view_valid")
        valid = np.ones((b, v, t), dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
        dev = self.device
        return (normalise_images(images, dev), torch.as_tensor(k_inv, dtype=torch.float32, device=dev),
                torch.as_tensor(np.ascontiguousarray(r_cw), dtype=torch.float32, device=dev),
                torch.as_tensor(valid, device=dev))

    def forward(self, batch: dict) -> dict:
        self.module.eval()
        with torch.no_grad():
            return self.module(*self.inputs(batch), true_errors=None)

    def predict(self, batch: dict) -> np.ndarray:
        return self.forward(batch)["fused"].double().cpu().numpy()

    def predict_with_weights(self, batch: dict) -> tuple[np.ndarray, np.ndarray]:
        """(poses (B,V,T,17,3), fusion weights (B,V,T)) for inspection."""
        out = self.forward(batch)
        return out["fused"].double().cpu().numpy(), out["weights"].double().cpu().numpy()


# --------------------------------------------------------------------------------------- training


class ClipSet:
    """Multi-view training clips: crops, inverse crop intrinsics, rotations, 3D labels, roots."""

    def __init__(self, root: Path, subjects: list[str], cfg: DeProPoseConfig) -> None:
        from corrupt_bench.models.data import load_crops, load_multiview

        tc = cfg.train
        s = cfg.image_size
        seqs = load_multiview(root, subjects)
        crops = load_crops(root, subjects, s, step=tc.frame_step, margin=tc.crop_margin, max_frames=tc.max_frames)
        where = {(str(sub), str(seq), cam.camera_id, int(f)): i
                 for i, (sub, seq, cam, f) in enumerate(zip(crops.subjects, crops.sequences, crops.cameras,
                                                            crops.frames, strict=True))}
        self.images = crops.images
        self.boxes = crops.crops
        self.k_inv = np.stack([np.linalg.inv(crop_intrinsics(c, box, s)) for c, box in zip(crops.cameras, crops.crops,
                                                                                              strict=True)])
        self.k = np.stack([crop_intrinsics(c, box, s) for c, box in zip(crops.cameras, crops.crops, strict=True)])
        # per sequence: (V, F) crop indices, (V, F, 17, 3) camera-frame joints, (V, 3, 3) camera->world
        self.index, self.joints, self.rotations, self.cameras = [], [], [], []
        for seq in seqs:
            frames = range(0, seq.n_frames, tc.frame_step)
            rows = []
            for f in frames:
                ids = [where.get((seq.subject, seq.sequence, c.camera_id, f)) for c in seq.cameras]
                if any(i is None for i in ids):
                    break
                rows.append((f, ids))
            if len(rows) < cfg.frames:
                continue
            fr = np.array([r[0] for r in rows])
            self.index.append(np.array([r[1] for r in rows]).T)
            self.joints.append(seq.joints_3d_cam[:, fr].astype(np.float32))
            self.rotations.append(np.stack([c.R.T for c in seq.cameras]).astype(np.float32))
            self.cameras.append(list(seq.cameras))
        if not self.index:
            raise ValueError(f"no multi-view clips of {cfg.frames} frames in {root}")

    def harness_batch(self, clip: int, starts: list[int], frames: int) -> tuple[dict, np.ndarray]:
        """A batch as the harness builds it (images, crop, cameras, view_valid; no labels) for windows of
        sequence `clip` starting at `starts`, and the labels (B,V,T,17,3) root-relative mm kept apart."""
        ids = np.stack([self.index[clip][:, s : s + frames] for s in starts])  # (B, V, T)
        joints = np.stack([self.joints[clip][:, s : s + frames] for s in starts]).astype(np.float64)
        batch = {"images": self.images[ids], "crop": self.boxes[ids].astype(np.float64),
                 "cameras": self.cameras[clip], "view_valid": np.ones(ids.shape, dtype=bool)}
        return batch, joints - joints[..., :1, :]

    def sample(self, batch_size: int, frames: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        lengths = np.array([ix.shape[1] - frames + 1 for ix in self.index], dtype=np.float64)
        which = rng.choice(len(self.index), size=batch_size, p=lengths / lengths.sum())
        out: dict[str, list] = {k: [] for k in ("images", "k_inv", "k", "r_cw", "joints")}
        for i in which:
            start = int(rng.integers(0, lengths[i]))
            ids = self.index[i][:, start : start + frames]  # (V, T)
            out["images"].append(self.images[ids])
            out["k_inv"].append(self.k_inv[ids])
            out["k"].append(self.k[ids])
            out["r_cw"].append(self.rotations[i])
            out["joints"].append(self.joints[i][:, start : start + frames])
        return {k: np.stack(v) for k, v in out.items()}


def training_step_inputs(sample: dict[str, np.ndarray], cfg: DeProPoseConfig, rng: np.random.Generator,
                         device: torch.device) -> dict[str, torch.Tensor]:
    """Tensors for one step; one view of some samples is replaced by uniform noise (error-head signal)."""
    images = sample["images"].copy()
    b, v = images.shape[:2]
    for bi in range(b):
        if rng.random() < cfg.train.noise_view:
            images[bi, int(rng.integers(v))] = rng.integers(0, 256, images.shape[2:], dtype=np.uint8)
    joints = sample["joints"].astype(np.float64)
    root = joints[..., 0, :]
    t = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32, device=device)  # noqa: E731
    return {
        "images": normalise_images(images, device),
        "k_inv": t(sample["k_inv"]),
        "k": t(sample["k"]),
        "r_cw": t(sample["r_cw"]),
        "gt": t(joints - root[..., None, :]),
        "root": t(root),
    }


def loss_fn(model: DeProPoseNet, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    cfg = model.cfg
    images = batch["images"]
    valid = torch.ones(images.shape[:3], dtype=torch.bool, device=images.device)
    # the true errors of the pose branch weight the fusion; the error head learns to predict them
    out = model.encode(images, batch["k_inv"], batch["r_cw"])
    gt = batch["gt"]
    final = out["per_block"][-1].float()
    errs = true_errors(final.detach(), gt, batch["root"], batch["k"])
    weights = fuse_weights(errs, valid, cfg.eps)
    fused = model.fuse_views(out, batch["r_cw"], weights)
    deep = torch.stack([torch.linalg.norm(p.float() - gt, dim=-1).mean() for p in out["per_block"]]).mean()
    fused_err = torch.linalg.norm(fused - gt, dim=-1).mean()
    # L2 on log errors, split into the part relative to the sample's other views (what the fusion
    # uses; the sample's overall difficulty is removed from it) and the sample mean
    diff = out["log_errors"] - torch.log1p(errs)
    across = diff.mean(dim=1, keepdim=True)
    err_loss = (diff - across).pow(2).mean() + 0.1 * across.pow(2).mean()
    loss = (deep + cfg.train.w_fused * fused_err) / 100.0 + cfg.train.w_error * err_loss
    with torch.no_grad():
        view_err = torch.linalg.norm(final - gt, dim=-1).mean()
    return loss, {"mpjpe_view_mm": float(view_err), "mpjpe_fused_mm": float(fused_err.detach()),
                  "error_head_l2": float(err_loss.detach())}


def train_deprope(config: dict, data: Path, out: Path, device: str | None = None):
    """Trainer for `corrupt-bench train deprope` on the train subjects present in `data`."""
    from corrupt_bench.models.data import TRAIN_SUBJECTS, present_subjects
    from corrupt_bench.models.training import fit, pick_device

    cfg = parse_config(config)
    dev = pick_device(device)
    clips = ClipSet(Path(data), present_subjects(data, TRAIN_SUBJECTS), cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.train.seed)
        net = DeProPoseNet(cfg)
    head = {id(q) for q in net.error_head.parameters()}
    groups = [{"params": [q for q in net.parameters() if id(q) not in head]},
              {"params": list(net.error_head.parameters()), "lr": cfg.train.lr * cfg.train.error_lr_scale}]
    opt = torch.optim.AdamW(groups, lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.train.epochs, 1))

    def batches(epoch: int):
        rng = np.random.default_rng([cfg.train.seed, epoch])
        for _ in range(cfg.train.steps_per_epoch):
            yield training_step_inputs(clips.sample(cfg.train.batch_size, cfg.frames, rng), cfg, rng, dev)

    return fit(model_name=MODEL_NAME, model=net, config=config, optimizer=opt, batches=batches, loss_fn=loss_fn,
               epochs=cfg.train.epochs, out=out, device=dev, scheduler=sched, steps_per_epoch=cfg.train.steps_per_epoch)


def build_deprope(config: dict, device: str | None = None) -> DeProPosePredictor:
    """DeProPose multi-view image model (fusion weights from a learned error head at inference)."""
    return DeProPosePredictor(config, device)
