"""The Human3.6M skeleton: 32 raw joints and the 17-joint subset in VideoPose3D order."""

from __future__ import annotations

import numpy as np

RAW_JOINT_NAMES: tuple[str, ...] = (
    "Hips", "RightUpLeg", "RightLeg", "RightFoot", "RightToeBase", "RightToeSite",
    "LeftUpLeg", "LeftLeg", "LeftFoot", "LeftToeBase", "LeftToeSite",
    "Spine", "Spine1", "Neck", "Head", "HeadSite",
    "LeftShoulder", "LeftArm", "LeftForeArm", "LeftHand", "LeftHandThumb", "LeftThumbSite",
    "LeftWristEnd", "LeftWristSite",
    "RightShoulder", "RightArm", "RightForeArm", "RightHand", "RightHandThumb", "RightThumbSite",
    "RightWristEnd", "RightWristSite",
)  # fmt: skip
RAW_PARENTS: tuple[int, ...] = (
    -1, 0, 1, 2, 3, 4, 0, 6, 7, 8, 9, 0, 11, 12, 13, 14, 12,
    16, 17, 18, 19, 20, 19, 22, 12, 24, 25, 26, 27, 28, 27, 30,
)  # fmt: skip
N_RAW_JOINTS = 32

# The 17-joint subset used by VideoPose3D and most lifting work.
H36M17_FROM_RAW: tuple[int, ...] = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)
JOINT_NAMES: tuple[str, ...] = (
    "Hip", "RHip", "RKnee", "RFoot", "LHip", "LKnee", "LFoot", "Spine", "Thorax",
    "Neck/Nose", "Head", "LShoulder", "LElbow", "LWrist", "RShoulder", "RElbow", "RWrist",
)  # fmt: skip
PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)
JOINTS_LEFT: tuple[int, ...] = (4, 5, 6, 11, 12, 13)
JOINTS_RIGHT: tuple[int, ...] = (1, 2, 3, 14, 15, 16)
N_JOINTS = 17
ROOT = 0

# Index permutation that swaps left and right joints (for flip augmentation / flip averaging).
FLIP_PERMUTATION: tuple[int, ...] = tuple(
    JOINTS_RIGHT[JOINTS_LEFT.index(j)] if j in JOINTS_LEFT
    else JOINTS_LEFT[JOINTS_RIGHT.index(j)] if j in JOINTS_RIGHT
    else j
    for j in range(N_JOINTS)
)  # fmt: skip

# (child, parent) pairs: the 16 bones of the 17-joint skeleton.
BONES: tuple[tuple[int, int], ...] = tuple((j, p) for j, p in enumerate(PARENTS) if p >= 0)


def raw_to_h36m17(raw: np.ndarray) -> np.ndarray:
    """Select the 17 joints from raw (..., 32, D) arrays; flat (..., 96) or (..., 64) inputs are reshaped."""
    raw = np.asarray(raw)
    if raw.shape[-1] in (64, 96) and raw.ndim >= 1 and (raw.ndim == 1 or raw.shape[-2] != N_RAW_JOINTS):
        raw = raw.reshape(*raw.shape[:-1], N_RAW_JOINTS, raw.shape[-1] // N_RAW_JOINTS)
    if raw.shape[-2] != N_RAW_JOINTS:
        raise ValueError(f"expected {N_RAW_JOINTS} raw joints, got shape {raw.shape}")
    return raw[..., list(H36M17_FROM_RAW), :]


def bone_lengths(poses: np.ndarray) -> np.ndarray:
    """Lengths of the 16 bones of (..., 17, 3) poses, shape (..., 16)."""
    child = [c for c, _ in BONES]
    parent = [p for _, p in BONES]
    return np.linalg.norm(poses[..., child, :] - poses[..., parent, :], axis=-1)


def _nearest_kept_ancestor(joint: int) -> int:
    while joint not in H36M17_FROM_RAW:
        joint = RAW_PARENTS[joint]
    return H36M17_FROM_RAW.index(joint)


# for each of the 32 raw joints, the 17-joint index that stands for it: itself when kept, else its
# nearest kept ancestor (toes -> foot, hand ends -> wrist, the duplicate spine/shoulder joints -> parent)
RAW_FROM_H36M17: tuple[int, ...] = tuple(_nearest_kept_ancestor(j) for j in range(N_RAW_JOINTS))


def h36m17_to_raw(poses: np.ndarray) -> np.ndarray:
    """(..., 17, D) -> (..., 32, D) in the raw layout (VideoPose3D's `data_3d_h36m.npz`): the 17 joints at
    their raw indices, each of the 15 others at its nearest kept ancestor. Those 15 are not ground
    truth; `raw_to_h36m17` of the result gives the input back exactly (VideoPose3D drops the 15)."""
    poses = np.asarray(poses)
    if poses.shape[-2] != N_JOINTS:
        raise ValueError(f"expected {N_JOINTS} joints, got shape {poses.shape}")
    return poses[..., list(RAW_FROM_H36M17), :]
