"""VideoPose3D npz files written in their real structure (pickled dicts through np.savez_compressed)."""

from __future__ import annotations

import numpy as np
import pytest

from corrupt_bench.data.skeleton import H36M17_FROM_RAW, JOINTS_LEFT, JOINTS_RIGHT
from corrupt_bench.data.vp3d_npz import pair_2d_with_3d, read_positions_2d, read_positions_3d, to_h36m17_mm
from corrupt_bench.errors import UserError

METADATA = {"num_joints": 17, "keypoints_symmetry": [list(JOINTS_LEFT), list(JOINTS_RIGHT)]}


def positions_3d(rng: np.random.Generator) -> dict:
    return {
        "S1": {"Walking": rng.normal(0, 1, (12, 32, 3)).astype(np.float32),
               "Photo 1": rng.normal(0, 1, (9, 32, 3)).astype(np.float32)},
        "S9": {"Eating 2": rng.normal(0, 1, (7, 32, 3)).astype(np.float32)},
    }  # fmt: skip


def positions_2d(p3d: dict, rng: np.random.Generator, extra: int = 2) -> dict:
    return {
        subject: {action: [rng.uniform(0, 1000, (len(p) + extra, 17, 2)).astype(np.float32) for _ in range(4)]
                  for action, p in actions.items()}
        for subject, actions in p3d.items()
    }  # fmt: skip


def test_round_trip_of_the_real_structure(tmp_path):
    rng = np.random.default_rng(0)
    p3d = positions_3d(rng)
    p2d = positions_2d(p3d, rng)
    np.savez_compressed(tmp_path / "data_3d_h36m.npz", positions_3d=p3d)
    np.savez_compressed(tmp_path / "data_2d_h36m_gt.npz", positions_2d=p2d, metadata=METADATA)

    got3 = read_positions_3d(tmp_path / "data_3d_h36m.npz")
    assert got3.keys() == p3d.keys() and got3["S1"].keys() == p3d["S1"].keys()
    np.testing.assert_array_equal(got3["S9"]["Eating 2"], p3d["S9"]["Eating 2"])
    got2, meta = read_positions_2d(tmp_path / "data_2d_h36m_gt.npz")
    assert meta == METADATA
    np.testing.assert_array_equal(got2["S1"]["Photo 1"][3], p2d["S1"]["Photo 1"][3])

    paired = pair_2d_with_3d(got3, got2, tmp_path / "data_2d_h36m_gt.npz")
    assert [len(v) for v in paired["S1"]["Walking"]] == [12] * 4  # longer keypoints cut to the mocap
    np.testing.assert_array_equal(paired["S1"]["Walking"][0], p2d["S1"]["Walking"][0][:12])

    mm = to_h36m17_mm(got3["S1"]["Walking"])
    assert mm.shape == (12, 17, 3)
    np.testing.assert_allclose(mm[:, 9], p3d["S1"]["Walking"][:, H36M17_FROM_RAW[9]] * 1000.0, rtol=1e-6)


def test_pickled_code_is_never_run(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    np.savez_compressed(tmp_path / "evil.npz", positions_3d={"S1": {"Walking": Payload()}})
    with pytest.raises(UserError, match=r"refusing to load global '(builtins|io)\.open'") as err:
        read_positions_3d(tmp_path / "evil.npz")
    assert err.value.path == tmp_path / "evil.npz"
    assert not marker.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"positions_2d": {}}, "no 'positions_3d' array in the npz"),
        ({"positions_3d": np.zeros((3, 32, 3))}, "expected a pickled dict"),
        ({"positions_3d": {}}, "positions_3d must be a non-empty dict"),
        ({"positions_3d": {"S1": [1, 2]}}, r"positions_3d\['S1'\] must be a non-empty dict, found list"),
        (
            {"positions_3d": {"S1": {"Walking": np.zeros((5, 17, 3))}}},
            r"has shape \(5, 17, 3\), expected \(N, 32, 3\)",
        ),
        (
            {"positions_3d": {"S1": {"Walking": np.zeros((5, 32, 3), dtype=np.int32)}}},
            "must be a float array",
        ),
        ({"positions_3d": {"S1": {"Walking": np.full((5, 32, 3), 1500.0)}}}, "not metres"),
        ({"positions_3d": {"S1": {"Walking": np.full((5, 32, 3), np.nan)}}}, "NaN"),
    ],
)
def test_structure_errors_of_the_3d_file(tmp_path, content, message):
    path = tmp_path / "data_3d_h36m.npz"
    np.savez_compressed(path, **content)
    with pytest.raises(UserError, match=message) as err:
        read_positions_3d(path)
    assert err.value.path == path


@pytest.mark.parametrize(
    ("positions", "metadata", "message"),
    [
        ({"S1": {"Walking": [np.zeros((5, 17, 2))] * 3}}, METADATA, "must be a list of 4 arrays"),
        (
            {"S1": {"Walking": [np.zeros((5, 16, 2))] * 4}},
            METADATA,
            r"\[0\] has shape \(5, 16, 2\), expected \(N, 17, 2\)",
        ),
        ({"S1": {"Walking": [np.zeros((5, 17, 2))] * 4}}, {"layout_name": "coco"}, "num_joints"),
        (
            {"S1": {"Walking": [np.zeros((5, 17, 2))] * 4}},
            {"num_joints": 17, "keypoints_symmetry": [[1], [40]]},
            "keypoints_symmetry",
        ),
    ],
)
def test_structure_errors_of_the_2d_file(tmp_path, positions, metadata, message):
    path = tmp_path / "data_2d_h36m_cpn.npz"
    np.savez_compressed(path, positions_2d=positions, metadata=metadata)
    with pytest.raises(UserError, match=message) as err:
        read_positions_2d(path)
    assert err.value.path == path


def test_not_an_npz_and_missing_file(tmp_path):
    path = tmp_path / "data_3d_h36m.npz"
    path.write_bytes(b"PK\x03\x04 but not really")
    with pytest.raises(UserError, match="unreadable npz member 'positions_3d'"):
        read_positions_3d(path)
    with pytest.raises(UserError, match="file not found"):
        read_positions_2d(tmp_path / "none.npz")


def test_keypoints_shorter_than_mocap_or_missing(tmp_path):
    rng = np.random.default_rng(1)
    p3d = positions_3d(rng)
    short = positions_2d(p3d, rng, extra=-1)
    with pytest.raises(
        UserError, match=r"positions_2d\['S1'\]\['Walking'\]\[0\] has 11 frames, fewer than the 12"
    ):
        pair_2d_with_3d(p3d, short, tmp_path / "2d.npz")
    partial = positions_2d(p3d, rng)
    del partial["S9"]["Eating 2"]
    with pytest.raises(UserError, match="no 2D keypoints for S9 'Eating 2'"):
        pair_2d_with_3d(p3d, partial, tmp_path / "2d.npz")
