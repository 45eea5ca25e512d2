"""VideoPose3D npz files written in their real structure (pickled dicts through np.savez_compressed)."""

from __future__ import annotations

import io
import os
import pickle
import struct
import zipfile

import numpy as np
import pytest

from corrupt_bench.data import vp3d_npz
from corrupt_bench.data.skeleton import H36M17_FROM_RAW, JOINTS_LEFT, JOINTS_RIGHT
from corrupt_bench.data.vp3d_npz import (
    keypoint_file,
    list_keypoint_files,
    pair_2d_with_3d,
    read_keypoints_2d,
    read_positions_2d,
    read_positions_3d,
    to_h36m17_mm,
)
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


# --- files written by numpy <= 1.16 (pickle protocol 2) and hostile pickles ---------------------


def _object_array(value) -> np.ndarray:
    array = np.empty((), dtype=object)
    array[()] = value
    return array


def _npy_of_pickle(pickled: bytes) -> bytes:
    """An .npy holding a 0-d object array whose content is `pickled` (header as numpy writes it)."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "|O", "fortran_order": False, "shape": ()})
    return buffer.getvalue() + pickled


def write_npz_numpy116(path, **members) -> dict[str, bytes]:
    """An npz the way numpy 1.16 wrote VideoPose3D's dicts: its `write_array` wrote the 1.0 header, then
    `pickle.dump(array, fp, protocol=2)` (numpy 2 hard-codes protocol 4 there, so it is done by hand),
    into a deflated zip member; the numpy globals carry numpy 1.x's module name. Returns the members."""
    pickles = {}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, value in members.items():
            pickled = pickle.dumps(_object_array(value), protocol=2)
            data = _npy_of_pickle(pickled.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n"))
            pickles[name] = data
            archive.writestr(f"{name}.npy", data)
    return pickles


def write_npz_pickle(path, name: str, pickled: bytes) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{name}.npy", _npy_of_pickle(pickled))


def test_files_written_by_numpy_1_16_are_read(tmp_path):
    """The structure of data_3d_h36m.npz and data_2d_h36m_<name>.npz, pickled as numpy 1.16 did."""
    rng = np.random.default_rng(3)
    p3d = positions_3d(rng)
    p3d["S1"]["Empty"] = np.zeros((0, 32, 3), np.float32)  # protocol 2 writes empty bytes as bytes()
    p2d = positions_2d(p3d, rng)
    metadata = {"layout_name": "h36m", "num_joints": 17, "keypoints_symmetry": [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]}
    pickles = write_npz_numpy116(tmp_path / "data_3d_h36m.npz", positions_3d=p3d)
    pickles |= write_npz_numpy116(tmp_path / "data_2d_h36m_cpn_ft_h36m_dbb.npz", positions_2d=p2d, metadata=metadata)
    # what makes these files old: protocol 2, bytes through _codecs.encode, numpy 1.x module names
    assert pickles["positions_3d"].count(b"\x80\x02") == 1
    for blob in pickles.values():
        assert b"c_codecs\nencode\n" in blob and b"cnumpy.core.multiarray\n_reconstruct\n" in blob
    assert b"c__builtin__\nbytes\n" in pickles["positions_3d"]

    with pytest.raises(UserError, match="positions_3d\\['S1'\\]\\['Empty'\\] has shape \\(0, 32, 3\\)"):
        read_positions_3d(tmp_path / "data_3d_h36m.npz")  # read, then refused for being empty
    del p3d["S1"]["Empty"], p2d["S1"]["Empty"]
    write_npz_numpy116(tmp_path / "data_3d_h36m.npz", positions_3d=p3d)
    write_npz_numpy116(tmp_path / "data_2d_h36m_cpn_ft_h36m_dbb.npz", positions_2d=p2d, metadata=metadata)
    got3 = read_positions_3d(tmp_path / "data_3d_h36m.npz")
    for subject, actions in p3d.items():
        for action, poses in actions.items():
            assert got3[subject][action].dtype == np.float32
            np.testing.assert_array_equal(got3[subject][action], poses)
    keypoints = read_keypoints_2d(keypoint_file(tmp_path / "data_3d_h36m.npz", "cpn_ft_h36m_dbb"))
    assert keypoints.name == "cpn_ft_h36m_dbb" and keypoints.metadata == metadata and keypoints.confidences is None
    np.testing.assert_array_equal(keypoints.positions["S9"]["Eating 2"][2], p2d["S9"]["Eating 2"][2])


def test_detection_files_with_a_confidence_channel(tmp_path):
    rng = np.random.default_rng(4)
    p3d = positions_3d(rng)
    p2d = {s: {a: [np.concatenate([v, rng.uniform(0, 1, v.shape[:2] + (1,)).astype(np.float32)], axis=-1) for v in views]
               for a, views in actions.items()} for s, actions in positions_2d(p3d, rng).items()}  # fmt: skip
    write_npz_numpy116(tmp_path / "data_2d_h36m_detectron_ft_h36m.npz", positions_2d=p2d, metadata=METADATA)
    np.savez_compressed(tmp_path / "data_2d_h36m_gt.npz", positions_2d=positions_2d(p3d, rng), metadata=METADATA)
    (tmp_path / "data_2d_h36m_notes.txt").write_text("not a keypoint file")
    assert list(list_keypoint_files(tmp_path)) == ["detectron_ft_h36m", "gt"]
    keypoints = read_keypoints_2d(keypoint_file(tmp_path, "detectron_ft_h36m"))
    view = p2d["S1"]["Walking"][1]
    np.testing.assert_array_equal(keypoints.positions["S1"]["Walking"][1], view[..., :2])
    np.testing.assert_array_equal(keypoints.confidences["S1"]["Walking"][1], view[..., 2])
    xy, _ = read_positions_2d(keypoints.path)  # the older API gives x, y only
    assert xy["S1"]["Walking"][1].shape[-1] == 2
    with pytest.raises(UserError, match="no data_2d_h36m_detectron_ft.npz; did you mean 'detectron_ft_h36m'") as err:
        keypoint_file(tmp_path / "data_3d_h36m.npz", "detectron_ft")
    assert err.value.path == tmp_path
    with pytest.raises(UserError, match="present: detectron_ft_h36m, gt"):
        keypoint_file(tmp_path, "zzz")
    with pytest.raises(UserError, match="must be letters, digits"):
        keypoint_file(tmp_path, "../data_3d_h36m")


class _System:
    """Would run a shell command when unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _global_call(module: str, name: str, args: bytes) -> bytes:
    """A protocol-2 pickle calling module.name with the pickled argument tuple `args`."""
    return b"\x80\x02c" + module.encode() + b"\n" + name.encode() + b"\n" + args + b"R."


HOSTILE = {
    "os.system via __reduce__": (None, r"refusing to load global 'posix\.system'"),
    "_codecs.encode of bytes": (_global_call("_codecs", "encode", b"C\x03abcX\x04\x00\x00\x00zlib\x86"),
                                r"refusing _codecs\.encode of a bytes with 'zlib'"),
    "_codecs.encode of text with another codec": (_global_call("_codecs", "encode", b"X\x03\x00\x00\x00abcX\x05\x00\x00\x00rot13\x86"),
                                                  r"refusing _codecs\.encode of a str with 'rot13'"),
    "builtins.eval": (_global_call("builtins", "eval", b"X\x03\x00\x00\x001+1\x85"), r"refusing to load global 'builtins\.eval'"),
    "numpy.load": (_global_call("numpy", "load", b"X\x01\x00\x00\x00x\x85"), r"refusing to load global 'numpy\.load'"),
    "bytes with a size": (_global_call("__builtin__", "bytes", b"J\x00\x00\x00\x40\x85"), r"refusing bytes\(\) with arguments"),
    "ndarray called": (_global_call("numpy", "ndarray", b"J\x00\x00\x00\x40\x85\x85"), "refusing to call numpy.ndarray"),
    "a 2**40-byte declared length": (b"\x80\x04\x8e" + struct.pack("<Q", 2**40) + b"abc.", "expected 1099511627776 bytes"),
    "a huge memo index": (b"\x80\x02]r\xff\xff\xff\x7f.", "memo index 2147483647"),
    "an object array that lies about its size": (
        pickle.dumps(np.array([1, 2], dtype=object), protocol=2).replace(b"K\x02\x85", b"J\x00\x00\x00\x10\x85"),
        r"object array of shape \(268435456,\) holds 2 items"),
    "the extension registry": (b"\x80\x02\x82\x01.", "refusing opcode EXT1"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_pickles_are_refused_in_one_line(tmp_path, case):
    marker = tmp_path / "ran"
    pickled, message = HOSTILE[case]
    if pickled is None:
        pickled = pickle.dumps(_object_array({"S1": {"Walking": _System(marker)}}), protocol=2)
    path = tmp_path / "data_3d_h36m.npz"
    write_npz_pickle(path, "positions_3d", pickled)
    with pytest.raises(UserError, match=message) as err:
        read_positions_3d(path)
    assert err.value.path == path and "\n" not in str(err.value)
    assert str(err.value).startswith(f"{path}: unreadable npz member 'positions_3d'")
    assert not marker.exists()


def test_a_member_that_would_decompress_implausibly_is_not_read(tmp_path, monkeypatch):
    monkeypatch.setattr(vp3d_npz, "BOMB_FLOOR", 1 << 16)
    path = tmp_path / "data_3d_h36m.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("positions_3d.npy", _npy_of_pickle(b"\x00" * (1 << 20)))
    with pytest.raises(UserError, match="would grow from .* to 1048704 bytes: not a data file"):
        read_positions_3d(path)
    monkeypatch.setattr(vp3d_npz, "MAX_MEMBER_BYTES", 1 << 10)
    with pytest.raises(UserError, match="declares 1048704 bytes, more than 1024"):
        read_positions_3d(path)


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"num_joints": 17, "keypoints_symmetry": 5}, r"keypoints_symmetry'\] must be two lists of joint indices below 17, found int"),
        ({"num_joints": 17, "keypoints_symmetry": [[1, 2]]}, "found list of 1"),
        ({"num_joints": 17, "keypoints_symmetry": [[1, "a"], [2, 3]]}, "keypoints_symmetry"),
        ({"num_joints": 17, "keypoints_symmetry": [[1.5], [2]]}, "keypoints_symmetry"),
        ({"num_joints": "17"}, r"num_joints'\] must be an integer in 1..1000, found '17'"),
        ({"num_joints": True}, "num_joints"),
        ({"num_joints": 10**9}, "num_joints"),
        ({"num_joints": list(range(10**5))}, r"found \[0, 1, 2, 3, 4, 5, \.\.\.\]"),
        ({"num_joints": 17, "layout_name": 3}, r"layout_name'\] must be a string"),
        (_object_array([1, 2]), "metadata must be a non-empty dict, found list"),
        (np.array([{}, None]), r"'metadata' is a object array of shape \(2,\), expected a pickled dict"),
    ],
)
def test_odd_metadata_is_a_one_line_error(tmp_path, metadata, message):
    path = tmp_path / "data_2d_h36m_odd.npz"
    np.savez_compressed(path, positions_2d={"S1": {"Walking": [np.zeros((5, 17, 2))] * 4}}, metadata=metadata)
    with pytest.raises(UserError, match=message) as err:
        read_keypoints_2d(path)
    assert err.value.path == path and "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("views", "message"),
    [
        ([np.zeros((5, 17, 4))] * 4, r"\[0\] has shape \(5, 17, 4\), expected \(N, 17, 2\)"),
        ([np.zeros((5, 17))] * 4, r"\[0\] has shape \(5, 17\), expected \(N, 17, 2\)"),
        ([np.zeros((5, 17, 2))] * 3 + [np.zeros((5, 17, 3))], "mixes arrays of 2 and 3 channels"),
        ([np.zeros((5, 17, 2))] * 3 + ["x"], r"\[3\] must be a float array, found str"),
        ({"a": 1}, "must be a list of 4 arrays"),
    ],
)
def test_odd_2d_arrays_are_one_line_errors(tmp_path, views, message):
    path = tmp_path / "data_2d_h36m_odd.npz"
    np.savez_compressed(path, positions_2d={"S1": {"Walking": views}}, metadata=METADATA)
    with pytest.raises(UserError, match=message) as err:
        read_keypoints_2d(path)
    assert "\n" not in str(err.value)
