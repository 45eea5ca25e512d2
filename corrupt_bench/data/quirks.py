"""Every known quirk of the raw Human3.6M download, in one place.

Each quirk is a named constant or a small pure function; the reader (`corrupt_bench.data.raw`) and the
VideoPose3D npz reader call these and nothing else decides about them. Each one has a test on a
fixture written in the real formats (tests/test_raw.py).

Raw file stems are "<Action>[ <n>]": the action word of the recording plus an optional take number.
The numbering is irregular per subject ("Eating" and "Eating 2", "Sitting 1" and "Sitting 2",
"Discussion 2" and "Discussion 3"), and some subjects spell actions differently ("TakingPhoto" and
"WalkingDog" for S1 where the others have "Photo" and "WalkDog").
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# --- sequences that are not recordings of one action -------------------------------------------
ALL_SEQUENCE_PREFIX = "_ALL"  # "_ALL", "_ALL 1": whole-session files, not one action; always skipped


def is_all_sequence(stem: str) -> bool:
    """True for the `_ALL` whole-session files, which the reader skips."""
    return stem.startswith(ALL_SEQUENCE_PREFIX)


# --- action names ---------------------------------------------------------------------------------
# Spellings of the same action across subjects, mapped to the name VideoPose3D uses. "WalkTogether"
# is already canonical; "WalkingTogether" is mapped defensively. The mapping works on the whole
# action word, never on prefixes: "Walking" is not "WalkingDog" and "Sitting" is not "SittingDown".
ACTION_ALIASES: dict[str, str] = {
    "TakingPhoto": "Photo",
    "WalkingDog": "WalkDog",
    "WalkingTogether": "WalkTogether",
}
CANONICAL_ACTIONS: tuple[str, ...] = (
    "Directions", "Discussion", "Eating", "Greeting", "Phoning", "Photo", "Posing", "Purchases",
    "Sitting", "SittingDown", "Smoking", "Waiting", "WalkDog", "Walking", "WalkTogether",
)  # fmt: skip

# --- subjects ---------------------------------------------------------------------------------------
# The subjects of the public release (the ones with calibration and mocap); S2, S3, S4 were never released.
H36M_SUBJECTS: tuple[str, ...] = ("S1", "S5", "S6", "S7", "S8", "S9", "S11")

_STEM = re.compile(r"^(?P<word>[A-Za-z_]+)(?: (?P<take>\d+))?$")


def split_stem(stem: str) -> tuple[str, int | None]:
    """Split a raw stem into its action word and take number: "Eating 2" -> ("Eating", 2), "Eating" -> ("Eating", None).

    Raises ValueError for a stem that is not "<word>[ <n>]"."""
    match = _STEM.match(stem)
    if match is None:
        raise ValueError(f"not a Human3.6M sequence name: {stem!r}")
    take = match.group("take")
    return match.group("word"), None if take is None else int(take)


def canonical_action(stem: str) -> str:
    """Canonical action of a raw stem: "TakingPhoto 1" -> "Photo", "WalkingDog" -> "WalkDog", "Walking 1" -> "Walking"."""
    word, _ = split_stem(stem)
    return ACTION_ALIASES.get(word, word)


def canonical_sequence(stem: str) -> str:
    """The stem with its action renamed as VideoPose3D keys it: "TakingPhoto 1" -> "Photo 1" (its npz key)."""
    word, take = split_stem(stem)
    word = ACTION_ALIASES.get(word, word)
    return word if take is None else f"{word} {take}"


def subaction_numbers(stems: Iterable[str]) -> dict[str, int]:
    """Number the takes of each canonical action of ONE subject 1, 2, ...

    Takes are ordered by their suffix, a missing suffix first: ("Eating", "Eating 2") -> 1, 2;
    ("Sitting 1", "Sitting 2") -> 1, 2; ("Directions 1", "Directions") -> "Directions" is 1. This is
    the order of VideoPose3D's keys when sorted ("Eating" < "Eating 2"), since a take number never
    has two digits."""
    by_action: dict[str, list[tuple[int, str]]] = {}
    for stem in stems:
        _, take = split_stem(stem)
        by_action.setdefault(canonical_action(stem), []).append((-1 if take is None else take, stem))
    numbers: dict[str, int] = {}
    for takes in by_action.values():
        for rank, (_, stem) in enumerate(sorted(takes), start=1):
            numbers[stem] = rank
    return numbers


# --- recordings known to be broken -------------------------------------------------------------------
# The video of S11 "Directions" from camera 54138969 is corrupt (VideoPose3D discards the whole
# sequence for this reason). The reader drops that camera of that sequence unless asked to keep it.
CORRUPT_VIDEOS: frozenset[tuple[str, str, str]] = frozenset({("S11", "Directions", "54138969")})

# S9 sequences whose mocap is damaged (drifting ground truth), excluded by default.
DAMAGED_SEQUENCES: frozenset[tuple[str, str]] = frozenset(
    {("S9", "Greeting 2"), ("S9", "SittingDown 1"), ("S9", "Waiting 1")}
)


def is_corrupt_video(subject: str, stem: str, camera_id: str) -> bool:
    """True for a video known to be corrupt (excluded unless `include_corrupt_video`)."""
    return (subject, stem, camera_id) in CORRUPT_VIDEOS


def is_damaged_sequence(subject: str, stem: str) -> bool:
    """True for a sequence known to have damaged mocap (excluded unless `include_damaged`)."""
    return (subject, stem) in DAMAGED_SEQUENCES


# --- frame counts ---------------------------------------------------------------------------------
def usable_video_frames(video_frames: int, mocap_frames: int) -> int | None:
    """Frames of a video that pair with the mocap, or None when the video is too short.

    Videos of the raw download often run a few frames past the end of the mocap; the surplus has no
    pose and is dropped (the reader warns). A video shorter than its mocap is not a known quirk."""
    if video_frames < mocap_frames:
        return None
    return mocap_frames
