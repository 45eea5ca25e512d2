"""A small deterministic multi-view clip (stick figure on a textured background) for the preview
command, the tests and the benchmark. Geometry is exact: the figure is drawn at the projections of
`mocap_world` through the real Human3.6M cameras (scaled), so desync labels can be checked."""

from __future__ import annotations

import math

import cv2
import numpy as np

from corrupt_bench.data.cameras import CAMERA_IDS, get_camera, project_world
from corrupt_bench.data.crop import crop_affine, person_box, square_box
from corrupt_bench.data.skeleton import BONES
from corrupt_bench.engine.clip import Clip
from corrupt_bench.engine.rng import RngKey

_TEMPLATE = np.array([
    (0, 0, 900), (-130, 0, 900), (-130, 0, 480), (-130, 0, 80), (130, 0, 900), (130, 0, 480), (130, 0, 80),
    (0, 0, 1130), (0, 0, 1370), (0, 30, 1470), (0, 0, 1580), (170, 0, 1340), (190, 0, 1080), (200, 0, 840),
    (-170, 0, 1340), (-190, 0, 1080), (-200, 0, 840),
], dtype=np.float64)  # fmt: skip


def demo_motion(n_frames: int, fps: float = 50.0) -> np.ndarray:
    """(N, 17, 3) world mm: a figure swinging arms and legs while drifting sideways."""
    t = np.arange(n_frames) / fps
    poses = np.repeat(_TEMPLATE[None], n_frames, axis=0)
    swing = np.sin(2 * np.pi * t / 1.2)
    for joint, amp in ((12, 150), (13, 300), (15, -150), (16, -300), (2, -120), (3, -250), (5, 120), (6, 250)):
        poses[:, joint, 1] += amp * swing
    poses[:, :, 0] += (400 * np.sin(2 * np.pi * t / 8.0))[:, None]
    return poses


def _background(h: int, w: int, camera_id: str) -> np.ndarray:
    rng = RngKey(0, "demo-background", 1, 0, "", "", camera_id, 0).generator()
    coarse = rng.uniform(40, 215, size=(max(h // 12, 2), max(w // 12, 2), 3)).astype(np.float32)
    smooth = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    stripes = 25 * np.sin(xx * (2 * math.pi / 9)) * np.cos(yy * (2 * math.pi / 13))
    return np.clip(smooth + stripes[..., None], 0, 255).astype(np.uint8)


def draw_figure(background: np.ndarray, joints: np.ndarray) -> np.ndarray:
    """Stick figure (limbs, head) over `background` at (17, 2) px (sub-pixel, anti-aliased)."""
    img = background.copy()
    scale = max(img.shape[:2]) / 160.0
    shift = 4
    pts = np.rint(joints * (1 << shift)).astype(np.int64)
    colours = {"left": (220, 40, 40), "right": (40, 70, 220), "mid": (240, 230, 60)}
    for child, parent in BONES:
        side = "left" if child in (4, 5, 6, 11, 12, 13) else "right" if child in (1, 2, 3, 14, 15, 16) else "mid"
        cv2.line(img, tuple(map(int, pts[child])), tuple(map(int, pts[parent])), colours[side],
                 max(1, int(round(4 * scale))), cv2.LINE_AA, shift)  # fmt: skip
    cv2.circle(img, tuple(map(int, pts[10])), int(round(9 * scale * (1 << shift))), (250, 200, 170), -1, cv2.LINE_AA, shift)
    return img


def demo_clip(
    n_views: int = 2,
    n_frames: int = 4,
    size: int = 160,
    start: int = 0,
    step: int = 1,
    crop: bool = True,
    subject: str = "S9",
    sequence_frames: int = 400,
) -> Clip:
    """Clip of `n_views` Human3.6M cameras at frames start, start+step, ...; square person crops of
    `size` px when `crop`, else full frames of the camera scaled to a width of about `size`."""
    frames = start + step * np.arange(n_frames)
    sequence_frames = max(sequence_frames, int(frames[-1]) + 1)
    mocap = demo_motion(sequence_frames)
    cameras, images, joints, boxes, affines, nexts = [], [], [], [], [], []
    for cam_id in CAMERA_IDS[:n_views]:
        cam = get_camera(subject, cam_id)
        if not crop:
            cam = cam.scaled(max(1, int(round(cam.width / size))))
        cameras.append(cam)
        j_full = project_world(mocap[frames], cam)
        if crop:
            a = np.stack([crop_affine(square_box(person_box(j, 0.25)), size) for j in j_full])
        else:
            a = np.repeat(np.array([[[1.0, 0, 0], [0, 1.0, 0]]]), n_frames, axis=0)
        j_img = np.einsum("tij,tkj->tki", a[:, :, :2], j_full) + a[:, None, :, 2]
        h, w = (size, size) if crop else (cam.height, cam.width)
        bg = _background(h, w, cam_id)
        images.append(np.stack([draw_figure(bg, j) for j in j_img]))
        # the next frame's figure cut with this frame's box (the last frame: itself)
        j_next = np.einsum("tij,tkj->tki", a[:-1, :, :2], j_full[1:]) + a[:-1, None, :, 2]
        nexts.append(np.stack([draw_figure(bg, j) for j in j_next] + [images[-1][-1]]))
        joints.append(j_img)
        boxes.append(person_box(j_img, 0.1))
        affines.append(a)
    return Clip(
        subject=subject,
        sequence="Demo 1",
        fps=50.0,
        frame_indices=frames.astype(np.int64),
        cameras=tuple(cameras),
        images=np.stack(images),
        joints_2d=np.stack(joints),
        joints_3d_world=mocap[frames],
        boxes=np.stack(boxes),
        mocap_world=mocap,
        crop_affine=np.stack(affines) if crop else None,
        n_frames=sequence_frames,
        images_next=np.stack(nexts) if crop else None,
    )


def synthetic_clip(n_views: int = 2, n_frames: int = 3, size: int = 160, start: int = 100, subject: str = "S9") -> Clip:
    """Like `demo_clip`, but rendered by the synthetic Human3.6M source (`corrupt_bench.data.synth`):
    the person walks, frames are cut as square person crops of `size` px."""
    from corrupt_bench.data.crop import crop_image
    from corrupt_bench.data.synth import (
        DEFAULT_DIVISOR,
        appearance_for,
        camera_background,
        render_frame,
        synthetic_motion,
    )

    frames = start + np.arange(n_frames)
    mocap = synthetic_motion(subject, "walk", int(frames[-1]) + 1)
    cameras, images, joints, boxes, affines, nexts = [], [], [], [], [], []
    for cam_id in CAMERA_IDS[:n_views]:
        cam = get_camera(subject, cam_id).scaled(DEFAULT_DIVISOR)
        background = camera_background(subject, cam_id, DEFAULT_DIVISOR, 0)
        crops, views, following = [], [], []
        rendered = [render_frame(mocap[f], cam, appearance_for(subject), background) for f in frames]
        for t, f in enumerate(frames):
            j_full = project_world(mocap[f], cam)
            crop = square_box(person_box(j_full, 0.25))
            views.append(crop_image(rendered[t], crop, size))
            following.append(crop_image(rendered[min(t + 1, n_frames - 1)], crop, size))  # next frame, this box
            crops.append(crop_affine(crop, size))
        a = np.stack(crops)
        j_img = np.einsum("tij,tkj->tki", a[:, :, :2], project_world(mocap[frames], cam)) + a[:, None, :, 2]
        cameras.append(cam)
        images.append(np.stack(views))
        nexts.append(np.stack(following))
        joints.append(j_img)
        boxes.append(person_box(j_img, 0.1))
        affines.append(a)
    return Clip(
        subject=subject, sequence="Walking 1", fps=50.0, frame_indices=frames.astype(np.int64),
        cameras=tuple(cameras), images=np.stack(images), joints_2d=np.stack(joints),
        joints_3d_world=mocap[frames], boxes=np.stack(boxes), mocap_world=mocap,
        crop_affine=np.stack(affines), n_frames=len(mocap), images_next=np.stack(nexts),
    )  # fmt: skip
