"""The Ray executor (issue 9): the same lock.json and the same score table as the local executor on a
local 2-CPU Ray runtime, a worker that dies once is retried without changing a byte, outputs of a
non-shared file system land through the driver, and a missing ray is one clear line (exit 2)."""

from __future__ import annotations

import json
import operator
import os
import sys
import time
from functools import partial
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from corrupt_bench.cli import app
from corrupt_bench.errors import UserError
from corrupt_bench.executors import make_executor
from corrupt_bench.executors.local import LocalExecutor
from corrupt_bench.executors.ray import MISSING_RAY, RayExecutor
from corrupt_bench.generate import run
from corrupt_bench.generate.run import generate

MANIFEST = "demo-h36m-c"  # 19 units of 8 frames (two variants), one camera, PNG: seconds to generate
ORACLE = {"offset_mm": 3.0, "noise_mm": 5.0, "seed": 7}  # keyed noise: the rows are not all equal
KEYS = ["variant", "corruption", "severity", "subject", "sequence", "camera"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def local_bench(tmp_path_factory, cache: Path) -> Path:
    out = tmp_path_factory.mktemp("local") / "bench"
    generate(MANIFEST, out, executor=LocalExecutor(1), show_progress=False, cache=cache)
    return out


@pytest.fixture(scope="module")
def ray_runtime():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def _lock(bench: Path) -> dict:
    return json.loads((bench / "lock.json").read_text())


def _table(run: Path) -> pd.DataFrame:
    df = pd.read_parquet(run / "results.parquet").drop(columns=["seconds"])
    return df.sort_values(KEYS).reset_index(drop=True)


# --- without ray -----------------------------------------------------------------------------------------
def test_missing_ray_is_one_line_and_exit_2(monkeypatch, tmp_path: Path):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(UserError, match=r"^the Ray executor needs ray: pip install 'corrupt-bench\[ray\]'$"):
        make_executor("ray", 2)
    runner = CliRunner()
    for args in (
        ["generate", MANIFEST, "--out", str(tmp_path / "g"), "--executor", "ray"],
        ["score", "--model", "oracle-noise", "--benchmark", str(tmp_path), "--out", str(tmp_path / "s"), "--executor", "ray"],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert f"error: {MISSING_RAY}" in result.output
    assert not (tmp_path / "g").exists()  # failed before writing anything


def test_staged_group_writes_nothing_under_out_and_lands_the_same_files(local_bench: Path, cache: Path, tmp_path: Path):
    """The non-shared-FS path without Ray: a group of units (frames decoded once) runs into a temp
    folder, the driver writes every unit's bytes, marker last."""
    from corrupt_bench.generate import lock as lockmod
    from corrupt_bench.generate.planner import UnitGroup
    from corrupt_bench.generate.run import RunContext, group_staging, prepare

    manifest, config, plan, voc = prepare(MANIFEST, cache=cache)
    out = tmp_path / "out"
    ctx = RunContext(str(out), manifest.model_dump_json(), config, voc, manifest.seed)
    staging = group_staging(ctx)
    units = plan.units[2:5]
    staged = staging.remote(UnitGroup(units))
    assert not out.exists()  # the task itself wrote nothing under the output root
    results = staging.land(staged)
    assert [r.key for r in results] == [u.key for u in units]
    for unit in units:
        marker = lockmod.read_marker(out, unit.key)
        assert marker == lockmod.read_marker(local_bench, unit.key)
        for rel, digest in marker["files"].items():
            assert lockmod.file_digest(out / rel) == digest == _lock(local_bench)["files"][rel]


def _pid_of(item: int) -> tuple[int, int]:
    if item < 0:
        raise ValueError(f"item {item}")
    time.sleep(0.05)
    return item, os.getpid()


def test_local_executor_works_in_this_process_and_on_its_pool():
    """Every item once, in this process when a pool does not pay (one item, max_parallel 1), and in this
    process and its spawned workers otherwise; an item's error is raised here."""
    here = os.getpid()
    assert list(LocalExecutor(3).map(_pid_of, [7])) == [(7, here)]
    assert {pid for _, pid in LocalExecutor(3).map(_pid_of, range(4), max_parallel=1)} == {here}
    results = list(LocalExecutor(2).map(_pid_of, range(60)))
    assert sorted(item for item, _ in results) == list(range(60))
    pids = {pid for _, pid in results}
    assert here in pids  # this process is a worker too, from the start
    assert len(pids) == 2  # the spawned worker took items once it had started (60 x 50 ms outlasts its start)
    with pytest.raises(ValueError, match="item -1"):
        list(LocalExecutor(2).map(_pid_of, [0, 1, -1, 2]))


def test_torch_threads_follow_the_option_the_environment_and_the_workers(monkeypatch):
    torch = pytest.importorskip("torch")
    from corrupt_bench.executors.process import available_cores, keep_freed_memory, set_torch_threads

    before = torch.get_num_threads()
    try:
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            monkeypatch.delenv(name, raising=False)
        assert set_torch_threads(3) == 3 == torch.get_num_threads()  # --threads
        cores = available_cores()
        assert set_torch_threads(None, processes=cores + 5) == 1 == torch.get_num_threads()  # several workers: one each
        assert set_torch_threads(None, processes=1) == cores == torch.get_num_threads()
        torch.set_num_threads(2)
        monkeypatch.setenv("OMP_NUM_THREADS", "7")
        assert set_torch_threads(None, processes=4) == 2  # the user's environment: torch's reading of it stands
        with pytest.raises(UserError, match="--threads must be at least 1"):
            set_torch_threads(0)
    finally:
        torch.set_num_threads(before)
    if sys.platform.startswith("linux") and __import__("platform").libc_ver()[0] == "glibc":
        assert keep_freed_memory() is True


def test_options_are_checked():
    with pytest.raises(UserError, match="max_retries"):
        RayExecutor(1, max_retries=-1)
    with pytest.raises(UserError, match="unknown executor 'dask'"):
        make_executor("dask")


# --- on a local Ray runtime (2 CPUs) ---------------------------------------------------------------------
@pytest.mark.parametrize("split", [False, True], ids=["one-group", "two-groups"])
def test_generate_on_ray_gives_the_local_lock_even_when_a_worker_dies(
    ray_runtime, local_bench: Path, cache: Path, tmp_path: Path, monkeypatch, split: bool
):
    if split:  # the units (frames decoded once per group) split over the runtime's 2 CPUs
        monkeypatch.setattr(run, "MIN_ROWS_PER_WORKER", 1)
    fault = tmp_path / "fault"
    out = tmp_path / "ray"
    executor = RayExecutor(2, max_retries=2, fault_file=fault)
    assert executor.slots() == 2  # the runtime's CPUs
    summary = generate(MANIFEST, out, executor=executor, show_progress=False, cache=cache)
    assert fault.is_file()  # one task killed its worker (os._exit) and was retried
    assert summary.ran == summary.units == 19
    assert _lock(out) == _lock(local_bench)
    assert ray_runtime.is_initialized()  # a runtime the executor did not start is left running


def test_a_worker_death_without_retries_fails_and_names_the_item(ray_runtime, tmp_path: Path):
    executor = RayExecutor(1, max_retries=0, fault_file=tmp_path / "fault")
    with pytest.raises(RuntimeError, match=r"task of 5 lost its worker 1 time"):
        list(executor.map(operator.neg, [5]))
    assert sorted(RayExecutor(1).map(operator.neg, [1, 2, 3])) == [-3, -2, -1]


def test_gpu_request_follows_the_cluster(ray_runtime):
    """A score cell asks for a GPU only when the cluster has one; GPU workers are reused (max_calls 0)."""
    assert RayExecutor(1, num_gpus="auto").task_gpus(ray_runtime) == 0.0  # this runtime has no GPU
    assert RayExecutor(1, num_gpus=1).task_gpus(ray_runtime) == 1.0
    gpu_task = RayExecutor(1, max_retries=2).remote_task(ray_runtime, 1.0)
    assert gpu_task._default_options["num_gpus"] == 1.0 and gpu_task._default_options["max_calls"] == 0
    assert gpu_task._default_options["max_retries"] == 2
    assert "max_calls" not in RayExecutor(1).remote_task(ray_runtime, 0.0)._default_options


def test_a_unit_error_is_reraised_as_such(ray_runtime):
    with pytest.raises(ZeroDivisionError):
        list(RayExecutor(1).map(partial(operator.truediv, 1), [0]))


def test_generate_cli_on_ray_without_shared_fs(ray_runtime, local_bench: Path, cache: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("CORRUPT_BENCH_CACHE", str(cache))
    monkeypatch.setattr(run, "STAGED_GROUP_BYTES", 20_000)  # payloads capped: groups of about one unit
    out = tmp_path / "ray"
    result = CliRunner().invoke(app, ["generate", MANIFEST, "--out", str(out), "--executor", "ray", "--no-shared-fs"])
    assert result.exit_code == 0, result.output
    assert _lock(out) == _lock(local_bench)


def test_score_on_ray_gives_the_local_table(ray_runtime, local_bench: Path, tmp_path: Path):
    from corrupt_bench.harness.scoring import score

    local = score("oracle-noise", local_bench, tmp_path / "local", config=ORACLE, device="cpu", input_2d="gt", show_progress=False)
    remote = score("oracle-noise", local_bench, tmp_path / "ray", config=ORACLE, device="cpu", input_2d="gt", show_progress=False,
                   executor=RayExecutor(1, num_gpus="auto"))  # fmt: skip
    assert remote.n_computed == local.n_computed == 19 and remote.n_failed == 0
    a, b = _table(tmp_path / "local"), _table(tmp_path / "ray")
    assert len(a) == 19 and (a["mpjpe"] > 3.0).all() and a["error"].isna().all()  # offset + noise, no failed cell
    pd.testing.assert_frame_equal(a, b)
    joints = [pd.read_parquet(run / "per_joint.parquet").sort_values([*KEYS, "joint"]).reset_index(drop=True) for run in (tmp_path / "local", tmp_path / "ray")]
    pd.testing.assert_frame_equal(*joints)
    result = CliRunner().invoke(app, ["score", "--model", "oracle-noise", "--benchmark", str(local_bench), "--out", str(tmp_path / "ray"),
                                      "--config", str(_yaml(tmp_path / "oracle.yaml", ORACLE)), "--device", "cpu", "--input-2d", "gt", "--executor", "ray"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "19 already done" in result.output  # same run key: the Ray run resumes like a local one


def _yaml(path: Path, data: dict) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(data))
    return path
