"""`generate`: a manifest + a source -> a benchmark folder with labels, images and lock.json.

Each work unit (variant, corruption, severity, sequence; all cameras) is a pure function of the
manifest, the source and its key: `run_unit` reads frames at the manifest's frame step, crops,
corrupts (engine keys depend on absolute frame indices only, so the unit is processed in chunks of
frames without changing a pixel), encodes, writes every file atomically, then writes its
done-marker with the content digests. `generate` skips units whose marker and files exist, runs the
rest on an executor, and assembles lock.json from the markers sorted by key.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from functools import lru_cache, partial
from pathlib import Path

import numpy as np

from corrupt_bench.errors import UserError
from corrupt_bench.executors.base import Staging
from corrupt_bench.generate import lock as lockmod
from corrupt_bench.generate.manifest import Manifest, canonical_dict, load_manifest
from corrupt_bench.generate.planner import Plan, WorkUnit, plan
from corrupt_bench.generate.sources import SourceConfig, open_source, resolve_source
from corrupt_bench.generate.writers import decode_image, labels_table, write_image, write_labels
from corrupt_bench.io import atomic_write_bytes, confined, is_temporary, remove_temporaries
from corrupt_bench.layout import (
    CAMERA_FILE_NAME,
    CLEAN,
    H36M_FPS,
    LABEL_COLUMNS,
    MANIFEST_NAME,
    RUN_LOG_NAME,
    STATE_DIR,
    image_folder,
    image_name,
    label_path,
)

CHUNK_BYTES = 192 * 2**20  # pixels of one chunk of a unit held in memory (all views)
MAX_CHUNK_FRAMES = 64
# desync offsets reach max_offset + 1 whole frame (2 frames in the engine's table): interpolation
# needs the two clip frames around the shifted time, so 3 frames of overlap cover any table <= 2
CLIP_LEVEL_OVERLAP = 3
VOC_CORRUPTIONS = {"voc_occluder"}  # need Pascal VOC objects (--voc) on a real source (as does kind: voc)
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


def _corruption_for(manifest: Manifest, variant: str, name: str):
    """The engine corruption with this manifest's overrides applied to its table."""
    from corrupt_bench.engine import get_corruption

    corruption = get_corruption(name)
    if name == CLEAN:
        return corruption
    spec = next(c for v in manifest.variants if v.name == variant for c in v.corruptions if c.name == name)
    if not spec.overrides:
        return corruption
    table = {s: dict(row) for s, row in corruption.table.items()}
    for severity, params in spec.overrides.items():
        table[severity].update(params)
    return replace(corruption, table=table)


# ---------------------------------------------------------------------------------------------
# one unit


def _flat(array: np.ndarray) -> list[list[float]]:
    """(..., k) -> rows of flat float32 lists."""
    a = np.asarray(array, dtype=np.float32)
    return a.reshape(a.shape[0], -1).tolist()


def run_unit(ctx: RunContext, unit: WorkUnit) -> UnitResult:
    """Generate one unit: read, crop, corrupt, encode and write its images and label file, then its marker."""
    from corrupt_bench.data.cameras import world_to_camera
    from corrupt_bench.data.crop import crop_affine, crop_image, person_box, square_box
    from corrupt_bench.engine.clip import Clip, corrupt_clip

    started = time.perf_counter()
    out = Path(ctx.out)
    manifest = _manifest(ctx.manifest_json)
    marker = lockmod.read_marker(out, unit.key)
    if marker is not None:
        return UnitResult(unit.key, len(marker["files"]), marker["images"], marker["frames"], 0.0, skipped=True)

    source = open_source(ctx.source)
    seq = unit.seq
    cell_args = (unit.variant, unit.corruption, unit.severity)
    cams = [source.camera(seq.subject, c) for c in unit.cameras]
    world_all = np.asarray(source.poses_world(seq), dtype=np.float64)
    j2d_all = [np.asarray(source.poses_2d(seq, c), dtype=np.float64) for c in unit.cameras]
    fmt = manifest.output.format
    with_images = fmt != "keypoints"
    size = manifest.crop.output_size
    corruption = _corruption_for(manifest, unit.variant, unit.corruption)
    keypoint_output = unit.corruption != CLEAN and corruption.modality == "keypoint"
    bank = _occluder_bank(ctx.voc)

    readers = [source.video(seq, c) for c in unit.cameras] if with_images else []
    try:
        if size is not None:
            per_frame = len(cams) * size * size * 3
        elif readers:
            per_frame = sum(r.width * r.height * 3 for r in readers)
        else:
            per_frame = 1
        chunk = ctx.chunk_frames or int(max(1, min(MAX_CHUNK_FRAMES, CHUNK_BYTES // max(per_frame, 1))))
        _remove_stale_temporaries(out, unit)
        files: dict[str, str] = {}
        columns: dict[str, list] = {name: [] for name in LABEL_COLUMNS}
        # rows are gathered per chunk then ordered frame-major (frame, camera in manifest order)
        # clip-level corruptions (subframe_desync) look at neighbouring frames: each chunk is read
        # with CLIP_LEVEL_OVERLAP frames of overlap on both sides and only its own frames are kept
        pad = _overlap(corruption, unit.severity, manifest.frame_step)
        overlap_cache: list[dict[int, np.ndarray]] = [{} for _ in readers]
        for start in range(0, len(unit.frames), chunk):
            lo, hi = max(0, start - pad), min(len(unit.frames), start + chunk + pad)
            frames = unit.frames[lo:hi]
            keep = range(start - lo, start - lo + min(chunk, len(unit.frames) - start))
            idx = np.asarray(frames, dtype=np.int64)
            v_n, t_n = len(cams), len(frames)
            j2d_full = np.stack([j[idx] for j in j2d_all])  # (V, T, 17, 2)
            boxes_full = person_box(j2d_full, manifest.crop.margin)  # (V, T, 4)
            if manifest.crop.mode == "person":
                crops = square_box(boxes_full)
                affine = np.stack([[crop_affine(crops[v, t], size) for t in range(t_n)] for v in range(v_n)])
            else:
                shapes = [(r.width, r.height) for r in readers] or [(c.width, c.height) for c in cams]
                crops = np.stack([np.tile([0.0, 0.0, w, h], (t_n, 1)) for w, h in shapes])
                affine = None
            images = None
            if with_images:
                views = []
                for v, reader in enumerate(readers):
                    frames_v = []
                    for t, f in enumerate(frames):
                        image = overlap_cache[v].get(f)
                        if image is None:
                            image = reader.frame(int(f))
                            if size is not None:
                                image = crop_image(image, crops[v, t], size)
                        frames_v.append(image)
                    # the overlap of the next chunk is taken from here, not decoded again (no seek back)
                    overlap_cache[v] = dict(zip(frames[-2 * pad :], frames_v[-2 * pad :], strict=True)) if pad else {}
                    views.append(np.stack(frames_v))
                native = [(view.shape[2], view.shape[1]) for view in views]  # (W, H) per view
                images = _stack_padded(views)
            if affine is not None:
                j2d_img = np.einsum("vtij,vtkj->vtki", affine[..., :2], j2d_full) + affine[:, :, None, :, 2]
                corners = boxes_full.reshape(v_n, t_n, 2, 2)
                boxes_img = (np.einsum("vtij,vtkj->vtki", affine[..., :2], corners) + affine[:, :, None, :, 2])
                boxes_img = boxes_img.reshape(v_n, t_n, 4)
            else:
                j2d_img, boxes_img = j2d_full, boxes_full
            clip = Clip(
                subject=seq.subject,
                sequence=seq.sequence,
                fps=H36M_FPS,
                frame_indices=idx,
                cameras=tuple(cams),
                images=images,
                joints_2d=j2d_img,
                joints_3d_world=world_all[idx],
                boxes=boxes_img,
                mocap_world=world_all,
                crop_affine=affine,
                n_frames=seq.n_frames,
            )
            out_clip, record = corrupt_clip(
                clip, unit.corruption, unit.severity, ctx.seed, occluder_bank=bank, **_override_kw(corruption)
            )
            labels_img = record.joints_2d
            if keypoint_output:
                labels_img = np.asarray(clip.joints_2d, dtype=np.float64)
            labels_full = _to_full(labels_img, affine)
            keypoints_full = _to_full(record.joints_2d, affine) if keypoint_output else None
            for t in keep:
                frame = frames[t]
                for v, cam in enumerate(cams):
                    image_rel = None
                    if with_images:
                        folder = image_folder(out, *cell_args, seq.subject, seq.sequence, cam.camera_id)
                        path = folder / image_name(frame, manifest.output.extension)
                        pixels = out_clip.images[v, t, : native[v][1], : native[v][0]]
                        data = write_image(path, pixels, fmt, manifest.output.quality)
                        image_rel = path.relative_to(out).as_posix()
                        files[image_rel] = lockmod.pixels_digest(decode_image(data))
                    img_w, img_h = (size, size) if size is not None else (native[v] if with_images else (cam.width, cam.height))
                    _append_row(
                        columns, unit, cam, frame, image_rel,
                        cam_joints=world_to_camera(world_all[frame], cam),
                        world_joints=world_all[frame],
                        joints_2d=labels_full[v, t],
                        joints_2d_crop=labels_img[v, t],
                        box=boxes_full[v, t],
                        crop=crops[v, t],
                        image_size=(img_w, img_h),
                        keypoints=None if keypoints_full is None else keypoints_full[v, t],
                        conf=None if (not keypoint_output or record.confidence is None) else record.confidence[v, t],
                        occluded=record.occluded[v, t],
                        view_valid=bool(record.view_valid[v, t]),
                        time_offset=float(record.time_offset[v]),
                        params=record.params[v][t],
                    )  # fmt: skip
        table = labels_table(columns)
        labels_file = label_path(out, *cell_args, seq.subject, seq.sequence)
        write_labels(labels_file, table)
        files[labels_file.relative_to(out).as_posix()] = lockmod.table_digest(table)
    finally:
        for reader in readers:
            reader.close()
    n_images = unit.n_images if with_images else 0
    lockmod.write_marker(out, unit.key, files, {"frames": len(unit.frames), "images": n_images})
    return UnitResult(unit.key, len(files), n_images, len(unit.frames), time.perf_counter() - started)


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


def _stack_padded(views: list[np.ndarray]) -> np.ndarray:
    """(V, T, H, W, 3) from views of possibly different sizes (Human3.6M full frames are 1000 x 1000
    or 1000 x 1002): smaller views are padded at the bottom/right by edge replication, and the
    writer cuts every view back to its own size."""
    h = max(view.shape[1] for view in views)
    w = max(view.shape[2] for view in views)
    padded = [
        view if view.shape[1:3] == (h, w)
        else np.pad(view, ((0, 0), (0, h - view.shape[1]), (0, w - view.shape[2]), (0, 0)), mode="edge")
        for view in views
    ]  # fmt: skip
    return np.stack(padded)


def _overlap(corruption, severity: int, frame_step: int) -> int:
    """Frames of overlap between chunks: 0 for frame-wise corruptions; for clip-level ones enough
    to hold the two frames around the largest time shift of the table (at least CLIP_LEVEL_OVERLAP)."""
    import math

    if severity == 0 or getattr(corruption.family, "clip_level", None) is None:
        return 0
    row = corruption.table.get(severity, {})
    shift = float(row.get("max_offset", 0.0)) + float(row.get("whole_frame_shift", 0.0))
    return max(CLIP_LEVEL_OVERLAP, math.ceil(shift / frame_step) + 2)


def _override_kw(corruption) -> dict:
    """Hand an overridden table to the engine (only when the manifest overrides it)."""
    from corrupt_bench.engine import get_corruption

    if corruption.name == CLEAN or corruption.table == get_corruption(corruption.name).table:
        return {}
    return {"corruption": corruption}


def _to_full(points_img: np.ndarray, affine: np.ndarray | None) -> np.ndarray:
    """(V, T, 17, 2) image px -> full-frame px (identity without a crop)."""
    points = np.asarray(points_img, dtype=np.float64)
    if affine is None:
        return points
    scale = np.stack([affine[..., 0, 0], affine[..., 1, 1]], axis=-1)[:, :, None, :]
    shift = affine[..., :, 2][:, :, None, :]
    return (points - shift) / scale


def _append_row(columns: dict[str, list], unit: WorkUnit, cam, frame: int, image_rel: str | None, **values) -> None:
    seq = unit.seq
    row = {
        "variant": unit.variant,
        "corruption": unit.corruption,
        "severity": unit.severity,
        "subject": seq.subject,
        "sequence": seq.sequence,
        "action": seq.action,
        "subaction": seq.subaction,
        "camera": cam.camera_id,
        "frame": int(frame),
        "image": image_rel,
        "joints_3d_cam": np.asarray(values["cam_joints"], np.float32).ravel().tolist(),
        "joints_3d_world": np.asarray(values["world_joints"], np.float32).ravel().tolist(),
        "joints_2d": np.asarray(values["joints_2d"], np.float32).ravel().tolist(),
        "joints_2d_crop": np.asarray(values["joints_2d_crop"], np.float32).ravel().tolist(),
        "box": np.asarray(values["box"], np.float32).ravel().tolist(),
        "crop": np.asarray(values["crop"], np.float32).ravel().tolist(),
        "image_size": [int(v) for v in values["image_size"]],
        "keypoints_2d": None if values["keypoints"] is None else np.asarray(values["keypoints"], np.float32).ravel().tolist(),
        "keypoint_conf": None if values["conf"] is None else np.asarray(values["conf"], np.float32).ravel().tolist(),
        "occluded": [bool(b) for b in values["occluded"]],
        "view_valid": values["view_valid"],
        "time_offset": values["time_offset"],
        "params": json.dumps(values["params"], sort_keys=True, separators=(",", ":"), allow_nan=True),
    }
    for name, value in row.items():
        columns[name].append(value)


# ---------------------------------------------------------------------------------------------
# the whole run


def corruption_versions(manifest: Manifest) -> dict[str, int]:
    from corrupt_bench.engine import get_corruption

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
    uses_voc = any(
        c.name in VOC_CORRUPTIONS
        or any(_corruption_for(manifest, v.name, c.name).table[s].get("kind") == "voc" for s in c.severities)
        for v in manifest.variants
        for c in v.corruptions
    )
    if uses_voc and voc_dir is None and config.kind != "synthetic":
        raise UserError("VOC occluders (voc_occluder, kind: voc) need Pascal VOC objects: give --voc DIR (VOCdevkit/VOC2012) or voc:", path)
    if voc_dir is not None and not voc_dir.is_dir():
        raise UserError("VOC folder not found", voc_dir)
    units = plan(manifest, source_reader.sequences())
    if not units.units:
        raise UserError("the manifest selects no sequence of this source", path)
    return manifest, config, units, None if voc_dir is None else str(voc_dir.resolve())


def estimate_bytes(manifest: Manifest, units: Plan) -> int:
    rows = units.n_rows
    size = 0
    if manifest.output.format != "keypoints":
        side = manifest.crop.output_size
        pixels = side * side if side is not None else 1000 * 1000
        size += int(rows * (pixels * BYTES_PER_PIXEL[manifest.output.format] + BYTES_PER_IMAGE_HEADER))
    return size + rows * BYTES_PER_LABEL_ROW


def _check_out(out: Path, manifest: Manifest) -> None:
    """Refuse an output folder that holds another manifest's benchmark."""
    stored = out / MANIFEST_NAME
    if stored.is_file():
        import yaml

        from corrupt_bench.generate.manifest import parse_manifest

        try:
            digest = parse_manifest(yaml.safe_load(stored.read_text()), stored, False).digest()
        except UserError:
            digest = None
        if digest != manifest.digest():
            raise UserError(
                "this folder holds a benchmark of another manifest (or another version of it); use a new --out",
                out,
            )
    elif out.exists() and any(p.name != STATE_DIR for p in out.iterdir()):
        raise UserError("output folder is not empty and holds no manifest.yaml of a benchmark", out)


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
    """Generate (or finish) the benchmark of a manifest into `out` and write lock.json."""
    import yaml

    from corrupt_bench.executors.local import LocalExecutor
    from corrupt_bench.progress import progress

    started = time.perf_counter()
    manifest, config, units, voc_dir = prepare(manifest_ref, source, voc, cache)
    out = Path(out)
    _check_out(out, manifest)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(
        out / MANIFEST_NAME,
        yaml.safe_dump(canonical_dict(manifest), sort_keys=False, allow_unicode=True).encode(),
    )
    # The calibration the labels were computed with travels with the benchmark (a synthetic source rendered
    # at 1/divisor size has its own cameras.json); scorers read it instead of guessing.
    from corrupt_bench.data.cameras import camera_file_for

    source_dir = Path(config.path) if config.kind != "vp3d_npz" else None
    atomic_write_bytes(out / CAMERA_FILE_NAME, camera_file_for(source_dir).read_bytes())
    ctx = RunContext(str(out.resolve()), manifest.model_dump_json(), config, voc_dir, manifest.seed)
    todo = [u for u in units.units if lockmod.read_marker(out, u.key) is None]
    executor = executor if executor is not None else LocalExecutor(workers)
    results = executor.map(partial(run_unit, ctx), todo, staging=unit_staging(ctx))
    if show_progress:
        results = progress(results, total=len(todo), description=f"generate {manifest.name}")
    log_path = out / STATE_DIR / RUN_LOG_NAME
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
