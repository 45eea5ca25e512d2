"""`generate`: a manifest + a source -> a benchmark folder with labels, images and lock.json.

Each work unit (variant, corruption, severity, sequence; all cameras) is a pure function of the
manifest, the source and its key. Units that read the same frames (one sequence, same cameras and
frame indices) run together as a `UnitGroup`: `run_group` reads and crops each chunk of frames once
(`generate.clips`: frames at the manifest's step; engine keys depend on absolute frame indices
only, so neither chunking nor grouping changes a pixel), and every unit of the group corrupts it,
encodes and writes its images atomically and turns its corruption record into label rows
(`generate.labels`, spooled off memory); at the end each unit writes its label file, then its
done-marker with the content digests. `generate` skips units whose marker and files exist, groups
the rest, runs the groups on an executor, and assembles lock.json from the markers sorted by key.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from functools import lru_cache, partial
from pathlib import Path

import numpy as np

from corrupt_bench.engine import Clip, Corruption, corrupt_clip, get_corruption
from corrupt_bench.errors import UserError
from corrupt_bench.executors.base import Staging
from corrupt_bench.generate import lock as lockmod
from corrupt_bench.generate.clips import ClipChunk, UnitFrames, chunk_length, overlap_frames
from corrupt_bench.generate.labels import LabelSpool, chunk_table
from corrupt_bench.generate.manifest import Manifest, canonical_dict, check_against_source, load_manifest
from corrupt_bench.generate.planner import Plan, SequenceInfo, UnitGroup, WorkUnit, group_units, plan
from corrupt_bench.generate.sources import SourceConfig, open_source, resolve_source
from corrupt_bench.generate.writers import encode_image, write_labels
from corrupt_bench.io import atomic_write_bytes, confined, is_temporary, name_the_file, remove_temporaries
from corrupt_bench.layout import (
    CAMERA_FILE_NAME,
    CLEAN,
    DONE_DIR,
    LOCK_NAME,
    MANIFEST_NAME,
    OUTPUT_LOCK_NAME,
    RUN_LOG_NAME,
    SEQUENCES_NAME,
    STATE_DIR,
    image_folder,
    image_name,
    label_path,
)
from corrupt_bench.outdir import output_lock

# rough sizes assumed by --dry-run: bytes per output pixel (RGB) plus a per-file header; JPEG q95 of
# person crops is ~0.3 B/px clean and ~1 B/px under pixel noise, PNG ~1.6 B/px
BYTES_PER_PIXEL = {"jpeg": 0.5, "png": 1.6}
BYTES_PER_IMAGE_HEADER = 600
BYTES_PER_LABEL_ROW = 700
FULL_FRAME_PIXELS = 1000 * 1000  # a Human3.6M frame, when the source's sizes are not at hand
OWN_CALIBRATION_KINDS = ("mmpose_h36m", "multiview")  # sources whose cameras.json is written from their own calibration


@dataclass(frozen=True)
class RunContext:
    """Everything a unit needs besides its key: plain data, picklable (sent to every worker)."""

    out: str
    manifest_json: str  # the validated manifest as JSON (full, with local paths)
    source: SourceConfig
    voc: str | None
    seed: int
    chunk_frames: int = 0  # frames per chunk of a unit; 0: from CHUNK_BYTES (never changes the output)


@dataclass(frozen=True)
class UnitResult:
    key: str
    files: int
    images: int
    frames: int
    seconds: float
    skipped: bool = False


@dataclass
class GenerateSummary:
    out: Path
    units: int
    done_before: int
    ran: int
    frames: int
    images: int
    seconds: float
    skipped_sequences: list[str] = field(default_factory=list)
    lock_digest: str = ""


# ---------------------------------------------------------------------------------------------
# per-process caches (pure functions of their arguments)


@lru_cache(maxsize=2)
def _manifest(manifest_json: str) -> Manifest:
    return Manifest.model_validate_json(manifest_json)


@lru_cache(maxsize=2)
def _occluder_bank(voc: str | None):
    if voc is None:
        return None  # the engine's built-in bank
    from corrupt_bench.engine.voc import load_voc_bank
    from corrupt_bench.generate.sources import cache_root

    return load_voc_bank(Path(voc), cache_root() / "voc")


def corruption_for(manifest: Manifest, variant: str, name: str) -> Corruption:
    """The engine corruption with this manifest's overrides applied to its table (validated)."""
    corruption = get_corruption(name)
    if name == CLEAN:
        return corruption
    spec = next(c for v in manifest.variants if v.name == variant for c in v.corruptions if c.name == name)
    return corruption.with_overrides(spec.overrides)


# ---------------------------------------------------------------------------------------------
# one group of units (one unit alone is a group of one)


def run_unit(ctx: RunContext, unit: WorkUnit) -> UnitResult:
    """Generate one unit alone (its frames read for it only); see `run_group`."""
    return run_group(ctx, UnitGroup((unit,)))[0]


def run_group(ctx: RunContext, group: UnitGroup) -> list[UnitResult]:
    """Generate the units of a group whose markers are missing: each chunk of their shared frames is
    read and cropped once, then every unit corrupts it, writes its images and spools its label rows;
    at the end every unit writes its label file, then its marker. Returns one result per unit."""
    started = time.perf_counter()
    out = Path(ctx.out)
    manifest = _manifest(ctx.manifest_json)
    results: list[UnitResult] = []
    cells: list[_Cell] = []
    try:
        for unit in group.units:
            marker = lockmod.read_marker(out, unit.key)
            if marker is not None:
                results.append(UnitResult(unit.key, len(marker["files"]), marker["images"], marker["frames"], 0.0, skipped=True))
            else:
                cells.append(_Cell(out, manifest, unit))
        if not cells:
            return results
        first = cells[0].unit
        with_images = manifest.output.format != "keypoints"
        with UnitFrames(open_source(ctx.source), first.seq, first.cameras, manifest.crop, with_images) as frames:
            for cell in cells:
                _remove_stale_temporaries(out, cell.unit)
            with_next = any(cell.shifts_time for cell in cells)  # the next frame cut with each frame's box too
            chunk = ctx.chunk_frames or chunk_length(frames.frame_bytes() * (2 if with_next else 1))
            pad = max(cell.pad for cell in cells)
            for piece in frames.chunks(first.frames, chunk, pad, with_next):
                clean: dict = {}  # this chunk's clean images once encoded
                for cell in cells:
                    cell.add(piece.narrow(cell.pad), ctx, manifest, with_images, clean)
        memo = lockmod.ColumnMemo()  # the units' label tables share most columns
        for cell in cells:
            results.append(cell.finish(out, with_images, memo))
    finally:
        for cell in cells:
            cell.labels.close()
    elapsed = time.perf_counter() - started
    ran = [r for r in results if not r.skipped]
    return [r if r.skipped else replace(r, seconds=elapsed / len(ran)) for r in results]


class _Cell:
    """One unit being generated inside its group: its corruption, overlap, image folders, the
    digests of the files written so far and its spooled label rows."""

    def __init__(self, out: Path, manifest: Manifest, unit: WorkUnit):
        self.unit = unit
        self.corruption = corruption_for(manifest, unit.variant, unit.corruption)
        self.pad = overlap_frames(self.corruption, unit.severity, manifest.frame_step)
        self.shifts_time = self.pad > 0 and self.corruption.params(unit.severity).reach_frames() > 0
        self.keypoint_output = unit.corruption != CLEAN and self.corruption.modality == "keypoint"
        self.files: dict[str, str] = {}  # path relative to out -> content digest
        seq, cell = unit.seq, (unit.variant, unit.corruption, unit.severity)
        folders = [image_folder(out, *cell, seq.subject, seq.sequence, camera) for camera in unit.cameras]
        self.folders = [(folder, folder.relative_to(out).as_posix() + "/") for folder in folders]  # (path, relative)
        self.labels = LabelSpool(out / STATE_DIR)

    def add(self, piece: ClipChunk, ctx: RunContext, manifest: Manifest, with_images: bool, clean: dict) -> None:
        """Corrupt one chunk, write its images and spool its label rows. `clean`: (view, frame) ->
        (bytes, digest) of this chunk's clean images once encoded, shared by the group's units."""
        corrupted, record = corrupt_clip(
            piece.clip, self.unit.corruption, self.unit.severity, ctx.seed, occluder_bank=_occluder_bank(ctx.voc),
            corruption=self.corruption,
        )  # fmt: skip
        images = self._write_images(Path(ctx.out), piece, corrupted, manifest, clean) if with_images else {}
        self.labels.append(chunk_table(self.unit, piece, record, images, self.keypoint_output))

    def _write_images(
        self, out: Path, piece: ClipChunk, corrupted: Clip, manifest: Manifest, clean: dict
    ) -> dict[tuple[int, int], str]:
        """Encode and write the kept frames of every view; record their pixel digests. An image equal
        to the clean frame (the clean cell; a frame a corruption left alone, as temporal occlusion
        outside its spans) is encoded once per group: equal pixels encode to equal bytes, whose
        digest is known. Returns (view, clip time) -> image path relative to `out`."""
        paths: dict[tuple[int, int], str] = {}
        fmt, quality = manifest.output.format, manifest.output.quality
        for t in piece.keep:
            frame = int(corrupted.frame_indices[t])
            name = image_name(frame, manifest.output.extension)
            for v, (folder, relative) in enumerate(self.folders):
                width, height = piece.image_sizes[v]
                pixels = corrupted.images[v, t, :height, :width]
                unchanged = corrupted.images is piece.clip.images or _same(pixels, piece.clip.images[v, t, :height, :width])
                encoded = clean.get((v, frame)) if unchanged else None
                if encoded is None:
                    data = encode_image(pixels, fmt, quality)
                    encoded = (data, lockmod.image_digest(data, pixels, fmt))
                    if unchanged:
                        clean[(v, frame)] = encoded
                atomic_write_bytes(folder / name, encoded[0])
                self.files[relative + name] = encoded[1]
                paths[(v, t)] = relative + name
        return paths

    def finish(self, out: Path, with_images: bool, memo: lockmod.ColumnMemo | None = None) -> UnitResult:
        """Write the label file, then the marker with the digests of every file of the unit."""
        unit = self.unit
        table = self.labels.table()
        labels_file = label_path(out, unit.variant, unit.corruption, unit.severity, unit.seq.subject, unit.seq.sequence)
        write_labels(labels_file, table)
        self.files[labels_file.relative_to(out).as_posix()] = lockmod.table_digest(table, memo)
        n_images = unit.n_images if with_images else 0
        lockmod.write_marker(out, unit.key, self.files, {"frames": len(unit.frames), "images": n_images})
        return UnitResult(unit.key, len(self.files), n_images, len(unit.frames), 0.0)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal images; a changed image is usually told by its middle row alone."""
    middle = a.shape[0] // 2
    return np.array_equal(a[middle], b[middle]) and np.array_equal(a, b)


def _remove_stale_temporaries(out: Path, unit: WorkUnit) -> None:
    """Temporary files a killed run of this unit left behind (the unit is about to be redone)."""
    seq = unit.seq
    cell_args = (unit.variant, unit.corruption, unit.severity)
    marker = lockmod.marker_path(out, unit.key)
    labels = label_path(out, *cell_args, seq.subject, seq.sequence)
    for folder, prefix in ((labels.parent, f".{labels.name}."), (marker.parent, f".{marker.name}.")):
        for path in folder.glob(prefix + "*"):
            if is_temporary(path.name):
                path.unlink(missing_ok=True)
    for camera in unit.cameras:
        remove_temporaries(image_folder(out, *cell_args, seq.subject, seq.sequence, camera))


# ---------------------------------------------------------------------------------------------
# the whole run


def corruption_versions(manifest: Manifest) -> dict[str, int]:
    names = {c.name for v in manifest.variants for c in v.corruptions}
    return {name: int(get_corruption(name).version) for name in sorted(names)}


# ---------------------------------------------------------------------------------------------
# workers without the driver's file system (Ray --no-shared-fs): a group runs into a temporary
# folder on its node and returns its units' files' bytes; the driver writes them, each unit's marker last

STAGED_GROUP_BYTES = 2**30  # estimated image bytes of one staged group (its payload crosses the network at once)
MIN_ROWS_PER_WORKER = 1000  # label rows (images) of work below which another worker does not repay its start


def staged_group(ctx: RunContext, group: UnitGroup) -> list[tuple[UnitResult, dict[str, bytes], bytes]]:
    """Run a group into a temporary folder of this node; return per unit its result, its files'
    bytes (relative path -> bytes) and its marker's bytes."""
    import tempfile

    staged = []
    with tempfile.TemporaryDirectory(prefix="corrupt-bench-unit-") as tmp:
        root = Path(tmp)
        for result in run_group(replace(ctx, out=tmp), group):
            marker = lockmod.marker_path(root, result.key).read_bytes()
            files = {rel: (root / rel).read_bytes() for rel in json.loads(marker)["files"]}
            staged.append((result, files, marker))
    return staged


def land_group(out: Path, staged: list[tuple[UnitResult, dict[str, bytes], bytes]]) -> list[UnitResult]:
    """Driver side of `staged_group`: write each unit's files under `out` atomically, its marker last."""
    for result, files, marker in staged:
        for rel, data in sorted(files.items()):
            atomic_write_bytes(confined(out, *Path(rel).parts), data)
        atomic_write_bytes(lockmod.marker_path(out, result.key), marker)
    return [result for result, _, _ in staged]


def group_staging(ctx: RunContext) -> Staging:
    """How a group's files reach the output root from a worker that does not share it."""
    return Staging(remote=partial(staged_group, ctx), land=partial(land_group, Path(ctx.out)))


def _log(log, path: Path, record: dict) -> None:
    """One line of the run log, flushed (a write the disk refuses names the log file)."""
    try:
        log.write(json.dumps(record) + "\n")
        log.flush()
    except OSError as exc:
        name_the_file(exc, path)
        raise


def parallel_slots(todo: list[WorkUnit], slots: int) -> int:
    """Workers the units repay: `slots`, but at most one per MIN_ROWS_PER_WORKER label rows (smaller
    work does not repay a worker's start)."""
    return max(1, min(slots, sum(u.n_images for u in todo) // MIN_ROWS_PER_WORKER))


def unit_groups(
    manifest: Manifest, todo: list[WorkUnit], slots: int, staged: bool, full_frame: int = FULL_FRAME_PIXELS
) -> tuple[UnitGroup, ...]:
    """The groups `generate` runs: units sharing frames together (every frame decoded once), split
    only so that each of `slots` parallel workers gets a group, and, when outputs travel back to the
    driver (`staged`), so that a group's images stay under STAGED_GROUP_BYTES (`full_frame`: a
    full frame's pixels, `frame_pixels(source, plan)`)."""
    max_images = None
    if staged and manifest.output.format != "keypoints":
        side = manifest.crop.output_size
        pixels = side * side if side is not None else full_frame
        max_images = int(STAGED_GROUP_BYTES // (pixels * BYTES_PER_PIXEL[manifest.output.format] + BYTES_PER_IMAGE_HEADER))
    return group_units(todo, slots, max_images)


def uses_occluder_bank(manifest: Manifest) -> bool:
    """Whether a cell of the manifest pastes objects of an occluder bank (VOC on a real source)."""
    return any(
        corruption_for(manifest, v.name, c.name).params(s).uses_occluder_bank()
        for v in manifest.variants
        for c in v.corruptions
        for s in c.severities
    )


def prepare(
    manifest_ref: str | Path,
    source: Path | None = None,
    voc: Path | None = None,
    cache: Path | None = None,
) -> tuple[Manifest, SourceConfig, Plan, str | None]:
    """Load the manifest, resolve the source, and plan the units (nothing is written)."""
    manifest, path = load_manifest(manifest_ref)
    config = resolve_source(manifest, source, cache)
    source_reader = open_source(config)
    if manifest.output.format != "keypoints" and not source_reader.has_images:
        raise UserError(f"source kind {config.kind!r} has no images; use output.format: keypoints", path)
    voc_dir = voc if voc is not None else (Path(manifest.voc) if manifest.voc else None)
    uses_voc = uses_occluder_bank(manifest)
    if uses_voc and voc_dir is None and config.kind != "synthetic":
        raise UserError("VOC occluders (voc_occluder, kind: voc) need Pascal VOC objects: give --voc DIR (VOCdevkit/VOC2012) or voc:", path)
    if voc_dir is not None and not voc_dir.is_dir():
        raise UserError("VOC folder not found", voc_dir)
    sequences = source_reader.sequences()
    check_against_source(manifest, sequences, config.path, path)
    units = plan(manifest, sequences)
    if not units.units:
        raise UserError("the manifest selects no sequence of this source", path)
    check_source_frames(manifest, source_reader, units, path)
    check_values = getattr(source_reader, "check_values", None)  # sources read whole at opening have none
    if check_values is not None:
        for seq, cameras in sorted({(u.seq, u.cameras) for u in units.units}, key=lambda sc: (sc[0].subject, sc[0].sequence)):
            check_values(seq, cameras)
    return manifest, config, units, None if voc_dir is None else str(voc_dir.resolve())


def check_source_frames(manifest: Manifest, source, units: Plan, path: Path | None = None) -> None:
    """What a source must hold for the planned units: every planned frame (mmpose's fps10 annotation
    holds every 5th frame only: frame_step must be a multiple of 5), and, for a sequence without 3D
    ground truth (a rig without it), nothing that needs the person: no person crop, no keypoint
    corruption, no keypoint output. Such a sequence gets images and label rows without joints."""
    held_of = getattr(source, "frames", None)
    truth_of = getattr(source, "has_ground_truth", None)
    for seq in sorted({u.seq for u in units.units}, key=lambda s: (s.subject, s.sequence)):
        planned = sorted({f for u in units.units if u.seq == seq for f in u.frames})
        if held_of is not None:
            held = held_of(seq)
            missing = sorted(set(planned) - set(held))
            if missing:
                step = int(np.gcd.reduce(np.diff(held))) if len(held) > 1 else 0
                every = f"every {step}th frame" if step > 1 else f"{len(held)} of its {seq.n_frames} frames"
                raise UserError(
                    f"{seq.subject} {seq.sequence}: the source holds {every} only (not frame {missing[0]}); "
                    f"choose a frame_step that is a multiple of {max(step, 1)}", path,
                )  # fmt: skip
        if truth_of is None or truth_of(seq):
            continue
        where = f"{seq.subject} {seq.sequence} has no 3D ground truth (no joints, no person box)"
        if manifest.output.format == "keypoints":
            raise UserError(f"{where}: keypoint output needs joints; use output.format jpeg or png", path)
        if manifest.crop.mode == "person":
            raise UserError(f"{where}: no person to crop around; use crop: {{mode: full}}", path)
        for vi, variant in enumerate(manifest.variants):
            for ci, spec in enumerate(variant.corruptions):
                if get_corruption(spec.name).modality == "keypoint":
                    raise UserError(f"key 'variants[{vi}].corruptions[{ci}].name': {spec.name!r} corrupts 2D keypoints; {where}", path)


def sequence_table(manifest: Manifest, source, units: Plan) -> dict:
    """sequences.json: per planned sequence the source's frame rate and frame count, the manifest's
    frame step (a variant's rate is fps / frame_step), each camera's image size and whether the
    sequence has 3D labels."""
    truth_of = getattr(source, "has_ground_truth", None)
    cameras: dict[SequenceInfo, list[str]] = {}
    for unit in units.units:
        cameras.setdefault(unit.seq, [])
        cameras[unit.seq] += [c for c in unit.cameras if c not in cameras[unit.seq]]
    rows = []
    for seq, ids in sorted(cameras.items(), key=lambda item: (item[0].subject, item[0].sequence)):
        sizes = {}
        for camera_id in ids:
            camera = source.camera(seq.subject, camera_id)
            sizes[camera_id] = {"width": int(camera.width), "height": int(camera.height)}
        rows.append({
            "subject": seq.subject, "sequence": seq.sequence, "action": seq.action, "subaction": seq.subaction,
            "fps": float(seq.fps), "n_frames": seq.n_frames, "frame_step": manifest.frame_step, "cameras": sizes,
            "labels_3d": truth_of is None or bool(truth_of(seq)),
        })  # fmt: skip
    return {"format": 1, "sequences": rows}


def source_cameras(source, units: Plan) -> dict:
    """The calibration of every (subject, camera) the units read, as the source gives it."""
    pairs = sorted({(u.seq.subject, c) for u in units.units for c in u.cameras})
    return {pair: source.camera(*pair) for pair in pairs}


def frame_pixels(source, units: Plan) -> int:
    """Pixels of the largest source frame the units read: the size of a full-frame output image."""
    return max((c.width * c.height for c in source_cameras(source, units).values()), default=FULL_FRAME_PIXELS)


def estimate_bytes(manifest: Manifest, units: Plan, full_frame: int = FULL_FRAME_PIXELS) -> int:
    rows = units.n_rows
    size = 0
    if manifest.output.format != "keypoints":
        side = manifest.crop.output_size
        pixels = side * side if side is not None else full_frame
        size += int(rows * (pixels * BYTES_PER_PIXEL[manifest.output.format] + BYTES_PER_IMAGE_HEADER))
    return size + rows * BYTES_PER_LABEL_ROW


def _is_state(path: Path) -> bool:
    """Files and folders of an output folder that are not the benchmark: run state, the folder lock and
    the temporaries of an interrupted write."""
    return path.name in (STATE_DIR, OUTPUT_LOCK_NAME) or is_temporary(path.name)


def _check_out(out: Path, manifest: Manifest) -> None:
    """Refuse an output folder that holds another manifest's benchmark (or anything that is not a
    benchmark). A folder whose only content is the state or the temporaries of a run killed before its
    first manifest.yaml was in place (or a manifest.yaml that cannot be read while no unit is done) is
    the start of this run: it is resumed."""
    if out.exists() and not out.is_dir():
        raise UserError("output path exists and is not a folder", out)
    stored = out / MANIFEST_NAME
    if stored.is_file():
        from corrupt_bench.generate.manifest import parse_manifest
        from corrupt_bench.safe_yaml import load_yaml

        try:
            digest = parse_manifest(load_yaml(stored, "stored manifest"), stored, False).digest()
        except UserError:
            digest = None
        if digest is None and not (out / LOCK_NAME).exists() and not any((out / DONE_DIR).rglob("*.json")):
            return  # a first manifest.yaml cut short (no unit finished yet): rewritten by this run
        if digest != manifest.digest():
            raise UserError(
                "this folder holds a benchmark of another manifest (or another version of it); use a new --out",
                out,
            )
    elif out.is_dir() and any(not _is_state(p) for p in out.iterdir()):
        raise UserError("output folder is not empty and holds no manifest.yaml of a benchmark", out)


def _check_paths(out: Path, units: Plan) -> None:
    """Every folder this run writes resolves inside `out` (a symbolic link below it that leads outside is
    refused before anything is written; each write checks again)."""
    if not out.is_dir():
        return
    for name in (MANIFEST_NAME, CAMERA_FILE_NAME, SEQUENCES_NAME, LOCK_NAME, RUN_LOG_NAME):
        confined(out, *(STATE_DIR, name) if name == RUN_LOG_NAME else (name,))
    confined(out, DONE_DIR)
    for unit in units.units:
        lockmod.marker_path(out, unit.key)
        seq = unit.seq
        label_path(out, unit.variant, unit.corruption, unit.severity, seq.subject, seq.sequence)
        for camera in unit.cameras:
            image_folder(out, unit.variant, unit.corruption, unit.severity, seq.subject, seq.sequence, camera)


def generate(
    manifest_ref: str | Path,
    out: Path,
    source: Path | None = None,
    workers: int = 1,
    voc: Path | None = None,
    executor=None,
    show_progress: bool = True,
    cache: Path | None = None,
) -> GenerateSummary:
    """Generate (or finish) the benchmark of a manifest into `out` and write lock.json.

    Every check that needs no output runs first (manifest, source, plan, the folder's content), so a
    fault leaves no folder behind; then `out` is created and held (`corrupt_bench.outdir`: a second
    run into it exits naming this one) while the benchmark is written."""
    started = time.perf_counter()
    manifest, config, units, voc_dir = prepare(manifest_ref, source, voc, cache)
    if voc_dir is not None and uses_occluder_bank(manifest):
        _occluder_bank(voc_dir)  # cut (and cached) before any output: a damaged VOC file stops the run here
    out = Path(out)
    _check_out(out, manifest)
    _check_paths(out, units)
    with output_lock(out, "generate"):
        _check_out(out, manifest)  # again, now that no other run can change it
        try:
            return _generate_into(out, manifest, config, units, voc_dir, workers, executor, show_progress, started)
        except UserError as exc:
            if exc.path is not None:
                raise
            raise UserError(exc.fault, out) from None  # a fault of the run (a worker died): name the folder to rerun


def _generate_into(
    out: Path, manifest: Manifest, config: SourceConfig, units: Plan, voc_dir: str | None, workers: int, executor,
    show_progress: bool, started: float,
) -> GenerateSummary:
    """The body of `generate`, run while this process holds `out`."""
    import yaml

    from corrupt_bench.executors.local import LocalExecutor
    from corrupt_bench.progress import progress

    remove_temporaries(out)  # of root files (manifest, cameras, lock) a killed run was writing
    atomic_write_bytes(
        confined(out, MANIFEST_NAME),
        yaml.safe_dump(canonical_dict(manifest), sort_keys=False, allow_unicode=True).encode(),
    )
    # The calibration the labels were computed with travels with the benchmark (a synthetic source rendered
    # at 1/divisor size has its own cameras.json); scorers read it instead of guessing.
    from corrupt_bench.data.cameras import camera_file_for, write_camera_file

    source = open_source(config)
    if config.kind in OWN_CALIBRATION_KINDS:  # the source's own calibration, as it read it
        write_camera_file(source_cameras(source, units), confined(out, CAMERA_FILE_NAME), f"corrupt-bench: the calibration of a {config.kind} source")
    else:
        source_dir = Path(config.path) if config.kind != "vp3d_npz" else None
        atomic_write_bytes(confined(out, CAMERA_FILE_NAME), camera_file_for(source_dir).read_bytes())
    atomic_write_bytes(confined(out, SEQUENCES_NAME), json.dumps(sequence_table(manifest, source, units), indent=1).encode())
    ctx = RunContext(str(out.resolve()), manifest.model_dump_json(), config, voc_dir, manifest.seed)
    todo = [u for u in units.units if lockmod.read_marker(out, u.key) is None]
    executor = executor if executor is not None else LocalExecutor(workers)
    staged = getattr(executor, "shared_fs", True) is False
    slots = parallel_slots(todo, executor.slots() if todo else 1)
    groups = unit_groups(manifest, todo, slots, staged, frame_pixels(source, units))
    batches = executor.map(partial(run_group, ctx), groups, staging=group_staging(ctx), max_parallel=slots)
    results = (result for batch in batches for result in batch)
    if show_progress:
        results = progress(results, total=len(todo), description=f"generate {manifest.name}")
    log_path = confined(out, STATE_DIR, RUN_LOG_NAME)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    frames = images = 0
    log = log_path.open("a", encoding="utf-8")
    finished = False
    try:
        _log(log, log_path, {"event": "start", "time": time.time(), "units": len(units.units), "todo": len(todo)})
        for result in results:
            frames += result.frames
            images += result.images
            _log(log, log_path, {"event": "unit", "key": result.key, "seconds": round(result.seconds, 3),
                                 "frames": result.frames, "images": result.images})  # fmt: skip
        _log(log, log_path, {"event": "end", "time": time.time(), "seconds": round(time.perf_counter() - started, 3)})
        finished = True
    finally:
        try:
            log.close()
        except OSError as exc:  # a full disk: after a failure, that failure is the one to report
            if finished:
                name_the_file(exc, log_path)
                raise
    info = {"name": manifest.name, "version": manifest.version, "digest": manifest.digest(), "seed": manifest.seed}
    lock = lockmod.build_lock(info, corruption_versions(manifest), [u.key for u in units.units], out)
    lockmod.write_lock(out, lock)
    return GenerateSummary(
        out=out,
        units=len(units.units),
        done_before=len(units.units) - len(todo),
        ran=len(todo),
        frames=frames,
        images=images,
        seconds=time.perf_counter() - started,
        skipped_sequences=list(units.skipped),
        lock_digest=lock["content_digest"],
    )
