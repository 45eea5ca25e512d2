"""Planner: a manifest and the source's sequences -> work units, and units -> groups that share frames.

A work unit is (variant, corruption, severity, sequence) and covers all the manifest's cameras
of that sequence, because multi-view corruptions (view_drop, subframe_desync) need the views
together. Every variant also gets its clean reference `clean/0`. Units are small frozen
dataclasses of plain values: picklable, and the same on every machine.

A unit is what resumes (its done-marker, its files); a `UnitGroup` is what runs: units that read
the same frames (same sequence, cameras and frame indices, whatever their variant), so the frames
are decoded and cropped once for all of them. Grouping is scheduling only: every unit's output is
a pure function of its key, so no grouping changes a byte.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from corrupt_bench.generate.manifest import Manifest
from corrupt_bench.layout import CLEAN, H36M_FPS


@dataclass(frozen=True)
class SequenceInfo:
    """What the planner needs of a source sequence (a plain-value copy of `data.raw.SequenceRef`)."""

    subject: str
    sequence: str
    action: str
    subaction: int
    cameras: tuple[str, ...]
    n_frames: int
    fps: float = H36M_FPS  # the rate of the source's frame indices (a rig's videos carry their own)

    @classmethod
    def from_ref(cls, ref) -> SequenceInfo:
        return cls(ref.subject, ref.sequence, ref.action, int(ref.subaction), tuple(ref.cameras), int(ref.n_frames),
                   float(ref.fps))  # fmt: skip


@dataclass(frozen=True)
class WorkUnit:
    """One (variant, corruption, severity, sequence) with its cameras and source frame indices."""

    variant: str
    corruption: str
    severity: int
    seq: SequenceInfo
    cameras: tuple[str, ...]
    frames: tuple[int, ...]

    @property
    def cell(self) -> str:
        """`<variant>/<corruption>/<severity>`: the folder of this unit's cell."""
        return f"{self.variant}/{self.corruption}/{self.severity}"

    @property
    def stem(self) -> str:
        """`<subject>_<sequence>`: the name of the label file and the prefix of the image folders."""
        return f"{self.seq.subject}_{self.seq.sequence}"

    @property
    def key(self) -> str:
        return f"{self.cell}/{self.stem}"

    @property
    def n_images(self) -> int:
        return len(self.frames) * len(self.cameras)


@dataclass(frozen=True)
class Plan:
    units: tuple[WorkUnit, ...]
    skipped: tuple[str, ...]  # sequences left out, with the reason

    @property
    def n_frames(self) -> int:
        return sum(len(u.frames) for u in self.units)

    @property
    def n_rows(self) -> int:
        return sum(u.n_images for u in self.units)


def frame_indices(manifest: Manifest, n_frames: int) -> tuple[int, ...]:
    """Source frames of a sequence: every `frame_step`-th from 0, capped at `max_frames`."""
    frames = range(0, n_frames, manifest.frame_step)
    if manifest.max_frames is not None:
        frames = frames[: manifest.max_frames]
    return tuple(frames)


def select_sequences(manifest: Manifest, sequences: Iterable[SequenceInfo]) -> list[SequenceInfo]:
    """The sequences of the manifest's subjects (and actions), in a stable order."""
    chosen = [
        s
        for s in sequences
        if s.subject in manifest.subjects and (manifest.actions is None or s.action in manifest.actions)
    ]
    order = {subject: i for i, subject in enumerate(manifest.subjects)}
    return sorted(chosen, key=lambda s: (order[s.subject], s.sequence))


def plan(manifest: Manifest, sequences: Iterable[SequenceInfo]) -> Plan:
    """All work units of a manifest, sorted by key. A sequence keeps the manifest's cameras it has;
    one with none of them, or with no frame, is skipped and reported."""
    units: list[WorkUnit] = []
    skipped: list[str] = []
    selected = select_sequences(manifest, sequences)
    for variant in manifest.variants:
        wanted = manifest.variant_cameras(variant)
        cells = [(CLEAN, 0)] + [(c.name, s) for c in variant.corruptions for s in sorted(c.severities)]
        for seq in selected:
            cameras = tuple(c for c in wanted if c in seq.cameras)
            frames = frame_indices(manifest, seq.n_frames)
            if not cameras or not frames:
                why = "none of the cameras " + ", ".join(wanted) if not cameras else "no frames"
                skipped.append(f"{variant.name}: {seq.subject} {seq.sequence}: {why}")
                continue
            if len(cameras) < len(wanted):
                missing = ", ".join(c for c in wanted if c not in cameras)
                skipped.append(f"{variant.name}: {seq.subject} {seq.sequence}: camera {missing} not usable, left out")
            for name, severity in cells:
                units.append(WorkUnit(variant.name, name, severity, seq, cameras, frames))
    units.sort(key=lambda u: u.key)
    return Plan(tuple(units), tuple(skipped))


@dataclass(frozen=True)
class UnitGroup:
    """Units that read the same frames of one sequence (same cameras and frame indices): run together,
    the frames decoded once. Not empty."""

    units: tuple[WorkUnit, ...]

    @property
    def key(self) -> str:
        """`<subject>_<sequence>: <unit key>, ...`: names the group in messages."""
        return f"{self.units[0].stem}: " + ", ".join(u.key for u in self.units)

    @property
    def n_images(self) -> int:
        return sum(u.n_images for u in self.units)


def frames_key(unit: WorkUnit) -> tuple:
    """What decides the frames a unit reads: its sequence, cameras and frame indices."""
    return (unit.seq.subject, unit.seq.sequence, unit.cameras, unit.frames)


def group_units(units: Sequence[WorkUnit], min_groups: int = 1, max_images: int | None = None) -> tuple[UnitGroup, ...]:
    """Units that read the same frames, grouped. A group is split (its units dealt round-robin, each
    part decoding its frames once) when that gives fewer than `min_groups` groups overall (parallel
    workers need items), and so that no group holds more than `max_images` images (at least one
    unit each). Largest groups first, so the longest work starts first; units keep their planned
    order inside a group."""
    shared: dict[tuple, list[WorkUnit]] = {}
    for unit in units:
        shared.setdefault(frames_key(unit), []).append(unit)
    parts = max(1, math.ceil(min_groups / max(1, len(shared))))
    groups = []
    for members in shared.values():
        k = parts
        if max_images is not None:
            per_group = max(1, max_images // max(1, members[0].n_images))
            k = max(k, math.ceil(len(members) / per_group))
        k = min(k, len(members))
        groups.extend(UnitGroup(tuple(members[i::k])) for i in range(k))
    groups.sort(key=lambda g: -g.n_images)  # stable: equal sizes keep the planned order
    return tuple(groups)
