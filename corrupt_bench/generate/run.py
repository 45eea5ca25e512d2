"""`generate`: a manifest + a source -> a benchmark folder with labels, images and lock.json.

Each work unit (variant, corruption, severity, sequence; all cameras) is a pure function of the
manifest, the source and its key: `run_unit` takes the unit's clean clips chunk by chunk
(`generate.clips`: frames at the manifest's step, cropped; engine keys depend on absolute frame
indices only, so chunking never changes a pixel), corrupts them, encodes and writes every image
atomically, turns the corruption records into label rows (`generate.labels`), writes the label
file, then its done-marker with the content digests. `generate` skips units whose marker and files
exist, runs the rest on an executor, and assembles lock.json from the markers sorted by key.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from functools import lru_cache, partial
from pathlib import Path

from corrupt_bench.engine import Clip, Corruption, corrupt_clip, get_corruption
from corrupt_bench.errors import UserError
from corrupt_bench.executors.base import Staging
from corrupt_bench.generate import lock as lockmod
from corrupt_bench.generate.clips import ClipChunk, UnitFrames, chunk_length, overlap_frames
from corrupt_bench.generate.labels import append_rows, empty_columns
from corrupt_bench.generate.manifest import Manifest, canonical_dict, check_against_source, load_manifest
from corrupt_bench.generate.planner import Plan, WorkUnit, plan
from corrupt_bench.generate.sources import SourceConfig, open_source, resolve_source
from corrupt_bench.generate.writers import decode_image, labels_table, write_image, write_labels
from corrupt_bench.io import atomic_write_bytes, confined, is_temporary, remove_temporaries
from corrupt_bench.layout import (
    CAMERA_FILE_NAME,
    CLEAN,
    DONE_DIR,
    LOCK_NAME,
    MANIFEST_NAME,
    OUTPUT_LOCK_NAME,
    RUN_LOG_NAME,
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
# one unit


def run_unit(ctx: RunContext, unit: WorkUnit) -> UnitResult:
    """Generate one unit: read, crop, corrupt, encode and write its images and label file, then its marker."""
    started = time.perf_counter()
    out = Path(ctx.out)
    manifest = _manifest(ctx.manifest_json)
    marker = lockmod.read_marker(out, unit.key)
    if marker is not None:
        return UnitResult(unit.key, len(marker["files"]), marker["images"], marker["frames"], 0.0, skipped=True)
    corruption = corruption_for(manifest, unit.variant, unit.corruption)
    keypoint_output = unit.corruption != CLEAN and corruption.modality == "keypoint"
    with_images = manifest.output.format != "keypoints"
    files: dict[str, str] = {}  # path relative to out -> content digest
    columns = empty_columns()
    source = open_source(ctx.source)
    with UnitFrames(source, unit.seq, unit.cameras, manifest.crop, with_images) as frames:
        _remove_stale_temporaries(out, unit)
        chunk = ctx.chunk_frames or chunk_length(frames.frame_bytes())
        pad = overlap_frames(corruption, unit.severity, manifest.frame_step)
        for piece in frames.chunks(unit.frames, chunk, pad):
            corrupted, record = corrupt_clip(
                piece.clip, unit.corruption, unit.severity, ctx.seed, occluder_bank=_occluder_bank(ctx.voc),
                corruption=corruption,
            )  # fmt: skip
            images = _write_images(out, unit, piece, corrupted, manifest, files) if with_images else {}
            append_rows(columns, unit, piece, record, images, keypoint_output)
    table = labels_table(columns)
    labels_file = label_path(out, unit.variant, unit.corruption, unit.severity, unit.seq.subject, unit.seq.sequence)
    write_labels(labels_file, table)
    files[labels_file.relative_to(out).as_posix()] = lockmod.table_digest(table)
    n_images = unit.n_images if with_images else 0
    lockmod.write_marker(out, unit.key, files, {"frames": len(unit.frames), "images": n_images})
    return UnitResult(unit.key, len(files), n_images, len(unit.frames), time.perf_counter() - started)


def _write_images(
    out: Path, unit: WorkUnit, piece: ClipChunk, corrupted: Clip, manifest: Manifest, files: dict[str, str]
) -> dict[tuple[int, int], str]:
    """Encode and write the kept frames of every view; record their pixel digests in `files`.
    Returns (view, clip time) -> image path relative to `out`."""
    seq = unit.seq
    paths: dict[tuple[int, int], str] = {}
    for t in piece.keep:
        frame = int(corrupted.frame_indices[t])
        for v, cam in enumerate(corrupted.cameras):
            folder = image_folder(out, unit.variant, unit.corruption, unit.severity, seq.subject, seq.sequence, cam.camera_id)
            path = folder / image_name(frame, manifest.output.extension)
            width, height = piece.image_sizes[v]
            data = write_image(path, corrupted.images[v, t, :height, :width], manifest.output.format, manifest.output.quality)
            rel = path.relative_to(out).as_posix()
            files[rel] = lockmod.pixels_digest(decode_image(data))
            paths[(v, t)] = rel
    return paths


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
# workers without the driver's file system (Ray --no-shared-fs): a unit runs into a temporary
# folder on its node and returns its files' bytes; the driver writes them, marker last


def staged_unit(ctx: RunContext, unit: WorkUnit) -> tuple[UnitResult, dict[str, bytes], bytes]:
    """Run one unit into a temporary folder of this node; return its result, its files' bytes
    (relative path -> bytes) and its marker's bytes."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="corrupt-bench-unit-") as tmp:
        result = run_unit(replace(ctx, out=tmp), unit)
        root = Path(tmp)
        marker = lockmod.marker_path(root, unit.key).read_bytes()
        files = {rel: (root / rel).read_bytes() for rel in json.loads(marker)["files"]}
    return result, files, marker


def land_unit(out: Path, staged: tuple[UnitResult, dict[str, bytes], bytes]) -> UnitResult:
    """Driver side of `staged_unit`: write the unit's files under `out` atomically, marker last."""
    result, files, marker = staged
    for rel, data in sorted(files.items()):
        atomic_write_bytes(confined(out, *Path(rel).parts), data)
    atomic_write_bytes(lockmod.marker_path(out, result.key), marker)
    return result


def unit_staging(ctx: RunContext) -> Staging:
    """How a unit's files reach the output root from a worker that does not share it."""
    return Staging(remote=partial(staged_unit, ctx), land=partial(land_unit, Path(ctx.out)))


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
    check_values = getattr(source_reader, "check_values", None)  # sources read whole at opening have none
    if check_values is not None:
        for seq, cameras in sorted({(u.seq, u.cameras) for u in units.units}, key=lambda sc: (sc[0].subject, sc[0].sequence)):
            check_values(seq, cameras)
    return manifest, config, units, None if voc_dir is None else str(voc_dir.resolve())


def estimate_bytes(manifest: Manifest, units: Plan) -> int:
    rows = units.n_rows
    size = 0
    if manifest.output.format != "keypoints":
        side = manifest.crop.output_size
        pixels = side * side if side is not None else 1000 * 1000
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
    for name in (MANIFEST_NAME, CAMERA_FILE_NAME, LOCK_NAME, RUN_LOG_NAME):
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
    from corrupt_bench.data.cameras import camera_file_for

    source_dir = Path(config.path) if config.kind != "vp3d_npz" else None
    atomic_write_bytes(confined(out, CAMERA_FILE_NAME), camera_file_for(source_dir).read_bytes())
    ctx = RunContext(str(out.resolve()), manifest.model_dump_json(), config, voc_dir, manifest.seed)
    todo = [u for u in units.units if lockmod.read_marker(out, u.key) is None]
    executor = executor if executor is not None else LocalExecutor(workers)
    results = executor.map(partial(run_unit, ctx), todo, staging=unit_staging(ctx))
    if show_progress:
        results = progress(results, total=len(todo), description=f"generate {manifest.name}")
    log_path = confined(out, STATE_DIR, RUN_LOG_NAME)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    frames = images = 0
    with log_path.open("a", encoding="utf-8") as log:
        log.write(json.dumps({"event": "start", "time": time.time(), "units": len(units.units), "todo": len(todo)}) + "\n")
        for result in results:
            frames += result.frames
            images += result.images
            log.write(json.dumps({"event": "unit", "key": result.key, "seconds": round(result.seconds, 3),
                                  "frames": result.frames, "images": result.images}) + "\n")  # fmt: skip
            log.flush()
        elapsed = time.perf_counter() - started
        log.write(json.dumps({"event": "end", "time": time.time(), "seconds": round(elapsed, 3)}) + "\n")
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
