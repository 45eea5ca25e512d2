"""`corrupt-bench demo`: the whole toolkit on the built-in synthetic data, in minutes.

synth -> generate the four demo variants -> train the tiny reference models (cached by config and
data digest; the full demo trains each for half its tiny schedule's epochs) -> score every model on
every variant it can consume, BlazePose (pretrained) among them, the keypoint models fed by BlazePose's
2D on the image variants and the reference lifter also by the tiny detector2d -> report. Each stage is a call
of the same library function the stage's own command uses; the demo only chooses what to run.
"""

from __future__ import annotations

import errno
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import typer

from corrupt_bench.cli_utils import user_errors
from corrupt_bench.errors import UserError

DEMO_MANIFESTS: tuple[str, ...] = ("demo-da-3dpe", "demo-h36m-c", "demo-occluded-h36m", "demo-weak-sync")
TRAINED_MODELS: tuple[str, ...] = ("detector2d", "tcn-lifter", "dtf", "syncdiffpose", "deprope", "stride")
# Scored without training: BlazePose (the mediapipe wheel's model) as a monocular 3D model, with the
# config its card calls tiny (the same network on 128 px crops).
PRETRAINED_MODELS: tuple[str, ...] = ("blazepose",)
PRETRAINED_CONFIG = "tiny"
# The keypoint models read a 2D detector's output on the image variants: BlazePose by default; the
# tiny trained detector2d feeds the reference lifter beside it, so the two detectors can be compared.
DETECTOR = "blazepose"
SIDE_DETECTOR = "detector2d"
SIDE_DETECTOR_MODELS = ("tcn-lifter",)
REFINER = "stride"
REFINED_BASE = "tcn-lifter"
# STRIDE's test-time training runs per clip and is the costliest step; it is scored where its paper
# evaluates it, on Occluded Human3.6M.
REFINED_ON = ("demo-occluded-h36m",)


def run_label(model: str, detector: str | None = None, refiner: str | None = None) -> str:
    """The name of a demo run in the report: the model, `@` the 2D detector feeding it, `+` its refiner."""
    return model + (f"@{detector}" if detector else "") + (f"+{refiner}" if refiner else "")


REFERENCE_MODEL = run_label("tcn-lifter", DETECTOR)  # reference of CE / mCE in the demo report


@dataclass(frozen=True)
class DemoSettings:
    """What differs between the full demo and `--quick` (CI)."""

    subjects: tuple[str, ...] = ("S1", "S5", "S9", "S11")
    seconds: float = 4.0
    divisor: int = 4
    epochs: int | None = None  # None: the tiny config's own
    steps_per_epoch: int | None = None
    ttt_epochs: int | None = None  # test-time training epochs per clip (refiners)
    # the full demo trains each model for this fraction of its tiny config's epochs (rounded up), so
    # that a cold demo stays within minutes; the model cards' figures are for the whole tiny schedule
    epoch_fraction: float | None = 0.5

    @classmethod
    def quick(cls) -> DemoSettings:
        return cls(subjects=("S1", "S9", "S11"), seconds=1.2, divisor=4, epochs=1, steps_per_epoch=20, ttt_epochs=1,
                   epoch_fraction=None)  # fmt: skip


@dataclass
class DemoResult:
    out: Path
    leaderboard: Path
    summary_html: Path
    stage_seconds: dict[str, float] = field(default_factory=dict)
    trained: dict[str, bool] = field(default_factory=dict)  # model -> trained now (False: cache hit)


def _check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-probe"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        raise UserError(f"output folder is not writable ({exc.strerror})", out) from exc


def _stage(console, index: int, total: int, title: str) -> None:
    console.rule(f"[bold]{index}/{total}  {title}")


def _data_digest(source: Path) -> str:
    """What the source folder holds, as the synthetic writer recorded it (settings + format version)."""
    from corrupt_bench.models.checkpoint import config_digest

    settings = source / "synth.json"
    payload = json.loads(settings.read_text()) if settings.is_file() else {"path": str(source.resolve())}
    return config_digest(payload)


def _source_name(settings: DemoSettings) -> str:
    """Folder of the synthetic source: one per (settings, synthetic format version), so the quick and the
    full demo, or a newer renderer, never meet a folder written differently."""
    from corrupt_bench.data.synth import FORMAT_VERSION
    from corrupt_bench.models.checkpoint import config_digest

    key = {"subjects": settings.subjects, "seconds": settings.seconds, "divisor": settings.divisor, "format": FORMAT_VERSION}
    return f"synth-{config_digest(key)[:10]}"


def _demo_config(name: str, settings: DemoSettings) -> dict:
    """The model's tiny config, shortened for `--quick` wherever it schedules training (top level or a
    nested section such as `train:` / `pretrain:`, and a test-time-training `ttt:` section)."""
    from corrupt_bench.models.checkpoint import load_config

    cfg = load_config(name, "tiny")
    sections = [cfg, *(v for v in cfg.values() if isinstance(v, dict))]
    for section in sections:
        if settings.epochs is not None and "epochs" in section:
            section["epochs"] = settings.ttt_epochs if section is cfg.get("ttt") else settings.epochs
        elif settings.epoch_fraction is not None and "epochs" in section and section is not cfg.get("ttt"):
            section["epochs"] = max(1, math.ceil(section["epochs"] * settings.epoch_fraction))
        if settings.steps_per_epoch is not None and "steps_per_epoch" in section:
            section["steps_per_epoch"] = settings.steps_per_epoch
    return cfg


def train_cached(name: str, cfg: dict, source: Path, models_dir: Path, device: str | None) -> tuple[Path, bool]:
    """Train `name` unless a finished checkpoint of the same config and data exists; returns (folder, trained)."""
    from corrupt_bench.models.checkpoint import META, config_digest
    from corrupt_bench.models.registry import get_trainer

    folder = models_dir / f"{name}-{config_digest({'config': cfg, 'data': _data_digest(source)})}"
    meta = folder / META
    if meta.is_file():
        done = json.loads(meta.read_text())  # written by training.fit after every epoch
        if done.get("epoch") is not None and done.get("epoch") == done.get("epochs"):
            return folder, False
    get_trainer(name)(cfg, data=source, out=folder, device=device)
    return folder, True


def _benchmark_views(bench: Path) -> tuple[bool, int]:
    """(has images, number of cameras) of a generated benchmark, read from its manifest copy."""
    from corrupt_bench.layout import MANIFEST_NAME
    from corrupt_bench.safe_yaml import load_yaml

    manifest = load_yaml(bench / MANIFEST_NAME, "stored manifest")
    has_images = manifest.get("output", {}).get("format") != "keypoints"
    return has_images, len(manifest.get("cameras", []))


def can_consume(input_spec, has_images: bool, n_cameras: int) -> bool:
    """Whether a model with `input_spec` can be scored on a benchmark (images via the detector for 2D models)."""
    if input_spec.multi_view and n_cameras < 2:
        return False
    if input_spec.kind == "images":
        return has_images
    return input_spec.kind == "keypoints2d"


@dataclass(frozen=True)
class ScoreJob:
    """One demo score run: a model on a benchmark, fed by a 2D detector (keypoint models on images)
    and optionally refined."""

    model: str
    benchmark: str
    detector: str | None = None
    refiner: str | None = None

    @property
    def label(self) -> str:
        return run_label(self.model, self.detector, self.refiner)


def demo_jobs(benchmarks: dict[str, Path], checkpoints: dict[str, Path], device: str | None) -> list[ScoreJob]:
    """Every model on every benchmark it can consume; keypoint models on image benchmarks once per
    detector they are shown with; the refiner on its base model where its paper evaluates it."""
    from corrupt_bench.models.loading import load_model

    scored = [m for m in TRAINED_MODELS if m not in (SIDE_DETECTOR, REFINER)] + ["triangulation", *PRETRAINED_MODELS]
    views = {name: _benchmark_views(bench) for name, bench in benchmarks.items()}  # each stored manifest read once
    jobs: list[ScoreJob] = []
    for model in scored:
        config = _pretrained_config(model)
        spec = load_model(model, checkpoints.get(model), config, device=device, kind="predictor").model.input_spec
        for bench_name, (has_images, n_cameras) in views.items():
            if not can_consume(spec, has_images, n_cameras):
                continue
            detectors: tuple[str | None, ...] = (None,)
            if spec.kind == "keypoints2d" and has_images:
                detectors = (DETECTOR, SIDE_DETECTOR) if model in SIDE_DETECTOR_MODELS else (DETECTOR,)
            for detector in detectors:
                jobs.append(ScoreJob(model, bench_name, detector))
                if model == REFINED_BASE and bench_name in REFINED_ON and detector == DETECTOR:
                    jobs.append(ScoreJob(model, bench_name, detector, REFINER))
    return jobs


def _pretrained_config(model: str) -> dict | None:
    from corrupt_bench.models.checkpoint import load_config

    return load_config(model, PRETRAINED_CONFIG) if model in PRETRAINED_MODELS else None


def share_detections(source_run: Path, run: Path) -> None:
    """Copy the detection cache of an earlier run on the same benchmark into `run`, so a detector runs
    once per benchmark, not once per keypoint model. The cache is keyed by the detector's identity
    (`RUN/detections/<detector key>/...`) and a file is reused only when it covers every frame asked
    for, so another detector, or a cache that does not fit, is simply detected again."""
    from corrupt_bench.io import atomic_write_bytes, confined, is_temporary
    from corrupt_bench.layout import DETECTIONS_DIR

    cache = source_run / DETECTIONS_DIR
    for path in sorted(cache.rglob("*.parquet")) if cache.is_dir() else []:
        if is_temporary(path.name):
            continue
        target = confined(run, DETECTIONS_DIR, *path.relative_to(cache).parts)
        if not target.is_file():
            atomic_write_bytes(target, path.read_bytes())


def score_run(job: ScoreJob, benchmarks: dict[str, Path], checkpoints: dict[str, Path], out: Path, device: str | None) -> Path:
    """Score one job into OUT/runs/<label>/<benchmark> (a finished run is reused)."""
    from corrupt_bench.harness.scoring import score

    extra: dict = {}
    if job.detector is not None:  # a trained detector is given by its checkpoint, a pretrained one by name
        extra = {"detector": checkpoints.get(job.detector, job.detector), "input_2d": "detector"}
    if job.refiner is not None:
        extra |= {"refine": job.refiner, "refine_checkpoint": checkpoints[job.refiner]}
    run = out / "runs" / job.label / job.benchmark
    # demo variants at another frame rate than a temporal model's (demo-da-3dpe: every 5th frame,
    # demo-h36m-c: every 2nd) are read resampled to the model's own rate, stated in every row
    score(job.model, benchmarks[job.benchmark], run, checkpoint=checkpoints.get(job.model), config=_pretrained_config(job.model),
          name=job.label, device=device, resample=True, **extra)  # fmt: skip
    return run


def run_demo(
    out: Path,
    quick: bool = False,
    workers: int = 2,
    device: str | None = None,
    echo: Callable[[str], None] = typer.echo,
) -> DemoResult:
    """Run every stage of the demo into `out` (resumable: finished work is reused)."""
    from rich.console import Console

    from corrupt_bench.data.synth import write_synthetic
    from corrupt_bench.generate.run import generate
    from corrupt_bench.reports.report import write_report
    from corrupt_bench.resources import resource_dir

    console = Console(stderr=True)
    settings = DemoSettings.quick() if quick else DemoSettings()
    out = Path(out)
    _check_writable(out)
    timings: dict[str, float] = {}
    total = 5

    t0 = time.perf_counter()
    _stage(console, 1, total, "synthetic raw Human3.6M source")
    source = write_synthetic(
        out / "source" / _source_name(settings), subjects=settings.subjects, seconds=settings.seconds, divisor=settings.divisor,
        workers=workers, show_progress=True,
    )
    timings["synth"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    _stage(console, 2, total, "generate the four demo variants")
    benchmarks: dict[str, Path] = {}
    for name in DEMO_MANIFESTS:
        bench = out / "benchmarks" / name
        generate(resource_dir("manifests") / f"{name}.yaml", bench, source=source, workers=workers)
        benchmarks[name] = bench
    timings["generate"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    _stage(console, 3, total, "train the tiny reference models (cached)")
    checkpoints: dict[str, Path] = {}
    trained: dict[str, bool] = {}
    for name in TRAINED_MODELS:
        checkpoints[name], trained[name] = train_cached(name, _demo_config(name, settings), source, out / "models", device)
        console.print(f"{name}: {'trained' if trained[name] else 'cached'} -> {checkpoints[name]}")
    timings["train"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    _stage(console, 4, total, "score every model on every variant it can consume")
    runs: list[Path] = []
    detected: dict[tuple[str, str], Path] = {}  # (benchmark, detector) -> the first run that detected it
    for job in demo_jobs(benchmarks, checkpoints, device):
        run = out / "runs" / job.label / job.benchmark
        if job.detector is not None:
            earlier = detected.setdefault((job.benchmark, job.detector), run)
            if earlier != run:
                share_detections(earlier, run)
        runs.append(score_run(job, benchmarks, checkpoints, out, device))
    timings["score"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    _stage(console, 5, total, "report")
    files = write_report(runs, out / "report", reference=REFERENCE_MODEL)
    timings["report"] = time.perf_counter() - t0
    return DemoResult(out, files.out / "leaderboard.csv", files.summary_html, timings, trained)


def print_leaderboard(path: Path) -> None:
    """The boards of a report's leaderboard CSV as rich tables on stdout: every model name in full,
    each number with its 95 % interval, the unranked models last with the reason."""
    import pandas as pd
    from rich.console import Console
    from rich.table import Table

    from corrupt_bench.reports.report import display_table

    board = pd.read_csv(path, keep_default_na=False, na_values=[""])
    metric = str(board["metric"].iloc[0]) if len(board) else "mpjpe"
    columns = ["rank", "model", "input_2d", "grid_cells", "coverage", f"clean_{metric}", f"corrupted_{metric}", "mce",
               "relative_mce", "mean_resilience_rate", "n_sequences", "n_frames", "unranked"]  # fmt: skip
    console = Console(width=220)
    for name in dict.fromkeys(board["board"]):
        part = board[board["board"] == name].reset_index(drop=True)
        shown = display_table(part, metric, columns)
        shown = shown.loc[:, [c for c in shown.columns if c in ("rank", "model") or (shown[c] != "").any()]]
        reference = str(part["reference"].iloc[0])
        table = Table(title=f"leaderboard: {name} ({metric}; reference {reference}; [95 % interval over sequences])")
        for column in shown.columns:
            if column == "model":
                table.add_column(column, no_wrap=True, min_width=max(len(m) for m in shown[column]))
            else:
                table.add_column(column, justify="left" if column in ("input_2d", "unranked") else "right", overflow="fold")
        for row in shown.itertuples(index=False):
            table.add_row(*(str(v) for v in row))
        console.print(table)
    console.print(f"all columns, notes and formulas: {path}")


@user_errors
def demo(
    out: Path = typer.Option(Path("demo-out"), "--out", help="Output folder (reused: a second run skips finished work)."),
    quick: bool = typer.Option(False, "--quick", help="Smaller data and a few training steps (CI smoke run)."),
    workers: int = typer.Option(2, "--workers", help="Processes for synthesis and generation."),
    device: str | None = typer.Option(None, "--device", help="cpu, cuda ... (default: CUDA when present)."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="torch threads for training and scoring (default: the available cores; OMP_NUM_THREADS is respected)."),
) -> None:
    """Run the whole benchmark on the built-in synthetic data: synth, generate, train, score, report."""
    from corrupt_bench.executors.process import set_torch_threads

    set_torch_threads(threads)  # training and scoring run here, one stage at a time
    t0 = time.perf_counter()
    try:
        result = run_demo(out, quick=quick, workers=workers, device=device)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise UserError("disk full while writing the demo", exc.filename or out) from exc
        if exc.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
            raise UserError(f"cannot write ({exc.strerror})", exc.filename or out) from exc
        raise
    print_leaderboard(result.leaderboard)
    stages = ", ".join(f"{k} {v:.0f}s" for k, v in result.stage_seconds.items())
    typer.echo(f"demo finished in {time.perf_counter() - t0:.0f}s ({stages})")
    typer.echo(f"HTML report: {result.summary_html}")


def register(app: typer.Typer) -> None:
    """Add the demo command to the app."""
    app.command()(demo)
