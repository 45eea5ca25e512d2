"""Contract tests parametrised over the model registry: a new built-in model gets them without being named.

Every model is built from its tiny config (`baselines/<name>/tiny.yaml`, {} for the training-free
ones) with random weights; a predictor is fed the batches the harness builds from a small benchmark
in the real layout (image models: crops of a rendered synthetic person, so that a pretrained model
that first looks for a person finds one). A name listed with two kinds (`blazepose`) is tested as each. Checked: the InputSpec read from the config alone equals the built model's, the
batch matches it, the output shape, root-relative and finite; save -> load gives identical output;
an unknown config key is refused (also by `corrupt-bench train`, exit 2, naming the key).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from fixtures_bench import generated_benchmark, raw_source
from typer.testing import CliRunner

from corrupt_bench.cli import app
from corrupt_bench.data.cameras import CAMERA_IDS, get_camera, project, world_to_camera
from corrupt_bench.data.crop import crop_image
from corrupt_bench.data.skeleton import raw_to_h36m17
from corrupt_bench.data.synth import appearance_for, camera_background, render_frames, synthetic_motion_raw
from corrupt_bench.errors import UserError
from corrupt_bench.harness.benchmark import Benchmark
from corrupt_bench.harness.dataset import build_groups
from corrupt_bench.harness.scoring import model_batches
from corrupt_bench.models.checkpoint import load_config, save_checkpoint
from corrupt_bench.models.data import crop_box_for
from corrupt_bench.models.loading import check_config, load_detector, load_model
from corrupt_bench.models.protocol import PROTOCOLS, InputSpec
from corrupt_bench.models.registry import BUILTIN, ModelEntry, Registry, list_models
from corrupt_bench.resources import resource_dir

torch.set_num_threads(1)
MODELS = list_models()
PREDICTORS = list_models(kind="predictor")
REFINERS = list_models(kind="refiner")
DETECTORS = list_models(kind="detector")
ENTRIES = [pytest.param(e.name, e.kind, id=f"{e.name}-{e.kind}") for e in BUILTIN.entries]
TRAINABLE = [e.name for e in BUILTIN.entries if e.trainer is not None]
BATCH_KEYS = {"crop", "cameras", "view_valid", "subject", "sequence", "camera_ids", "frames", "pad"}


def tiny_config(name: str) -> dict:
    """The model's tiny config, or {} for a model without configs (training-free)."""
    if (resource_dir("baselines") / name / "tiny.yaml").is_file():
        return load_config(name, "tiny")
    return {}


def _perturb(module: torch.nn.Module) -> None:
    """Move every weight and buffer away from its initial value (seeded), so a load that did nothing shows."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for tensor in module.state_dict().values():  # what a checkpoint holds (shares storage with the module)
            if tensor.is_floating_point():
                tensor.add_(0.05 * torch.randn(tensor.shape, generator=gen).to(tensor.dtype))


def _save_and_reload(loaded, name: str, folder: Path):
    module = loaded.model.module if getattr(loaded.model, "module", None) is not None else None
    save_checkpoint(folder, name, loaded.config, module.state_dict() if module is not None else {})
    return load_model(folder, device="cpu", kind=loaded.kind)  # the checkpoint alone names the model


def person_crop(size: int) -> np.ndarray:
    """(size, size, 3) uint8 BGR: one rendered synthetic person (S9 walking, 1/2 resolution), cut as the
    benchmarks cut crops (square box around the labels, margin 0.2)."""
    camera = get_camera("S9", CAMERA_IDS[1]).scaled(2)
    joints = raw_to_h36m17(synthetic_motion_raw("S9", "walk", 21, 0))[20:21]
    frame = next(iter(render_frames(joints, camera, appearance_for("S9", 0), camera_background("S9", CAMERA_IDS[1], 2, 0))))
    box = crop_box_for(project(world_to_camera(joints, camera), camera)[0], 0.2)
    return cv2.cvtColor(crop_image(frame, box, size), cv2.COLOR_RGB2BGR)


@pytest.fixture(scope="module")
def benches(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("contract")
    raw = raw_source(root / "raw", n_frames=10)
    images = generated_benchmark(root / "img", raw, grid={}, images=128)
    person = person_crop(128)
    for png in images.rglob("*.png"):  # the same person in every crop (the fixture's PNGs are noise)
        assert cv2.imwrite(str(png), person)
    return {"keypoints2d": generated_benchmark(root / "kp", raw, grid={}), "images": images}


def test_registry_table_is_complete_and_immutable():
    assert set(MODELS) == {"oracle-noise", "triangulation", "detector2d", "tcn-lifter", "dtf", "syncdiffpose", "deprope", "stride",
                           "blazepose"}
    assert set(PREDICTORS) | set(REFINERS) | set(DETECTORS) == set(MODELS)
    assert "blazepose" in PREDICTORS and "blazepose" in DETECTORS  # one name, two kinds
    with pytest.raises(UserError, match="model 'blazepose' is a predictor and a 2D detector: say which"):
        BUILTIN.get("blazepose")
    assert BUILTIN.get("blazepose", "detector").kind == "detector"
    for entry in BUILTIN.entries:
        assert entry.description and entry.kind in PROTOCOLS
        with pytest.raises(AttributeError):
            entry.name = "x"  # type: ignore[misc]
    with pytest.raises(UserError, match="did you mean 'tcn-lifter'"):
        BUILTIN.get("tcn-lifer")


def test_reading_the_table_and_the_public_api_import_no_torch():
    code = (
        "import sys\n"
        "from corrupt_bench import Detector2D, InputSpec, Predictor, Refiner, list_models, load_detector, load_model\n"
        "from corrupt_bench.models.registry import BUILTIN\n"
        "assert list_models() and [e.description for e in BUILTIN.entries]\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "assert not [m for m in sys.modules if m.startswith('corrupt_bench.models.') and m not in "
        "('corrupt_bench.models.protocol', 'corrupt_bench.models.registry', 'corrupt_bench.models.loading')]\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_a_test_registry_is_its_own():
    """A registry is a value: build one with plain callables, load from it; the built-in one is untouched."""

    class Toy:
        name = "toy"
        input_spec = InputSpec(kind="keypoints2d")

        def predict(self, batch):
            return np.zeros((*np.asarray(batch["keypoints_2d"]).shape[:3], 17, 3))

    def spec(config: dict) -> InputSpec:
        if set(config) - {"size"}:
            raise ValueError(f"unknown config keys {sorted(set(config) - {'size'})}")
        return Toy.input_spec

    reg = Registry((ModelEntry("toy", "predictor", lambda config, device: Toy(), spec),))
    assert list_models(registry=reg) == ["toy"] and "toy" not in MODELS
    loaded = load_model("toy", registry=reg, kind="predictor")
    assert isinstance(loaded.model, Toy) and loaded.kind == "predictor"
    with pytest.raises(UserError, match="unknown config keys"):
        load_model("toy", config={"colour": 1}, registry=reg)
    with pytest.raises(UserError, match="is a predictor, not a 2D detector"):
        load_detector("toy", registry=reg)
    with pytest.raises(ValueError, match=r"listed twice: toy \(predictor\)"):
        Registry((reg.entries[0], reg.entries[0]))
    # a model's declared fingerprint (e.g. the digest of a bundled model file) enters its identity
    shipped = Registry((ModelEntry("toy", "predictor", lambda config, device: type("T", (Toy,), {"fingerprint": "abc"})(), spec),))
    assert load_model("toy", registry=shipped).identity != loaded.identity
    assert load_model("toy", registry=shipped).fingerprint == "abc" and loaded.fingerprint == ""


SHIPPED_CONFIGS = sorted((p.parent.name, p.stem) for p in resource_dir("baselines").glob("*/*.yaml"))


@pytest.mark.parametrize(("name", "config"), SHIPPED_CONFIGS)
def test_every_shipped_config_is_valid(name, config):
    assert name in MODELS
    check_config(name, load_config(name, config))


@pytest.mark.parametrize(("name", "kind"), ENTRIES)
def test_input_spec_from_the_config_alone_matches_the_model(name, kind):
    entry = BUILTIN.get(name, kind)
    cfg = tiny_config(name)
    spec = entry.spec(cfg)
    loaded = load_model(name, config=cfg, device="cpu", kind=entry.kind)
    assert isinstance(loaded.model, PROTOCOLS[entry.kind])
    assert getattr(loaded.model, "input_spec", spec) == spec
    assert loaded.kind == entry.kind and loaded.spec == name and loaded.checkpoint_digest == ""
    assert loaded.fingerprint == str(getattr(loaded.model, "fingerprint", "") or "")  # a declared one enters the identity


@pytest.mark.parametrize(("name", "kind"), ENTRIES)
def test_unknown_or_wrong_typed_config_key_is_refused(name, kind):
    cfg = tiny_config(name)
    with pytest.raises(UserError, match=r"unknown config key 'no_such_key'"):
        load_model(name, config={**cfg, "no_such_key": 1}, device="cpu", kind=kind)
    with pytest.raises(UserError, match=r"unknown config key 'no_such_key'"):
        check_config(name, {**cfg, "no_such_key": 1})
    numeric = [k for k, v in cfg.items() if isinstance(v, int | float) and not isinstance(v, bool)]
    if numeric:
        with pytest.raises(UserError, match=rf"config key '{numeric[0]}'"):
            check_config(name, {**cfg, numeric[0]: "abc"})


@pytest.mark.parametrize("name", PREDICTORS)
def test_predictor_on_the_batches_the_harness_builds(name, benches, tmp_path):
    loaded = load_model(name, config=tiny_config(name), device="cpu", kind="predictor")
    model, spec = loaded.model, loaded.model.input_spec
    bench = Benchmark(benches["images" if spec.kind == "images" else "keypoints2d"])
    cell = bench.cell_files()[0]
    df = bench.labels(cell)
    group = build_groups(df, spec, "gt" if spec.kind == "keypoints2d" else None, bench.root)[0]
    index, batch = next(model_batches(bench, cell, group, spec, batch_size=2, workers=0))
    b, v, t = len(index), (df["camera"].nunique() if spec.multi_view else 1), spec.window

    expected = set(BATCH_KEYS)
    expected |= {"keypoints_2d", "confidence"} if spec.kind == "keypoints2d" else {"images"}
    expected |= {"joints_3d_cam", "occluded"} if spec.needs_ground_truth else set()
    assert set(batch) == expected  # no label the model did not ask for
    assert batch["frames"].shape == batch["pad"].shape == (b, t) and batch["view_valid"].shape == (b, v, t)
    assert batch["crop"].shape == (b, v, t, 4) and len(batch["cameras"]) == len(batch["camera_ids"]) == v
    if spec.kind == "keypoints2d":
        assert batch["keypoints_2d"].shape == (b, v, t, 17, 2) and batch["confidence"].shape == (b, v, t, 17)
    else:
        size = spec.image_size
        assert batch["images"].dtype == np.uint8 and batch["images"].shape == (b, v, t, size, size, 3)

    with torch.no_grad():
        out = np.asarray(model.predict(batch))
    assert out.shape == (b, v, t, 17, 3)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out[..., 0, :], 0.0, atol=1e-3)  # root-relative

    if getattr(model, "module", None) is not None:
        _perturb(model.module)
        with torch.no_grad():
            out = np.asarray(model.predict(batch))
    again = _save_and_reload(loaded, name, tmp_path / "ckpt")
    assert again.spec == name and again.identity == load_model(name, tmp_path / "ckpt", device="cpu", kind="predictor").identity
    with torch.no_grad():
        np.testing.assert_array_equal(np.asarray(again.model.predict(batch)), out)
    if getattr(model, "module", None) is not None:  # the loaded weights matter
        fresh = load_model(name, config=loaded.config, device="cpu", kind="predictor").model
        with torch.no_grad():
            assert not np.array_equal(np.asarray(fresh.predict(batch)), out)


@pytest.mark.parametrize("name", REFINERS)
def test_refiner_contract(name, tmp_path):
    from corrupt_bench.data.cameras import CAMERA_IDS, get_camera, world_to_camera
    from corrupt_bench.data.synth_motion import synthetic_motion

    cfg = tiny_config(name)
    for section in (v for v in cfg.values() if isinstance(v, dict)):  # a refiner's own training at test time
        if "epochs" in section and section is not cfg.get("pretrain"):
            section["epochs"] = 2
    loaded = load_model(name, config=cfg, device="cpu", kind="refiner")
    cam = world_to_camera(synthetic_motion("S9", "walk", 40, seed=0), get_camera("S9", CAMERA_IDS[0]))
    poses = cam - cam[:, :1] + np.random.default_rng(0).normal(0.0, 10.0, cam.shape)
    poses[:, 0] = 0.0
    out = np.asarray(loaded.model.refine(poses, 50.0))
    assert out.shape == poses.shape and np.isfinite(out).all()
    np.testing.assert_allclose(out[:, 0], 0.0, atol=1e-3)
    again = _save_and_reload(loaded, name, tmp_path / "ckpt")
    np.testing.assert_array_equal(np.asarray(again.model.refine(poses, 50.0)), out)


@pytest.mark.parametrize("name", DETECTORS)
def test_detector_contract(name, tmp_path):
    loaded = load_detector(name, "cpu")
    images = np.random.default_rng(0).integers(0, 256, size=(3, 48, 48, 3), dtype=np.uint8)
    xy, conf = loaded.model.detect(images)
    assert np.asarray(xy).shape == (3, 17, 2) and np.asarray(conf).shape == (3, 17)
    assert np.all((np.asarray(conf) >= 0) & (np.asarray(conf) <= 1))
    found = np.asarray(conf) > 0
    assert np.isfinite(np.asarray(xy)[found]).all()  # a joint with confidence has coordinates
    if getattr(loaded.model, "module", None) is not None:
        _perturb(loaded.model.module)
        xy, conf = loaded.model.detect(images)
    again = _save_and_reload(loaded, name, tmp_path / "ckpt")
    by_spec = load_detector(tmp_path / "ckpt", "cpu")
    assert by_spec.identity == again.identity
    np.testing.assert_array_equal(np.asarray(by_spec.model.detect(images)[0]), np.asarray(xy))
    np.testing.assert_array_equal(np.asarray(by_spec.model.detect(images)[1]), np.asarray(conf))


@pytest.mark.parametrize("name", TRAINABLE)
def test_train_with_an_unknown_config_key_exits_2_naming_it(name, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({**tiny_config(name), "lerning_rate": 0.1}))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["train", name, "--config", str(config), "--data", str(tmp_path), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert f"error: {config}: model '{name}': unknown config key 'lerning_rate'" in result.output
    assert not out.exists()  # refused before anything was read or written


def test_kinds_are_enforced_when_loading(tmp_path):
    with pytest.raises(UserError, match="model 'stride' is a refiner, not a Predictor"):
        load_model("stride", kind="predictor")
    with pytest.raises(UserError, match="model 'tcn-lifter' is a predictor, not a 2D detector"):
        load_detector("tcn-lifter")
    with pytest.raises(UserError, match="is a checkpoint: give it as the model or as the checkpoint, not both"):
        load_model(tmp_path / "ckpt", tmp_path / "ckpt")
    with pytest.raises(UserError, match="not a 2D detector"):
        load_detector("fixtures_bench:linear_lifter")
