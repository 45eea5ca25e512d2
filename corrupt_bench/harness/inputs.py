"""What a model is fed, named explicitly: the 2D input of keypoint models (`score --input-2d`).

A keypoint model's 2D input is chosen for the whole run, never guessed:

- `detector`: a 2D detector (`--detector SPEC`) on each cell's images (the corrupted pixels);
- `corrupted`: the benchmark's own keypoint input (`keypoints_2d`, written by keypoint corruptions);
  a keypoint-only benchmark's default;
- `gt`: the ground-truth 2D labels (`joints_2d`) on every cell, an explicit opt-in: image corruptions
  do not reach the model, and every table that includes such a run says so (`GT_NOTE`).

Without `--input-2d`, a run with `--detector` is `detector`; a run without one is `corrupted` when
no scored cell has images without keypoint input, and a user error (exit 2, naming the options)
otherwise. Each result row records what the model was fed on that cell (`ROW_INPUTS`): with
`detector` or `corrupted`, a cell with keypoint input still feeds its corrupted keypoints, and a cell
with neither images nor keypoint input (a keypoint variant's clean cell, a raw source) feeds its
2D labels, recorded as `labels` (the clean labels there; desynchronised labels carry their offset).
Image models read the images themselves: `images`.
"""

from __future__ import annotations

from collections.abc import Mapping

from corrupt_bench.errors import UserError

INPUT_2D_MODES: tuple[str, ...] = ("detector", "corrupted", "gt")
GT_NOTE = "ground-truth 2D: image corruptions do not reach this model"
ROW_INPUTS: Mapping[str, str] = {
    "detector": "a 2D detector on the cell's images",
    "corrupted": "the cell's corrupted keypoints (keypoints_2d)",
    "gt": "ground-truth 2D labels, by explicit opt-in (" + GT_NOTE + ")",
    "labels": "the cell's 2D labels (no images, no keypoint input: a keypoint variant's clean cell or a raw source)",
    "images": "the cell's images (an image model)",
}
GridInputs = Mapping[tuple[str, str, int], tuple[bool, bool]]  # (variant, corruption, severity) -> (has images, has keypoints)


def resolve_input_2d(kind: str, requested: str | None, detector_given: bool, grid: GridInputs, model: str,
                     box: str = "gt") -> str | None:  # fmt: skip
    """The run's 2D input mode of a model consuming `kind` (None for an image model), or a UserError
    before anything is written. `box` is the benchmark's box protocol (`harness.timing`): with
    `detector`, an image model's person crops are cut with a 2D detector's box, which must be given."""
    if requested is not None and requested not in INPUT_2D_MODES:
        raise UserError(f"unknown --input-2d '{requested}'; allowed: {', '.join(INPUT_2D_MODES)}")
    if kind != "keypoints2d":
        if requested is not None:
            raise UserError(f"model '{model}' reads {kind}: --input-2d and --detector apply to keypoint models only "
                            "(--detector also to image models on a benchmark whose manifest says box: detector)")
        if box == "detector" and kind == "images" and not detector_given:
            raise UserError(f"this benchmark's manifest says box: detector: image model '{model}' needs --detector SPEC, the 2D "
                            "detector whose box cuts each person crop from the corrupted full frame")  # fmt: skip
        if detector_given and box != "detector":
            raise UserError(f"model '{model}' reads {kind}: --input-2d and --detector apply to keypoint models only "
                            "(--detector also to image models on a benchmark whose manifest says box: detector)")
        return None
    if requested == "detector" and not detector_given:
        raise UserError("--input-2d detector needs --detector SPEC (a built-in detector, a detector checkpoint or package.module:factory)")
    if requested in ("gt", "corrupted") and detector_given:
        raise UserError(f"--detector is read only with --input-2d detector (this run asks for --input-2d {requested})")
    mode = requested or ("detector" if detector_given else None)
    if mode in ("detector", "gt"):
        return mode
    blind = sorted(f"{v}/{c}/{s}" for (v, c, s), (images, keypoints) in grid.items() if images and not keypoints)
    if blind:
        more = f" and {len(blind) - 1} more" if len(blind) > 1 else ""
        raise UserError(
            f"keypoint model '{model}' on cells with images but no keypoint input ({blind[0]}{more}) needs its 2D input "
            f"named: --input-2d detector --detector SPEC, or --input-2d gt ({GT_NOTE})"
        )
    return "corrupted"


def cell_input_2d(mode: str | None, has_images: bool, has_keypoints: bool) -> str:
    """What the model is fed on one cell under the run's mode (a `ROW_INPUTS` key)."""
    if mode is None:
        return "images"
    if mode == "gt":
        return "gt"
    if has_keypoints:
        return "corrupted"
    if has_images:
        if mode != "detector":
            raise ValueError("a cell with images and no keypoint input needs --input-2d detector or gt")
        return "detector"
    return "labels"
