"""Rendering of the synthetic raw-Human3.6M source: a textured room seen by each real camera and a
person drawn from the 17 joints as shaded capsules (far to near), a head with hair, and a shadow.
Left and right are told apart as in a mocap suit: the subject's left arm, left leg and left shoe
carry an accent colour (a hue far from the shirt and trousers) with a wristband on the left wrist,
while the right side keeps the plain clothing. Front and back differ too (a print on the front of the
shirt, eyes and nose on the face, drawn only on the camera's side): unlike the colours, that cue
survives the horizontal-flip augmentation of the detectors, which swaps the left/right labels.

The static background of a camera is ray-cast once (floor, four walls, ceiling of a box room
around the capture volume, with the camera's lens distortion) and copied for every frame. The
person is projected with `corrupt_bench.data.cameras.project` (distortion included), so the
drawing agrees with the D2_Positions labels; limb radii scale with 1 / depth. Drawing is OpenCV
(anti-aliased, sub-pixel) with the per-frame geometry computed for all frames at once in numpy.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from corrupt_bench.data.cameras import Camera, project, world_to_camera
from corrupt_bench.data.synth_motion import body_shape, keyed_rng

_SHIFT = 3  # fixed-point bits of OpenCV drawing coordinates
_ONE = 1 << _SHIFT

# Skin tones (RGB), from light to dark, and hair colours.
_SKIN = ((238, 200, 170), (224, 172, 135), (198, 140, 100), (160, 105, 70), (112, 72, 48))
_HAIR = ((30, 22, 18), (70, 45, 25), (120, 80, 40), (185, 150, 90), (60, 60, 60))
_CLOTHES = (
    (200, 40, 40), (40, 90, 200), (40, 150, 70), (230, 180, 30), (130, 50, 160),
    (20, 150, 160), (230, 110, 30), (240, 240, 235), (35, 35, 45), (170, 30, 100),
)  # fmt: skip
_TROUSERS = ((35, 45, 80), (30, 30, 35), (90, 80, 60), (60, 70, 75), (110, 40, 35), (45, 80, 50))
# Accent of the left side, one convention for every subject (as a mocap suit's marker colour, so that a
# detector trained on a few subjects carries it over): yellow, or the next one where the shirt or the
# trousers are too close to it. Per-subject accents did not carry over from 2 training subjects.
_ACCENTS = ((255, 215, 0), (255, 40, 200), (0, 220, 255))
_EYES = (25, 20, 20)


@dataclass(frozen=True)
class Appearance:
    """How one synthetic subject looks: colours (RGB) and body thickness."""

    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    shirt: tuple[int, int, int]
    trousers: tuple[int, int, int]
    shoes: tuple[int, int, int]
    accent: tuple[int, int, int]  # left arm, left leg, left shoe and left wristband
    short_sleeves: bool
    girth: float  # limb thickness factor
    scale: float  # body size factor (1 = 1.75 m)


def appearance_for(subject: str, seed: int = 0) -> Appearance:
    """Deterministic clothing colours and build of a subject (depends on (subject, seed) only)."""
    rng = keyed_rng("appearance", subject, seed)
    body = body_shape(subject, seed)
    shirt = _CLOTHES[int(rng.integers(len(_CLOTHES)))]
    trousers = _TROUSERS[int(rng.integers(len(_TROUSERS)))]
    shoes = ((25, 25, 25), (235, 235, 235), (120, 70, 40))[int(rng.integers(3))]
    return Appearance(
        skin=_SKIN[int(rng.integers(len(_SKIN)))],
        hair=_HAIR[int(rng.integers(len(_HAIR)))],
        shirt=shirt,
        trousers=trousers,
        shoes=shoes,
        short_sleeves=bool(rng.random() < 0.5),
        girth=body.girth,
        scale=(body.thigh + body.shin + body.spine + body.chest) / 1373.0,
        accent=_pick_accent(shirt, trousers),
    )


def _pick_accent(shirt, trousers) -> tuple[int, int, int]:
    """The first of `_ACCENTS` more than 120 (RGB distance) from both the shirt and the trousers."""
    for accent in _ACCENTS:
        if min(np.linalg.norm(np.subtract(accent, colour, dtype=float)) for colour in (shirt, trousers)) > 120.0:
            return accent
    raise AssertionError("no accent contrasts with the clothing")  # the palettes are built to avoid this


# --------------------------------------------------------------------------------------------------
# Background: a box room ray-cast through the distorted camera

ROOM_HALF_X = 4200.0
ROOM_HALF_Y = 6600.0
ROOM_HEIGHT = 3600.0


def _undistort(xd: np.ndarray, yd: np.ndarray, camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """Invert `cameras.project`'s distortion on normalised coordinates (fixed-point iteration)."""
    k1, k2, k3 = camera.radial
    p1, p2 = camera.tangential
    x, y = xd.copy(), yd.copy()
    for _ in range(8):  # converges to 1e-10 px for the Human3.6M lenses
        r2 = x * x + y * y
        denom = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3)) + p1 * x + p2 * y
        x = (xd - p1 * r2) / denom
        y = (yd - p2 * r2) / denom
    return x, y


def _value_noise(grid: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Bilinear value noise: `grid` (G, G) sampled at continuous, wrapped coordinates (u: column, v: row)."""
    g = grid.shape[0]
    u0, v0 = np.floor(u), np.floor(v)
    fu, fv = (u - u0).astype(np.float32), (v - v0).astype(np.float32)
    i0, j0 = u0.astype(np.int64) % g, v0.astype(np.int64) % g
    i1, j1 = (i0 + 1) % g, (j0 + 1) % g
    top = grid[j0, i0] * (1 - fu) + grid[j0, i1] * fu
    bottom = grid[j1, i0] * (1 - fu) + grid[j1, i1] * fu
    return top * (1 - fv) + bottom * fv


def render_background(camera: Camera, seed: int = 0) -> np.ndarray:
    """HxWx3 uint8 RGB view of the textured room from `camera` (its size and intrinsics as given).

    Each pixel's ray (lens distortion inverted) is intersected with a box room: a tiled floor at
    z = 0, four walls with panels, a skirting board and posters, and a ceiling with lamps. Small
    frames are rendered at twice the size and reduced, against aliasing of the fine lines.
    """
    import cv2

    rng = keyed_rng("room", seed)
    ss = 2 if max(camera.width, camera.height) <= 600 else 1
    w, h = camera.width * ss, camera.height * ss
    u = (np.arange(w, dtype=np.float64) + 0.5) / ss - 0.5
    v = (np.arange(h, dtype=np.float64) + 0.5) / ss - 0.5
    uu, vv = np.meshgrid(u, v)
    (fx, fy), (cx, cy) = camera.focal_length, camera.center
    x, y = _undistort((uu.ravel() - cx) / fx, (vv.ravel() - cy) / fy, camera)
    rot = camera.R
    # world directions R^T (x, y, 1), written out: a (N, 3) @ (3, 3) matmul goes through BLAS threads
    d = [x * rot[0, i] + y * rot[1, i] + rot[2, i] for i in range(3)]
    o = np.asarray(camera.position)
    half = (ROOM_HALF_X, ROOM_HALF_Y, ROOM_HEIGHT)
    low = (-ROOM_HALF_X, -ROOM_HALF_Y, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ts = [(np.where(d[i] > 0, half[i], low[i]) - o[i]) / d[i] for i in range(3)]
    ts = [np.where(np.isfinite(t) & (t > 0), t, np.inf) for t in ts]
    axis = np.where(ts[0] <= ts[1], np.where(ts[0] <= ts[2], 0, 2), np.where(ts[1] <= ts[2], 1, 2))
    t_hit = np.minimum(np.minimum(ts[0], ts[1]), ts[2])
    p = np.stack([o[i] + d[i] * t_hit for i in range(3)], axis=-1).astype(np.float32)
    d = np.stack(d, axis=-1)
    noise_grid = rng.random((64, 64)).astype(np.float32)
    fine_grid = rng.random((64, 64)).astype(np.float32)
    img = np.empty((h * w, 3), dtype=np.float32)

    # floor: tiles with per-tile tint, grout lines and two octaves of noise
    floor_base = np.array([[150, 140, 128], [120, 128, 138], [160, 146, 120]][int(rng.integers(3))], np.float32)
    tint_table = rng.uniform(-0.09, 0.09, size=(32, 32)).astype(np.float32)
    sel = np.flatnonzero((axis == 2) & (d[:, 2] < 0))
    fx_, fy_ = p[sel, 0], p[sel, 1]
    tile = np.float32(600.0)
    tint = tint_table[np.floor(fx_ / tile).astype(np.int64) % 32, np.floor(fy_ / tile).astype(np.int64) % 32]
    fu, fv = np.mod(fx_, tile), np.mod(fy_, tile)
    grout = np.minimum(np.minimum(fu, tile - fu), np.minimum(fv, tile - fv)) < 14.0
    n_floor = _value_noise(noise_grid, fx_ / 220.0, fy_ / 220.0) - 0.5
    n_fine = _value_noise(fine_grid, fx_ / 45.0, fy_ / 45.0) - 0.5
    shade = (1.0 + tint + 0.16 * n_floor + 0.08 * n_fine) * np.where(grout, 0.55, 1.0)
    img[sel] = floor_base * shade[:, None]

    # walls: a colour per wall, vertical panels with seams, a skirting board and a few posters
    wall_palette = rng.uniform(110, 215, size=(4, 3)).astype(np.float32)
    sel = np.flatnonzero(axis < 2)
    wx, wy, wz = p[sel, 0], p[sel, 1], p[sel, 2]
    on_x = axis[sel] == 0
    wall_id = np.where(on_x, (wx > 0).astype(np.int64), 2 + (wy > 0).astype(np.int64))
    along = np.where(on_x, wy, wx)
    panel = np.float32(1100.0)
    seam = np.abs(np.mod(along, panel) - panel / 2) > panel / 2 - 10.0
    n_wall = _value_noise(noise_grid, along / 400.0 + 17.0, wz / 400.0) - 0.5
    walls = wall_palette[wall_id] * (1.0 + 0.12 * n_wall - 0.3 * seam)[:, None]
    for wid in range(4):
        for _ in range(3):
            c0 = rng.uniform(-2800, 2800)
            z0 = rng.uniform(900, 2000)
            pw, ph = rng.uniform(500, 1300), rng.uniform(400, 1000)
            colour = rng.uniform(20, 235, size=3).astype(np.float32)
            inside = (wall_id == wid) & (np.abs(along - c0) < pw / 2) & (np.abs(wz - z0) < ph / 2)
            walls[inside] = colour * (1.0 + 0.1 * n_wall[inside, None])
    walls *= (np.where(wz < 130.0, 0.55, 1.0) * (1.0 - 0.35 * np.exp(-wz / 300.0)))[:, None]
    img[sel] = walls

    # ceiling with lamps
    sel = np.flatnonzero((axis == 2) & (d[:, 2] >= 0))
    lamp = (np.mod(p[sel, 0], 1500.0) < 500.0) & (np.mod(p[sel, 1], 1500.0) < 300.0)
    img[sel] = np.where(lamp, 250.0, 205.0)[:, None]

    # light fall-off from the middle of the room and near the walls
    r = np.hypot(p[:, 0], p[:, 1]) / 1000.0
    wall_dist = np.minimum(ROOM_HALF_X - np.abs(p[:, 0]), ROOM_HALF_Y - np.abs(p[:, 1]))
    light = np.clip(1.12 - 0.035 * r, 0.7, 1.12) * (1.0 - 0.25 * np.exp(-np.maximum(wall_dist, 0.0) / 400.0))
    img = np.clip(img * light[:, None], 0, 255).reshape(h, w, 3)
    if ss > 1:
        img = cv2.resize(img, (camera.width, camera.height), interpolation=cv2.INTER_AREA)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------------
# The person

# Extra points derived from the 17 joints, appended after them.
_HAND_L, _HAND_R, _TOE_L, _TOE_R, _HEAD, _FACE, _HAIR_C, _NOSE, _EYE_L, _EYE_R, _BAND_L = range(17, 28)
_N_RING = 12
_CHEST = 28  # 4 corners of the print on the front of the shirt, then its centre
_RING0 = 33
_FEATURES = (_NOSE, _EYE_L, _EYE_R)  # face features, drawn when on the camera's side of the head
_FEATURE_RADIUS = (0.2, 0.15, 0.15)  # in head radii

# Capsules: (joint a, joint b, radius a mm, radius b mm, colour key). Radii scale with girth.
_LIMBS: tuple[tuple[int, int, float, float, str], ...] = (
    (1, 2, 82.0, 60.0, "trousers"), (2, 3, 58.0, 45.0, "trousers"), (3, _TOE_R, 45.0, 36.0, "shoes"),
    (4, 5, 82.0, 60.0, "leg_l"), (5, 6, 58.0, 45.0, "leg_l"), (6, _TOE_L, 45.0, 36.0, "shoes_l"),
    (14, 15, 52.0, 42.0, "shirt"), (15, 16, 40.0, 32.0, "sleeve"), (16, _HAND_R, 34.0, 28.0, "skin"),
    (11, 12, 52.0, 42.0, "arm_l"), (12, 13, 40.0, 32.0, "sleeve_l"), (13, _HAND_L, 34.0, 28.0, "skin"),
    (_BAND_L, 13, 37.0, 35.0, "band_l"),
)  # fmt: skip
# Torso group: pelvis, abdomen, chest, shoulders (drawn together, quad first).
_TORSO: tuple[tuple[int, int, float, float, str], ...] = (
    (1, 4, 88.0, 88.0, "trousers"),
    (0, 7, 118.0, 122.0, "shirt"),
    (7, 8, 128.0, 112.0, "shirt"),
    (11, 14, 62.0, 62.0, "shirt"),
)
_NECK = (8, _HEAD, 46.0, 44.0, "skin")


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def _derived_points(j: np.ndarray, app: Appearance) -> np.ndarray:
    """(N, 45, 3): the 17 joints, hands, toes, head/face/hair centres, nose, eyes, the left wristband,
    the chest print (4 corners and centre) and a shadow ring on the floor."""
    n = j.shape[0]
    up = _unit(j[:, 8] - j[:, 0])
    left = _unit(j[:, 4] - j[:, 1])
    fwd = _unit(np.cross(left, up))
    fwd_h = fwd.copy()
    fwd_h[:, 2] = 0.0
    fwd_h = _unit(fwd_h)
    s = app.scale
    hand_l = j[:, 13] + 0.36 * (j[:, 13] - j[:, 12])
    hand_r = j[:, 16] + 0.36 * (j[:, 16] - j[:, 15])
    toe_drop = np.array([0.0, 0.0, -45.0 * s])
    toe_l = j[:, 6] + 125.0 * s * fwd_h + toe_drop
    toe_r = j[:, 3] + 125.0 * s * fwd_h + toe_drop
    head_up = _unit(j[:, 10] - j[:, 9])
    head_fwd = j[:, 9] - j[:, 8]
    head_fwd = _unit(head_fwd - np.sum(head_fwd * head_up, -1, keepdims=True) * head_up)
    radius = _head_radius(app)
    head = 0.5 * (j[:, 9] + j[:, 10]) - 0.15 * radius * head_fwd
    face = head + 0.1 * radius * head_fwd - 0.05 * radius * head_up
    hair = head - 0.22 * radius * head_fwd + 0.16 * radius * head_up
    head_left = _unit(np.cross(head_up, head_fwd))  # the subject's left
    nose = face + radius * (0.97 * head_fwd - 0.2 * head_up)
    eye_l = face + radius * (0.8 * head_fwd + 0.38 * head_left + 0.12 * head_up)
    eye_r = face + radius * (0.8 * head_fwd - 0.38 * head_left + 0.12 * head_up)
    band_l = j[:, 13] + 0.3 * (j[:, 12] - j[:, 13])
    chest_up = _unit(j[:, 8] - j[:, 7])
    chest_left = _unit(j[:, 11] - j[:, 14])
    chest_fwd = _unit(np.cross(chest_left, chest_up))
    chest_left = np.cross(chest_up, chest_fwd)
    g = app.girth * s
    centre_c = 0.5 * (j[:, 7] + j[:, 8]) + 0.1 * (j[:, 8] - j[:, 7])
    front = centre_c + 95.0 * g * chest_fwd
    wx, hy = 80.0 * g * chest_left, 95.0 * g * chest_up
    chest = np.stack([front + wx + hy, front - wx + hy, front - wx - hy, front + wx - hy, centre_c], axis=1)
    ang = np.linspace(0.0, 2 * np.pi, _N_RING, endpoint=False)
    ring = np.zeros((n, _N_RING, 3))
    centre = 0.5 * (j[:, 0] + 0.5 * (j[:, 3] + j[:, 6]))
    ring[..., 0] = centre[:, None, 0] + 330.0 * s * np.cos(ang)[None] * 1.0
    ring[..., 1] = centre[:, None, 1] + 260.0 * s * np.sin(ang)[None]
    ring[..., 2] = 1.0
    extra = np.stack([hand_l, hand_r, toe_l, toe_r, head, face, hair, nose, eye_l, eye_r, band_l], axis=1)
    return np.concatenate([j, extra, chest, ring], axis=1)


def _head_radius(app: Appearance) -> float:
    return 108.0 * app.scale


def _colours(app: Appearance) -> dict[str, np.ndarray]:
    accent = np.array(app.accent, float)
    return {
        "arm_l": accent,
        "sleeve_l": np.array(app.skin, float) if app.short_sleeves else accent,
        "leg_l": 0.55 * accent + 0.45 * np.array(app.trousers, float),
        "shoes_l": 0.7 * accent,
        "band_l": 0.85 * accent,
        "skin": np.array(app.skin, float),
        "hair": np.array(app.hair, float),
        "shirt": np.array(app.shirt, float),
        "trousers": np.array(app.trousers, float),
        "shoes": np.array(app.shoes, float),
        "sleeve": np.array(app.skin if app.short_sleeves else app.shirt, float),
        "nose": np.array(app.skin, float) * 0.9,
        "eyes": np.array(_EYES, float),
        "print": _print_colour(app.shirt),
    }


def _print_colour(shirt) -> np.ndarray:
    """Light print on a dark shirt, dark print on a light one."""
    return np.array((235.0, 235.0, 225.0) if np.mean(shirt) < 128 else (30.0, 30.0, 40.0))


def _shade(colour: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Rim (darker) and core (lit) colours of a surface colour."""
    rim = tuple(float(c) for c in colour * 0.62)
    core = tuple(float(c) for c in np.minimum(colour * 1.08 + 8.0, 255.0))
    return rim, core


class _Capsules:
    """Fixed-point drawing geometry of K capsules over N frames (endpoints, radii, side quads)."""

    def __init__(self, a: np.ndarray, b: np.ndarray, ra: np.ndarray, rb: np.ndarray):
        ra, rb = np.maximum(ra, 1.0), np.maximum(rb, 1.0)
        d = b - a
        length = np.hypot(d[..., 0], d[..., 1])
        nrm = np.stack([-d[..., 1], d[..., 0]], -1) / np.maximum(length, 1e-9)[..., None]
        quad = np.stack([a + nrm * ra[..., None], b + nrm * rb[..., None], b - nrm * rb[..., None], a - nrm * ra[..., None]], -2)
        self.quad = np.ascontiguousarray(np.rint(quad), dtype=np.int32)  # (N, K, 4, 2)
        self.has_quad = (length > 0.5 * _ONE).tolist()
        self.a = np.rint(a).astype(np.int64).tolist()
        self.b = np.rint(b).astype(np.int64).tolist()
        self.ra = np.rint(ra).astype(np.int64).tolist()
        self.rb = np.rint(rb).astype(np.int64).tolist()

    def draw(self, img: np.ndarray, n: int, k: int, colour) -> None:
        import cv2

        cv2.circle(img, self.a[n][k], self.ra[n][k], colour, -1, cv2.LINE_AA, _SHIFT)
        cv2.circle(img, self.b[n][k], self.rb[n][k], colour, -1, cv2.LINE_AA, _SHIFT)
        if self.has_quad[n][k]:
            cv2.fillConvexPoly(img, self.quad[n, k], colour, cv2.LINE_AA, _SHIFT)


class _Shaded:
    """Two layers per capsule: a darker rim and a lit core shifted toward the light (upper left)."""

    def __init__(self, px: np.ndarray, depth: np.ndarray, f: float, table, girth: float, core_scale: float = 0.7):
        ia = [t[0] for t in table]
        ib = [t[1] for t in table]
        ra = f * np.array([t[2] for t in table]) * girth / depth[:, ia]
        rb = f * np.array([t[3] for t in table]) * girth / depth[:, ib]
        a, b = px[:, ia], px[:, ib]
        self.rim = _Capsules(a, b, ra, rb)
        light = np.array([-0.16, -0.2]) * (0.5 * (ra + rb))[..., None]
        self.core = _Capsules(a + light, b + light, core_scale * ra, core_scale * rb)
        self.depth = (0.5 * (depth[:, ia] + depth[:, ib])).tolist()


class _Geometry:
    """Everything the per-frame loop draws, computed for all frames at once."""

    def __init__(self, points_world: np.ndarray, camera: Camera, app: Appearance):
        cam = world_to_camera(points_world, camera)
        depth = cam[..., 2]
        self.ok = np.all(depth > 100.0, axis=-1).tolist()
        depth = np.maximum(depth, 100.0)
        safe = cam.copy()
        safe[..., 2] = depth
        px = project(safe, camera) * _ONE
        f = 0.5 * (camera.focal_length[0] + camera.focal_length[1]) * _ONE
        self.ring = px[:, _RING0 : _RING0 + _N_RING]
        self.limbs = _Shaded(px, depth, f, _LIMBS, app.girth)
        self.torso = _Shaded(px, depth, f, _TORSO, app.girth, core_scale=0.72)
        self.torso_quad = np.ascontiguousarray(np.rint(px[:, [11, 14, 1, 4]]), dtype=np.int32)
        self.torso_depth = depth[:, [0, 7, 8, 1, 4]].mean(axis=1).tolist()
        self.neck = _Shaded(px, depth, f, [_NECK], app.girth)
        radius = f * _head_radius(app) / depth[:, [_FACE, _HAIR_C]] * np.array([1.0, 1.02])
        centres = px[:, [_FACE, _HAIR_C]]
        self.head_rim = _Capsules(centres, centres, radius, radius)
        lit = centres + np.array([-0.18, -0.22]) * radius[..., None]
        self.head_core = _Capsules(lit, lit, 0.72 * radius, 0.72 * radius)
        self.head_depth = depth[:, [_FACE, _HAIR_C]].tolist()
        self.head_centre_depth = depth[:, _HEAD].tolist()
        feat_r = f * _head_radius(app) * np.array(_FEATURE_RADIUS) / depth[:, list(_FEATURES)]
        feat = px[:, list(_FEATURES)]
        self.features = _Capsules(feat, feat, feat_r, feat_r)
        self.chest = np.ascontiguousarray(np.rint(px[:, _CHEST : _CHEST + 4]), dtype=np.int32)
        front = depth[:, _CHEST : _CHEST + 4].mean(axis=1)
        self.chest_shown = (front < depth[:, _CHEST + 4] - 25.0 * app.girth * app.scale).tolist()
        self.features_shown = (depth[:, list(_FEATURES)] < depth[:, [_FACE]] - 0.25 * _head_radius(app)).tolist()


def _draw_shadow(img: np.ndarray, ring: np.ndarray) -> None:
    """Darken the floor under the person (blend inside the ring's bounding box only)."""
    import cv2

    h, w = img.shape[:2]
    lo = np.floor(ring.min(axis=0) / _ONE).astype(int) - 1
    hi = np.ceil(ring.max(axis=0) / _ONE).astype(int) + 2
    x0, y0 = max(lo[0], 0), max(lo[1], 0)
    x1, y1 = min(hi[0], w), min(hi[1], h)
    if x1 <= x0 or y1 <= y0:
        return
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    pts = np.rint(ring - np.array([x0, y0]) * _ONE).astype(np.int32)
    cv2.fillConvexPoly(mask, cv2.convexHull(pts), 255, cv2.LINE_AA, _SHIFT)
    mask = cv2.GaussianBlur(mask, (0, 0), max(0.02 * (x1 - x0), 0.6))
    roi = img[y0:y1, x0:x1]
    roi[:] = (roi * (1.0 - 0.4 * mask[..., None] / 255.0)).astype(np.uint8)


def _draw_person(img: np.ndarray, geo: _Geometry, n: int, colours: dict) -> None:
    import cv2

    if not geo.ok[n]:
        return
    _draw_shadow(img, geo.ring[n])
    items = [(d, k) for k, d in enumerate(geo.limbs.depth[n])]
    items.append((geo.torso_depth[n], -1))
    items.append((geo.head_centre_depth[n], -2))
    items.sort(key=lambda it: -it[0])
    for _, k in items:
        if k >= 0:
            rim, core = colours[_LIMBS[k][4]]
            geo.limbs.rim.draw(img, n, k, rim)
            geo.limbs.core.draw(img, n, k, core)
        elif k == -1:
            rim, core = colours["trousers"]
            geo.torso.rim.draw(img, n, 0, rim)
            geo.torso.core.draw(img, n, 0, core)
            rim, core = colours["shirt"]
            cv2.fillConvexPoly(img, cv2.convexHull(geo.torso_quad[n]), rim, cv2.LINE_AA, _SHIFT)
            for i in range(1, len(_TORSO)):
                geo.torso.rim.draw(img, n, i, rim)
            for i in range(1, len(_TORSO)):
                geo.torso.core.draw(img, n, i, core)
            if geo.chest_shown[n]:
                cv2.fillConvexPoly(img, geo.chest[n], colours["print"][1], cv2.LINE_AA, _SHIFT)
        else:
            rim, core = colours["skin"]
            geo.neck.rim.draw(img, n, 0, rim)
            geo.neck.core.draw(img, n, 0, core)
            face_d, hair_d = geo.head_depth[n]
            order = (1, 0) if hair_d > face_d else (0, 1)
            for i in order:
                rim, core = colours["hair"] if i == 1 else colours["skin"]
                geo.head_rim.draw(img, n, i, rim)
                geo.head_core.draw(img, n, i, core)
            for i, shown in enumerate(geo.features_shown[n]):
                if shown:
                    geo.features.draw(img, n, i, colours["nose"][0] if i == 0 else colours["eyes"][1])


def render_frames(
    joints_world17: np.ndarray, camera: Camera, appearance: Appearance, background: np.ndarray
) -> Iterator[np.ndarray]:
    """Yield one HxWx3 uint8 RGB frame per pose of (N, 17, 3) world-frame mm poses."""
    joints = np.asarray(joints_world17, dtype=np.float64)
    geo = _Geometry(_derived_points(joints, appearance), camera, appearance)
    colours = {k: _shade(v) for k, v in _colours(appearance).items()}
    for n in range(joints.shape[0]):
        img = background.copy()
        _draw_person(img, geo, n, colours)
        yield img


def render_frame(
    joints_world17: np.ndarray, camera: Camera, appearance: Appearance, background: np.ndarray
) -> np.ndarray:
    """One HxWx3 uint8 RGB frame of the person with (17, 3) world-frame joints over `background`."""
    joints = np.asarray(joints_world17, dtype=np.float64)
    return next(render_frames(joints[None], camera, appearance, background))
