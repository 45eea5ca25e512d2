"""Planner: a manifest and the source's sequences -> work units.

A work unit is (variant, corruption, severity, sequence) and covers all the manifest's cameras
of that sequence, because multi-view corruptions (view_drop, subframe_desync) need the views
together. Every variant also gets its clean reference `clean/0`. Units are small frozen
dataclasses of plain values: picklable, and the same on every machine.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from corrupt_bench.generate.manifest import Manifest
from corrupt_bench.layout import CLEAN


@dataclass(frozen=True)
class SequenceInfo:
    """What the planner needs of a source sequence (a plain-value copy of `data.raw.SequenceRef`)."""

    subject: str
    sequence: str
    action: str
    subaction: int
    cameras: tuple[str, ...]
    n_frames: int

    @classmethod
    def from_ref(cls, ref) -> SequenceInfo:
        return cls(ref.subject, ref.sequence, ref.action, int(ref.subaction), tuple(ref.cameras), int(ref.n_frames))


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
