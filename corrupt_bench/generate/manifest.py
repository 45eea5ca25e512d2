"""Benchmark manifests: the strict schema, loading with one-line errors, and the manifest digest.

A manifest is the recipe of a benchmark: source, subjects, cameras, frame step, crop, output
format and, per variant, the corruptions with their severities (and optional overrides of a
severity table). It is read with `corrupt_bench.safe_yaml` (no anchors, aliases or tags, bounded size and depth,
no duplicate keys) and validated by pydantic with strict types, finite numbers and
`extra="forbid"`; every fault becomes a `UserError` naming the file, the key and what is allowed.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from corrupt_bench.data.cameras import CAMERA_ID, CAMERA_IDS
from corrupt_bench.errors import UserError, short_repr
from corrupt_bench.layout import CLEAN  # noqa: F401  (re-exported: planner and tests read it here)

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
SAFE_NAME_HELP = "a plain folder name (letters, digits, '.', '_', '-'; no '/', no '..', not absolute)"
SOURCE_KINDS = ("h36m_raw", "vp3d_npz", "synthetic", "mmpose_h36m", "multiview")
H36M_KINDS = ("h36m_raw", "vp3d_npz", "synthetic", "mmpose_h36m")  # sources whose subjects and actions are Human3.6M's
KEYPOINT_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")  # the <name> of data_2d_h36m_<name>.npz
ANNOTATION_DIR = re.compile(r"^fps\d+$")  # mmpose's annotation_body3d/fps<rate>
OPTIONAL_SOURCE_KEYS = ("keypoints", "annotation")  # left out of the digest when not given (older digests hold)
MAX_SEED = 2**63 - 1


class _Strict(BaseModel):
    """Strict types (`true` is not 1, "3" is not 3, 1.0 is not an integer), finite numbers only."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class SourceSpec(_Strict):
    """Where frames and labels come from. `path` is machine-local: it is left out of the digest."""

    kind: Literal["h36m_raw", "vp3d_npz", "synthetic", "mmpose_h36m", "multiview"]
    path: str | None = Field(None, description="default for --source (not part of the digest)")
    seconds: float = Field(2.0, gt=0, le=60, description="synthetic only: length of each sequence")
    divisor: int = Field(8, ge=1, le=16, description="synthetic only: render at 1/divisor of 1000 px")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="synthetic only: seed of the synthetic motion")
    keypoints: str | None = Field(
        None, description="vp3d_npz only: the 2D file data_2d_h36m_<keypoints>.npz (gt, cpn_ft_h36m_dbb, "
        "detectron_ft_h36m or any name); default: gt when present, else the mocap projected"
    )
    annotation: str | None = Field(
        None, description="mmpose_h36m only: the annotation folder (fps50, fps10); default: the only one, or fps50"
    )

    @field_validator("keypoints")
    @classmethod
    def _keypoint_name(cls, value: str | None) -> str | None:
        if value is not None and not KEYPOINT_FILE.fullmatch(value):
            raise ValueError(f"{value!r} is not a keypoint file name (letters, digits, _ . + -; e.g. cpn_ft_h36m_dbb)")
        return value

    @field_validator("annotation")
    @classmethod
    def _annotation_name(cls, value: str | None) -> str | None:
        if value is not None and not ANNOTATION_DIR.fullmatch(value):
            raise ValueError(f"{value!r} is not an mmpose annotation folder (fps50, fps10, ...)")
        return value

    @model_validator(mode="after")
    def _options_of_kind(self) -> SourceSpec:
        if self.keypoints is not None and self.kind != "vp3d_npz":
            raise ValueError(f"source.keypoints is for kind 'vp3d_npz' only (this source is {self.kind!r})")
        if self.annotation is not None and self.kind != "mmpose_h36m":
            raise ValueError(f"source.annotation is for kind 'mmpose_h36m' only (this source is {self.kind!r})")
        return self

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"kind": value} if isinstance(value, str) else value


class CropSpec(_Strict):
    """`person`: square box around the projected 2D joints grown by `margin`, resized to `size`.
    `full`: the whole frame at its native size (`size` must be left out)."""

    mode: Literal["person", "full"] = "person"
    margin: float = Field(0.15, ge=0.0, le=2.0)
    size: int | None = Field(None, ge=16, le=4096, description="output side in px (person; default 256)")

    @model_validator(mode="before")
    @classmethod
    def _default_size(cls, value: Any) -> Any:
        if isinstance(value, dict) and value.get("mode", "person") == "person" and value.get("size") is None:
            return {**value, "size": 256}
        return value

    @model_validator(mode="after")
    def _size_for_mode(self) -> CropSpec:
        if self.mode == "full" and self.size is not None:
            raise ValueError("crop.size is only allowed with mode 'person' (full frames keep their size)")
        return self

    @property
    def output_size(self) -> int | None:
        return self.size if self.mode == "person" else None


class OutputSpec(_Strict):
    """Image format of the output, or `keypoints` for label-only output (no images)."""

    format: Literal["jpeg", "png", "keypoints"] = "jpeg"
    quality: int = Field(95, ge=1, le=100, description="JPEG quality")

    @property
    def extension(self) -> str | None:
        return {"jpeg": "jpg", "png": "png", "keypoints": None}[self.format]


class CorruptionSpec(_Strict):
    """One corruption of a variant: its severities and optional overrides of its severity table."""

    name: str
    severities: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5], min_length=1)
    overrides: dict[int, dict[str, Any]] = Field(
        default_factory=dict, description="severity -> {parameter: value}; changes the manifest digest"
    )

    @field_validator("overrides", mode="before")
    @classmethod
    def _severity_keys(cls, value: Any) -> Any:
        """Severity keys are integers; digit strings are accepted too (JSON and the stored manifest.yaml
        write mapping keys as strings). true/false are not severities."""
        if not isinstance(value, dict):
            return value
        keys = {}
        for key, row in value.items():
            if isinstance(key, str) and key.isascii() and key.isdigit() and len(key) <= 3:
                key = int(key)
            elif isinstance(key, bool) or not isinstance(key, int):
                raise ValueError(f"override keys are severities (integers), got {short_repr(key)}")
            if key in keys:
                raise ValueError(f"severity {key} is overridden twice")
            keys[key] = row
        return keys

    @field_validator("severities", mode="before")
    @classmethod
    def _no_bool(cls, value: Any) -> Any:
        if isinstance(value, list) and any(isinstance(s, bool) for s in value):
            raise ValueError("severities must be integers (true/false are not severities)")
        return value

    @field_validator("severities")
    @classmethod
    def _unique(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError("severities must not repeat")
        return value


class VariantSpec(_Strict):
    """One output folder `<variant>/`: a list of corruptions (the clean reference is always added)."""

    name: str
    description: str = ""
    cameras: list[str] | None = Field(None, description="defaults to the manifest's cameras")
    corruptions: list[CorruptionSpec] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        return _check_safe_name(value)


class Manifest(_Strict):
    """A benchmark recipe. See manifests/*.yaml for commented examples."""

    name: str
    version: str
    description: str = ""
    paper: str = Field(description="citation of the benchmark's paper (or 'none' for a demo)")
    notes: list[str] = Field(default_factory=list, description="every choice where the paper is silent")
    seed: int = Field(ge=0, le=MAX_SEED)
    source: SourceSpec
    subjects: list[str] = Field(min_length=1)
    actions: list[str] | None = Field(None, description="canonical action names; all when left out")
    cameras: list[str] = Field(default_factory=lambda: list(CAMERA_IDS), min_length=1)
    frame_step: int = Field(1, ge=1, le=1000)
    max_frames: int | None = Field(None, ge=1, le=10**9, description="cap on frames per sequence after the step")
    crop: CropSpec = Field(default_factory=CropSpec)
    output: OutputSpec = Field(default_factory=OutputSpec)
    voc: str | None = Field(None, description="Pascal VOC folder for voc_occluder (--voc); not in the digest")
    variants: list[VariantSpec] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        return _check_safe_name(value)

    @field_validator("subjects")
    @classmethod
    def _subjects(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("subjects must not repeat")
        return value

    @model_validator(mode="before")
    @classmethod
    def _rig_cameras(cls, value: Any) -> Any:
        """A multi-view rig has its own camera ids: its manifest lists them (no Human3.6M default)."""
        if isinstance(value, dict) and "cameras" not in value:
            source = value.get("source")
            kind = source.get("kind") if isinstance(source, dict) else source
            if kind == "multiview":
                raise ValueError("key 'cameras' is required with source kind 'multiview' (the rig's camera ids)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError("variant names must be unique")
        if self.source.kind == "vp3d_npz" and self.output.format != "keypoints":
            raise ValueError("source kind 'vp3d_npz' has no images; allowed output.format: keypoints")
        h36m = self.source.kind in H36M_KINDS
        _check_cameras(self.cameras, h36m, "cameras")
        for i, variant in enumerate(self.variants):
            if variant.cameras is not None:
                _check_cameras(variant.cameras, h36m, f"variants[{i}].cameras")
        return self

    def variant_cameras(self, variant: VariantSpec) -> list[str]:
        return list(variant.cameras) if variant.cameras is not None else list(self.cameras)

    def digest(self) -> str:
        """sha256 of the canonical JSON of the validated manifest (overrides included; local paths not)."""
        return "sha256:" + hashlib.sha256(canonical_json(self).encode()).hexdigest()


def _check_safe_name(value: str) -> str:
    if not SAFE_NAME.fullmatch(value) or value in {".", ".."}:
        raise ValueError(f"{value!r} would escape the output root; allowed: {SAFE_NAME_HELP}")
    return value


def _did_you_mean(value: str, allowed: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(value, allowed, n=1, cutoff=0.5)
    return f"did you mean {close[0]!r}? " if close else ""


def check_h36m_names(manifest: Manifest, path: str | Path | None = None) -> None:
    """Subjects and actions of a Human3.6M source: the released subjects and the canonical action
    names, with "did you mean". Sources of other rigs carry their own ids (checked against the source
    itself by `check_against_source`)."""
    from corrupt_bench.data.quirks import ACTION_ALIASES, CANONICAL_ACTIONS, H36M_SUBJECTS

    if manifest.source.kind not in H36M_KINDS:
        return
    for i, subject in enumerate(manifest.subjects):
        if subject not in H36M_SUBJECTS:
            hint = _did_you_mean(subject, H36M_SUBJECTS)
            raise UserError(
                f"key 'subjects[{i}]': {subject!r} is not a Human3.6M subject; {hint}allowed: {', '.join(H36M_SUBJECTS)}", path
            )
    for i, action in enumerate(manifest.actions or ()):
        if action not in CANONICAL_ACTIONS:
            alias = ACTION_ALIASES.get(action)
            hint = f"did you mean {alias!r}? " if alias else _did_you_mean(action, CANONICAL_ACTIONS)
            raise UserError(
                f"key 'actions[{i}]': {action!r} is not a Human3.6M action; {hint}allowed: {', '.join(CANONICAL_ACTIONS)}", path
            )


def check_against_source(manifest: Manifest, sequences, source: str | Path, path: str | Path | None = None) -> None:
    """Every subject of the manifest has a sequence in the source, every listed action is recorded by
    at least one of them, and (a rig) every listed camera is the source's (`sequences`: the source's
    SequenceInfo list)."""
    subjects = {s.subject for s in sequences}
    for i, subject in enumerate(manifest.subjects):
        if subject not in subjects:
            hint = _did_you_mean(subject, tuple(sorted(subjects)))
            raise UserError(f"key 'subjects[{i}]': no subject {subject!r} in the source {source}; {hint}found: {', '.join(sorted(subjects)) or 'none'}", path)
    if manifest.source.kind not in H36M_KINDS:  # a rig's camera ids are its own: an unknown one is a fault, not a quirk
        cameras = sorted({c for s in sequences if s.subject in manifest.subjects for c in s.cameras})
        listed = [("cameras", manifest.cameras)] + [(f"variants[{i}].cameras", v.cameras or []) for i, v in enumerate(manifest.variants)]
        for key, ids in listed:
            for i, camera in enumerate(ids):
                if camera not in cameras:
                    hint = _did_you_mean(camera, tuple(cameras))
                    raise UserError(f"key '{key}[{i}]': no camera {camera!r} in the source {source}; {hint}found: {', '.join(cameras)}", path)
    actions = {s.action for s in sequences if s.subject in manifest.subjects}
    for i, action in enumerate(manifest.actions or ()):
        if action not in actions:
            hint = _did_you_mean(action, tuple(sorted(actions)))
            raise UserError(f"key 'actions[{i}]': no action {action!r} for these subjects in the source {source}; {hint}found: {', '.join(sorted(actions)) or 'none'}", path)


def _check_cameras(value: list[str], h36m: bool = True, key: str = "cameras") -> list[str]:
    """Human3.6M's four camera ids for its sources; a rig's own ids (checked against it when opened) otherwise."""
    for camera in value:
        if h36m and camera not in CAMERA_IDS:
            raise ValueError(f"key '{key}': camera {camera!r} is not allowed; allowed: {', '.join(CAMERA_IDS)}")
        if not h36m and not CAMERA_ID.fullmatch(camera):
            raise ValueError(f"key '{key}': camera id {camera!r} must be letters, digits, '_' and '-'")
    if len(set(value)) != len(value):
        raise ValueError(f"key '{key}': cameras must not repeat")
    return value


def canonical_dict(manifest: Manifest) -> dict:
    """The manifest as plain JSON data without machine-local paths (source.path, voc)."""
    data = manifest.model_dump(mode="json")
    data["source"].pop("path", None)
    for key in OPTIONAL_SOURCE_KEYS:
        if data["source"][key] is None:
            del data["source"][key]
    data.pop("voc", None)
    return data


def canonical_json(manifest: Manifest) -> str:
    return json.dumps(canonical_dict(manifest), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


# ---------------------------------------------------------------------------------------------
# loading


def _loc_to_key(loc: tuple) -> str:
    key = ""
    for part in loc:
        if isinstance(part, int):
            key += f"[{part}]"
        else:
            key += ("." if key else "") + str(part)
    return key or "(top level)"


def _unwrap_model(annotation: Any) -> type[BaseModel] | None:
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _unwrap_model(arg)
        if found is not None:
            return found
    return None


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The pydantic model that holds the field at `loc` (for listing the allowed keys)."""
    model: type[BaseModel] | None = Manifest
    for part in loc:
        if isinstance(part, int):
            continue
        if model is None or part not in model.model_fields:
            return None
        model = _unwrap_model(model.model_fields[part].annotation)
    return model


def _describe(error: dict) -> str:
    loc = tuple(error["loc"])
    key = _loc_to_key(loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        parent = _model_at(loc[:-1])
        allowed = ", ".join(parent.model_fields) if parent is not None else "see docs"
        where = _loc_to_key(loc[:-1])
        return f"unknown key {loc[-1]!r} in {where}; allowed keys: {allowed}"
    if kind == "missing":
        return f"key {key!r} is required"
    message = error["msg"].removeprefix("Value error, ")
    if not loc and message.startswith("key '"):  # a check across keys names its key itself
        return message
    if kind.startswith("literal") or kind.startswith("value_error"):
        return f"key {key!r}: {message}"
    return f"key {key!r}: {message} (got {short_repr(error.get('input'))})"


def parse_manifest(data: Any, path: str | Path | None = None, check_registry: bool = True) -> Manifest:
    """Validate plain data as a manifest; raise UserError naming `path`, the key and what is allowed."""
    if not isinstance(data, dict):
        raise UserError("a manifest must be a YAML mapping of keys (name, version, seed, source, ...)", path)
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        raise UserError(_describe(exc.errors()[0]), path) from None
    check_h36m_names(manifest, path)
    if check_registry:
        check_corruptions(manifest, path)
    return manifest


def resolve_manifest_path(name_or_path: str | Path) -> Path:
    """A path to a YAML file, or the name of a built-in manifest (`da-3dpe`, `demo-h36m-c`, ...)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    from corrupt_bench.resources import resource_dir

    builtin = resource_dir("manifests")
    for candidate in (builtin / f"{name_or_path}.yaml", builtin / str(name_or_path)):
        if SAFE_NAME.fullmatch(str(name_or_path)) and candidate.is_file():
            return candidate
    names = sorted(p.stem for p in builtin.glob("*.yaml"))
    close = difflib.get_close_matches(str(name_or_path), names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise UserError(f"no such manifest file or built-in manifest; built-in: {', '.join(names)}{hint}", path)


def load_manifest(name_or_path: str | Path, check_registry: bool = True) -> tuple[Manifest, Path]:
    """Read and validate a manifest file (or a built-in manifest by name) through the safe YAML reader."""
    from corrupt_bench.safe_yaml import load_yaml

    path = resolve_manifest_path(name_or_path)
    return parse_manifest(load_yaml(path, "manifest"), path, check_registry), path


# ---------------------------------------------------------------------------------------------
# corruption registry checks


def check_corruptions(manifest: Manifest, path: str | Path | None = None) -> None:
    """Check every corruption name, severity and override against the engine's registry; overrides
    are validated through the corruption's typed parameter model (types, finiteness, bounds)."""
    from corrupt_bench.engine import ParamError, get_corruption, list_corruptions

    known = sorted(c.name for c in list_corruptions())
    for vi, variant in enumerate(manifest.variants):
        seen: set[str] = set()
        for ci, spec in enumerate(variant.corruptions):
            key = f"variants[{vi}].corruptions[{ci}]"
            if spec.name not in known:
                close = difflib.get_close_matches(spec.name, known, n=1, cutoff=0.5)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise UserError(
                    f"key '{key}.name': unknown corruption {spec.name!r}; {hint}allowed: {', '.join(known)}", path
                )
            if spec.name in seen:
                raise UserError(f"key '{key}.name': corruption {spec.name!r} listed twice in variant {variant.name!r}", path)
            seen.add(spec.name)
            corruption = get_corruption(spec.name)
            allowed = sorted(int(s) for s in corruption.table)
            allowed_text = ", ".join(str(s) for s in allowed)
            for si, severity in enumerate(spec.severities):
                if severity not in allowed:
                    raise UserError(
                        f"key '{key}.severities[{si}]': severity {severity} of {spec.name!r} is not allowed; "
                        f"allowed: {allowed_text}",
                        path,
                    )
            for severity, params in spec.overrides.items():
                where = f"{key}.overrides.{severity}"
                if severity not in allowed:
                    raise UserError(
                        f"key '{where}': severity {severity} of {spec.name!r} is not allowed; allowed: {allowed_text}",
                        path,
                    )
                try:
                    corruption.overridden_row(severity, params)
                except ParamError as exc:
                    at = f"{where}.{exc.key}" if exc.key is not None else where
                    raise UserError(f"key '{at}': corruption {spec.name!r}, severity {severity}: {exc.fault}", path) from None
            if manifest.output.format == "keypoints" and corruption.family.apply is not None:
                raise UserError(
                    f"key '{key}.name': {spec.name!r} corrupts images but output.format is 'keypoints'; "
                    "allowed with keypoints output: keypoint, view and temporal corruptions",
                    path,
                )
