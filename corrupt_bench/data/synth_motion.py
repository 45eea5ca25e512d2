"""Synthetic human motion for the synthetic raw-Human3.6M source.

Poses are built by forward kinematics from joint angles with one subject's bone lengths, so bone
lengths stay constant. Every quantity is a deterministic function of (subject, action, seed): the
body of a subject depends on (subject, seed) only, the motion style on (subject, action, seed).
All angle profiles are C2-smooth in time (sinusoids, quintic ramps, (1 - x^2)^3 bumps), so
accelerations stay bounded at 50 Hz.

Body frame: x forward, y left, z up. World: Human3.6M's, floor at z = 0, z up, mm.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from corrupt_bench.data.skeleton import N_RAW_JOINTS, raw_to_h36m17
from corrupt_bench.errors import UserError
from corrupt_bench.layout import H36M_FPS as FPS

# Motion name -> the Human3.6M action (raw file stem) it stands in for.
ACTION_STEMS: dict[str, str] = {
    "walk": "Walking",  # walking a figure of eight: left and right turns
    "wave": "Greeting",  # raising one arm and waving, slight turns
    "sit": "SittingDown",  # sitting down onto an (invisible) seat and standing up
    "squat": "Purchases",  # crouching down as if to pick up goods
    "bend": "TakingPhoto",  # bending forward, then holding a camera to the face
    "jump": "Posing",  # counter-movement jumps with arm swing
}
ACTIONS: tuple[str, ...] = tuple(ACTION_STEMS)
DEFAULT_ACTIONS: tuple[str, ...] = ("walk", "wave", "sit")


def resolve_action(name: str) -> str:
    """Motion name from a motion name or a Human3.6M action/stem name (case-insensitive)."""
    key = name.strip().lower()
    for motion, stem in ACTION_STEMS.items():
        if key in (motion, stem.lower()):
            return motion
    if key == "photo":  # the canonical name of TakingPhoto
        return "bend"
    import difflib

    choices = [*ACTIONS, *ACTION_STEMS.values()]
    close = difflib.get_close_matches(name, choices, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else f"; known: {', '.join(ACTIONS)}"
    raise UserError(f"unknown synthetic action '{name}'{hint}")


def stable_int(*parts: object) -> int:
    """A stable 64-bit integer from the parts (sha256 of their text), the same on every run and machine."""
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def keyed_rng(*parts: object) -> np.random.Generator:
    return np.random.default_rng(stable_int("corrupt-bench-synth", *parts))


# --------------------------------------------------------------------------------------------------
# Bodies


@dataclass(frozen=True)
class BodyShape:
    """Bone lengths (mm) of one synthetic subject."""

    hip_half_width: float
    thigh: float
    shin: float
    ankle_height: float
    foot: float
    spine: float  # root -> Spine1 (17-joint "Spine")
    chest: float  # Spine1 -> Neck (17-joint "Thorax")
    neck: float  # Thorax -> "Neck/Nose"
    head: float  # "Neck/Nose" -> head top
    shoulder_half_width: float
    upper_arm: float
    forearm: float
    girth: float  # thickness factor for rendering (1 = average build)


def body_shape(subject: str, seed: int = 0) -> BodyShape:
    """Per-subject bone lengths around Human3.6M-like proportions (height 1.60 .. 1.90 m)."""
    rng = keyed_rng("body", subject, seed)
    s = rng.uniform(0.92, 1.08)

    def j(value: float) -> float:
        return float(value * s * rng.uniform(0.95, 1.05))

    return BodyShape(
        hip_half_width=j(130.0),
        thigh=j(445.0),
        shin=j(440.0),
        ankle_height=j(80.0),
        foot=j(150.0),
        spine=j(233.0),
        chest=j(255.0),
        neck=j(118.0),
        head=j(115.0),
        shoulder_half_width=j(150.0),
        upper_arm=j(280.0),
        forearm=j(250.0),
        girth=float(rng.uniform(0.9, 1.15)),
    )


# --------------------------------------------------------------------------------------------------
# Smooth profiles


def smoother(x: np.ndarray) -> np.ndarray:
    """Quintic smootherstep on [0, 1] (clipped): C2 with zero first and second derivative at both ends."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * x * (x * (6.0 * x - 15.0) + 10.0)


def plateau(t: np.ndarray, period: float, rise: float, phase: float = 0.0) -> np.ndarray:
    """Periodic 0 -> 1 -> 0 profile: ramps up over `rise` of the period, holds, ramps down at mid-period."""
    u = np.mod(t / period + phase, 1.0)
    return smoother(u / rise) - smoother((u - 0.5) / rise)


def bump(u: np.ndarray, center: float, half_width: float) -> np.ndarray:
    """(1 - x^2)^3 bump on a periodic unit interval: C2, 1 at the centre, 0 beyond half_width."""
    d = np.mod(u - center + 0.5, 1.0) - 0.5
    x = np.clip(d / half_width, -1.0, 1.0)
    return (1.0 - x * x) ** 3


def _deg(x) -> np.ndarray:
    return np.deg2rad(x)


# --------------------------------------------------------------------------------------------------
# Joint angles


@dataclass
class Angles:
    """Per-frame angles (radians, arrays of shape (N,)); side-specific ones are dicts 'L'/'R'."""

    n: int
    yaw: np.ndarray
    pelvis_pitch: np.ndarray
    pelvis_roll: np.ndarray
    spine_bend: np.ndarray
    spine_side: np.ndarray
    spine_twist: np.ndarray
    chest_bend: np.ndarray
    chest_twist: np.ndarray
    neck_bend: np.ndarray
    head_yaw: np.ndarray
    hip_flex: dict
    hip_abd: dict
    knee: dict
    foot_pitch: dict
    shoulder_flex: dict
    shoulder_abd: dict
    arm_twist: dict
    elbow: dict

    @classmethod
    def idle(cls, t: np.ndarray, rng: np.random.Generator) -> Angles:
        """Standing with small breathing and sway: the base every action modifies."""
        z = np.zeros_like(t)
        ph = rng.uniform(0, 2 * np.pi, size=4)
        breath = np.sin(2 * np.pi * 0.25 * t + ph[0])
        sway = np.sin(2 * np.pi * 0.21 * t + ph[1])

        def side(value) -> dict:
            return {"L": np.full_like(t, value), "R": np.full_like(t, value)}

        a = cls(
            n=len(t),
            yaw=z.copy(),
            pelvis_pitch=z + _deg(2.0),
            pelvis_roll=_deg(1.0) * sway,
            spine_bend=_deg(2.0) + _deg(0.8) * breath,
            spine_side=-_deg(0.8) * sway,
            spine_twist=_deg(1.5) * np.sin(2 * np.pi * 0.13 * t + ph[2]),
            chest_bend=_deg(1.0) * breath,
            chest_twist=z.copy(),
            neck_bend=_deg(4.0) + _deg(3.0) * np.sin(2 * np.pi * 0.17 * t + ph[3]),
            head_yaw=_deg(8.0) * np.sin(2 * np.pi * 0.11 * t + ph[3]),
            hip_flex=side(_deg(3.0)),
            hip_abd=side(_deg(4.0)),
            knee=side(_deg(5.0)),
            foot_pitch=side(0.0),
            shoulder_flex=side(_deg(4.0)),
            shoulder_abd=side(_deg(9.0)),
            arm_twist=side(0.0),
            elbow=side(_deg(14.0)),
        )
        a.hip_abd["L"] = a.hip_abd["L"] + _deg(1.5) * sway
        a.hip_abd["R"] = a.hip_abd["R"] - _deg(1.5) * sway
        return a


@dataclass(frozen=True)
class Style:
    """Per (subject, action, seed) variation of one motion."""

    speed: float
    amplitude: float
    phase: float
    heading: float
    anchor: tuple[float, float]
    lead: str  # "L" or "R": the waving / leading side
    extra: tuple[float, ...]


def motion_style(subject: str, action: str, seed: int) -> Style:
    rng = keyed_rng("style", subject, action, seed)
    return Style(
        speed=float(rng.uniform(0.85, 1.15)),
        amplitude=float(rng.uniform(0.85, 1.15)),
        phase=float(rng.uniform(0.0, 1.0)),
        heading=float(rng.uniform(-np.pi, np.pi)),
        anchor=(float(rng.uniform(-500, 500)), float(rng.uniform(-500, 500))),
        lead=str(rng.choice(["L", "R"])),
        extra=tuple(float(x) for x in rng.uniform(0.0, 1.0, size=8)),
    )


def _walk(t, st: Style, body: BodyShape, rng) -> tuple[Angles, np.ndarray]:
    """Figure-of-eight walk (left and right turns); returns the angles and the root's xy path."""
    a = Angles.idle(t, rng)
    height = (body.thigh + body.shin) / 885.0
    speed = 1150.0 * st.speed * height  # mm/s
    stride = 1350.0 * height * st.amplitude**0.5  # mm per gait cycle (two steps)
    # Lemniscate of Gerono, arc-length parametrised on a fine grid.
    ax, ay = 1450.0 + 300.0 * st.extra[0], 750.0 + 250.0 * st.extra[1]
    u = np.linspace(0.0, 2 * np.pi, 20001)
    curve = np.stack([ax * np.sin(u), ay * np.sin(u) * np.cos(u)], axis=-1)
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(curve, axis=0), axis=-1))])
    dist = speed * t + st.phase * arc[-1]
    uu = np.interp(np.mod(dist, arc[-1]), arc, u)
    c, s = np.cos(st.heading), np.sin(st.heading)
    rot = np.array([[c, -s], [s, c]])
    if st.lead == "L":  # walk the figure of eight the other way round
        uu = 2 * np.pi - uu
    xy = np.stack([ax * np.sin(uu), ay * np.sin(uu) * np.cos(uu)], axis=-1) @ rot.T
    xy += np.asarray(st.anchor) * 0.3
    # heading from the analytic tangent (smooth)
    du = 1.0 if st.lead == "R" else -1.0
    tangent = np.stack([ax * np.cos(uu) * du, ay * np.cos(2 * uu) * du], axis=-1) @ rot.T
    a.yaw = np.unwrap(np.arctan2(tangent[:, 1], tangent[:, 0]))

    phi = 2 * np.pi * dist / stride
    amp = st.amplitude
    for side, off in (("L", 0.0), ("R", np.pi)):
        p = phi + off
        a.hip_flex[side] = _deg(4.0) + amp * _deg(22.0) * np.sin(p)
        a.knee[side] = (
            _deg(6.0)
            + amp * _deg(52.0) * ((1 + np.cos(p + 0.35)) / 2) ** 3
            + _deg(12.0) * ((1 + np.cos(p - 2.0)) / 2) ** 4
        )
        a.foot_pitch[side] = _deg(14.0) * ((1 + np.cos(p - 1.4)) / 2) ** 3 - _deg(22.0) * ((1 + np.cos(p + 1.1)) / 2) ** 4
        a.shoulder_flex[side] = _deg(3.0) - amp * _deg(20.0) * np.sin(p)
        a.elbow[side] = _deg(18.0) + _deg(12.0) * ((1 - np.sin(p)) / 2) ** 2
    a.pelvis_roll = a.pelvis_roll + _deg(3.0) * np.cos(2 * phi)
    a.yaw = a.yaw + _deg(5.0) * np.sin(phi)
    a.chest_twist = -_deg(9.0) * np.sin(phi)
    a.spine_bend = a.spine_bend + _deg(4.0)
    a.head_yaw = a.head_yaw * 0.5
    return a, xy


def _wave(t, st: Style, rng) -> Angles:
    a = Angles.idle(t, rng)
    a.yaw = a.yaw + st.heading + _deg(20.0) * np.sin(2 * np.pi * t / 7.0 + 6.28 * st.extra[0])
    raise_ = plateau(t, 3.2 / st.speed, 0.14, st.phase)
    wave = np.sin(2 * np.pi * (2.0 + st.extra[1]) * t)
    s = st.lead
    a.shoulder_abd[s] = a.shoulder_abd[s] + raise_ * _deg(100.0 + 30.0 * st.extra[2])
    a.shoulder_flex[s] = a.shoulder_flex[s] + raise_ * _deg(20.0)
    a.arm_twist[s] = raise_ * _deg(85.0)
    a.elbow[s] = a.elbow[s] + raise_ * (_deg(45.0) + st.amplitude * _deg(28.0) * wave)
    a.spine_side = a.spine_side + raise_ * _deg(4.0) * (1 if s == "R" else -1)
    a.neck_bend = a.neck_bend - raise_ * _deg(5.0)
    # a slight bow between waves
    bow = plateau(t, 3.2 / st.speed, 0.14, st.phase + 0.5) * bump(np.mod(t * st.speed / 3.2 + st.phase, 1.0), 0.75, 0.2)
    a.chest_bend = a.chest_bend + _deg(15.0) * bow
    return a


def _sit(t, st: Style, rng) -> Angles:
    a = Angles.idle(t, rng)
    a.yaw = a.yaw + st.heading
    s = plateau(t, 5.0 / st.speed, 0.26, -0.06 - 0.1 * st.phase)
    tr = 4.0 * s * (1.0 - s)  # 1 mid-transition
    for side in "LR":
        a.hip_flex[side] = a.hip_flex[side] + s * _deg(85.0)
        a.knee[side] = a.knee[side] + s * _deg(88.0)
        a.hip_abd[side] = a.hip_abd[side] + s * _deg(6.0 + 6.0 * st.extra[0])
        a.shoulder_flex[side] = a.shoulder_flex[side] + s * _deg(30.0) + tr * _deg(20.0)
        a.elbow[side] = a.elbow[side] + s * _deg(40.0)
    a.spine_bend = a.spine_bend + tr * _deg(30.0) + s * _deg(6.0)
    a.neck_bend = a.neck_bend - tr * _deg(10.0)
    return a


def _squat(t, st: Style, rng) -> Angles:
    a = Angles.idle(t, rng)
    a.yaw = a.yaw + st.heading + _deg(15.0) * np.sin(2 * np.pi * t / 6.0 + 6.28 * st.extra[0])
    s = plateau(t, 2.8 / st.speed, 0.32, st.phase) * st.amplitude
    a.pelvis_pitch = a.pelvis_pitch + s * _deg(25.0)
    a.spine_bend = a.spine_bend + s * _deg(12.0)
    a.neck_bend = a.neck_bend - s * _deg(20.0)
    for side in "LR":
        a.hip_flex[side] = a.hip_flex[side] + s * _deg(110.0)
        a.knee[side] = a.knee[side] + s * _deg(110.0)
        a.hip_abd[side] = a.hip_abd[side] + s * _deg(12.0)
    lead = st.lead
    a.shoulder_flex[lead] = a.shoulder_flex[lead] + s * _deg(70.0)
    a.elbow[lead] = a.elbow[lead] + s * _deg(10.0)
    other = "L" if lead == "R" else "R"
    a.shoulder_flex[other] = a.shoulder_flex[other] + s * _deg(35.0)
    a.elbow[other] = a.elbow[other] + s * _deg(50.0)
    return a


def _bend(t, st: Style, rng) -> Angles:
    a = Angles.idle(t, rng)
    a.yaw = a.yaw + st.heading + _deg(25.0) * np.sin(2 * np.pi * t / 8.0 + 6.28 * st.extra[0])
    period = 4.0 / st.speed
    down = plateau(t, period, 0.2, st.phase)
    photo = plateau(t, period, 0.12, st.phase + 0.5) * bump(np.mod(t / period + st.phase, 1.0), 0.75, 0.22)
    a.pelvis_pitch = a.pelvis_pitch + down * _deg(45.0) * st.amplitude
    a.spine_bend = a.spine_bend + down * _deg(28.0)
    a.chest_bend = a.chest_bend + down * _deg(10.0)
    a.neck_bend = a.neck_bend - down * _deg(25.0) - photo * _deg(6.0)
    for side in "LR":
        a.hip_flex[side] = a.hip_flex[side] + down * (_deg(45.0) * st.amplitude - _deg(4.0))
        a.knee[side] = a.knee[side] + down * _deg(12.0)
        a.shoulder_flex[side] = a.shoulder_flex[side] + down * _deg(60.0) + photo * _deg(65.0)
        a.shoulder_abd[side] = a.shoulder_abd[side] + photo * _deg(12.0)
        a.elbow[side] = a.elbow[side] + down * _deg(5.0) + photo * _deg(105.0)
    return a


def _jump(t, st: Style, rng) -> tuple[Angles, np.ndarray]:
    """Counter-movement jumps; returns the angles and the flight height (mm) added to the root."""
    a = Angles.idle(t, rng)
    a.yaw = a.yaw + st.heading
    period = 1.8 / st.speed
    u = np.mod(t / period + st.phase, 1.0)
    crouch = bump(u, 0.30, 0.17) + 0.6 * bump(u, 0.78, 0.13)
    flight = bump(u, 0.52, 0.12)
    arms = bump(u, 0.48, 0.2)
    a.pelvis_pitch = a.pelvis_pitch + crouch * _deg(20.0)
    a.spine_bend = a.spine_bend + crouch * _deg(10.0)
    for side in "LR":
        a.hip_flex[side] = a.hip_flex[side] + crouch * _deg(70.0) + flight * _deg(8.0)
        a.knee[side] = a.knee[side] + crouch * _deg(85.0)
        a.foot_pitch[side] = a.foot_pitch[side] - flight * _deg(30.0)
        a.shoulder_flex[side] = a.shoulder_flex[side] - crouch * _deg(40.0) + arms * _deg(110.0) * st.amplitude
        a.elbow[side] = a.elbow[side] + crouch * _deg(20.0)
    return a, flight * (150.0 + 100.0 * st.extra[0]) * st.amplitude


# --------------------------------------------------------------------------------------------------
# Forward kinematics (vectorised over frames)


def _rx(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


def _ry(a: np.ndarray) -> np.ndarray:
    """Rotation about y; positive tilts +z toward +x (a forward lean of the upper body)."""
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def _rz(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


def _fwd(a: np.ndarray) -> np.ndarray:
    """Rotation swinging a limb hanging along -z forward (toward +x) by a."""
    return _ry(-a)


def _mm(*mats: np.ndarray) -> np.ndarray:
    out = mats[0]
    for m in mats[1:]:
        out = out @ m
    return out


def _ap(rot: np.ndarray, vec) -> np.ndarray:
    return rot @ np.asarray(vec, dtype=np.float64)


def forward_kinematics(a: Angles, body: BodyShape) -> np.ndarray:
    """(N, 32, 3) raw Human3.6M joints with the root at the origin (xy) and z = 0."""
    n = a.n
    out = np.zeros((n, N_RAW_JOINTS, 3))
    r_root = _mm(_rz(a.yaw), _ry(a.pelvis_pitch), _rx(a.pelvis_roll))
    r_heading = _rz(a.yaw)
    b = body
    for side, sign, (hip_i, knee_i, ankle_i, toe_i, site_i) in (
        ("R", -1.0, (1, 2, 3, 4, 5)),
        ("L", 1.0, (6, 7, 8, 9, 10)),
    ):
        hip = _ap(r_root, [0.0, sign * b.hip_half_width, -0.05 * b.hip_half_width])
        r_thigh = _mm(r_root, _fwd(a.hip_flex[side]), _rx(sign * a.hip_abd[side]))
        knee = hip + _ap(r_thigh, [0.0, 0.0, -b.thigh])
        r_shin = r_thigh @ _fwd(-a.knee[side])
        ankle = knee + _ap(r_shin, [0.0, 0.0, -b.shin])
        # the foot is oriented in the world (flat on the floor plus pitch), not relative to the shin
        toe_out = _rz(np.full(n, sign * _deg(-8.0)))
        r_foot = _mm(r_heading, toe_out, _ry(-a.foot_pitch[side]))
        toe = ankle + _ap(r_foot, [0.82 * b.foot, 0.0, -0.7 * b.ankle_height])
        site = toe + _ap(r_foot, [0.38 * b.foot, 0.0, -0.1 * b.ankle_height])
        out[:, [hip_i, knee_i, ankle_i, toe_i, site_i]] = np.stack([hip, knee, ankle, toe, site], 1)

    r_spine = _mm(r_root, _ry(a.spine_bend), _rx(a.spine_side), _rz(a.spine_twist))
    spine1 = _ap(r_spine, [0.0, 0.0, b.spine])
    out[:, 11] = _ap(r_spine, [0.0, 0.0, 0.5 * b.spine])  # raw "Spine": halfway up the lower back
    out[:, 12] = spine1
    r_chest = _mm(r_spine, _ry(a.chest_bend), _rz(a.chest_twist))
    thorax = spine1 + _ap(r_chest, [0.0, 0.0, b.chest])
    out[:, 13] = thorax
    r_neck = _mm(r_chest, _ry(a.neck_bend), _rz(a.head_yaw))
    nose = thorax + _ap(r_neck, [0.25 * b.neck, 0.0, 0.97 * b.neck])
    out[:, 14] = nose
    out[:, 15] = nose + _ap(r_neck, [-0.08 * b.head, 0.0, 0.997 * b.head])
    # raw shoulders 16 / 24 coincide with the neck joint, as in the real recordings
    out[:, 16] = thorax
    out[:, 24] = thorax
    for side, sign, (arm_i, elbow_i, hand_i, thumb_i, tsite_i, wend_i, wsite_i) in (
        ("L", 1.0, (17, 18, 19, 20, 21, 22, 23)),
        ("R", -1.0, (25, 26, 27, 28, 29, 30, 31)),
    ):
        shoulder = thorax + _ap(r_chest, [-0.05 * b.shoulder_half_width, sign * b.shoulder_half_width, -0.17 * b.shoulder_half_width])
        r_upper = _mm(r_chest, _fwd(a.shoulder_flex[side]), _rx(sign * a.shoulder_abd[side]), _rz(sign * a.arm_twist[side]))
        elbow = shoulder + _ap(r_upper, [0.0, 0.0, -b.upper_arm])
        r_fore = r_upper @ _fwd(a.elbow[side])
        wrist = elbow + _ap(r_fore, [0.0, 0.0, -b.forearm])
        h = b.forearm / 250.0
        thumb = wrist + _ap(r_fore, [25.0 * h, 0.0, -35.0 * h])
        thumb_site = thumb + _ap(r_fore, [15.0 * h, 0.0, -45.0 * h])
        wrist_end = wrist + _ap(r_fore, [0.0, 0.0, -85.0 * h])
        wrist_site = wrist_end + _ap(r_fore, [0.0, 0.0, -90.0 * h])
        out[:, [arm_i, elbow_i, hand_i, thumb_i, tsite_i, wend_i, wsite_i]] = np.stack(
            [shoulder, elbow, wrist, thumb, thumb_site, wrist_end, wrist_site], 1
        )
    return out


def _soft_min(values: np.ndarray, temperature: float) -> np.ndarray:
    """Smooth lower bound of the minimum over the last axis (log-sum-exp)."""
    m = values.min(axis=-1, keepdims=True)
    return m[..., 0] - temperature * np.log(np.sum(np.exp(-(values - m) / temperature), axis=-1))


def synthetic_motion_raw(subject: str, action: str, n_frames: int, seed: int = 0) -> np.ndarray:
    """(N, 32, 3) raw Human3.6M joints, world frame, mm: a deterministic function of the arguments."""
    motion = resolve_action(action)
    body = body_shape(subject, seed)
    st = motion_style(subject, motion, seed)
    rng = keyed_rng("idle", subject, motion, seed)
    t = np.arange(n_frames, dtype=np.float64) / FPS
    path = None
    lift = np.zeros(n_frames)
    if motion == "walk":
        ang, path = _walk(t, st, body, rng)
    elif motion == "wave":
        ang = _wave(t, st, rng)
    elif motion == "sit":
        ang = _sit(t, st, rng)
    elif motion == "squat":
        ang = _squat(t, st, rng)
    elif motion == "bend":
        ang = _bend(t, st, rng)
    else:
        ang, lift = _jump(t, st, rng)
    joints = forward_kinematics(ang, body)
    if path is None:
        # stationary actions: keep the mid-point of the ankles on the anchor, so the feet stay planted
        mid = joints[:, [3, 8], :2].mean(axis=1)
        path = np.asarray(st.anchor)[None] - mid
    # ground contact: the lowest of heels and toes touches the floor (smoothly)
    contact = np.concatenate(
        [
            joints[:, [3, 8], 2] - body.ankle_height,
            joints[:, [4, 9], 2] - 0.25 * body.ankle_height,
            joints[:, [5, 10], 2] - 0.15 * body.ankle_height,
        ],
        axis=1,
    )
    root_z = -_soft_min(contact, temperature=10.0) + lift
    offset = np.concatenate([path, root_z[:, None]], axis=1)
    return joints + offset[:, None, :]


def synthetic_motion(subject: str, action: str, n_frames: int, seed: int = 0) -> np.ndarray:
    """(N, 17, 3) world-frame mm poses of `subject` performing `action` at 50 fps."""
    return raw_to_h36m17(synthetic_motion_raw(subject, action, n_frames, seed))
