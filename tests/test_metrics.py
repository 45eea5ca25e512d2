"""Metrics: hand-computed values, invariances, orderings, agreement with loop-based reference code, torch."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from corrupt_bench.harness import metrics as M

J = 17


def rotation(rng: np.random.Generator) -> np.ndarray:
    """A random proper rotation (det +1)."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q @ np.diag(np.sign(np.diag(r)))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return q


def random_poses(rng: np.random.Generator, n: int) -> np.ndarray:
    g = rng.normal(size=(n, J, 3)) * 200.0
    return g - g[:, :1]


# --- plain loop-based reference implementations ------------------------------------------------
def loop_mpjpe(pred, gt):
    total, count = 0.0, 0
    for f in range(len(pred)):
        for j in range(J):
            total += math.sqrt(sum((pred[f][j][k] - gt[f][j][k]) ** 2 for k in range(3)))
            count += 1
    return total / count


def loop_procrustes(p, g):
    """Kabsch/Umeyama for one pose with explicit loops for the sums."""
    mp = [sum(p[j][k] for j in range(J)) / J for k in range(3)]
    mg = [sum(g[j][k] for j in range(J)) / J for k in range(3)]
    x = np.array([[p[j][k] - mp[k] for k in range(3)] for j in range(J)])
    y = np.array([[g[j][k] - mg[k] for k in range(3)] for j in range(J)])
    h = np.zeros((3, 3))
    for j in range(J):
        for a in range(3):
            for b in range(3):
                h[a, b] += x[j, a] * y[j, b]
    u, s, vt = np.linalg.svd(h)
    d = np.eye(3)
    if np.linalg.det(vt.T @ u.T) < 0:
        d[2, 2] = -1
    r = vt.T @ d @ u.T
    scale = np.trace(np.diag(s) @ d) / sum(x[j, k] ** 2 for j in range(J) for k in range(3))
    return [[scale * sum(r[a, b] * x[j, b] for b in range(3)) + mg[a] for a in range(3)] for j in range(J)]


def loop_p_mpjpe(pred, gt):
    return loop_mpjpe([loop_procrustes(pred[f], gt[f]) for f in range(len(pred))], gt)


def loop_n_mpjpe(pred, gt):
    aligned = []
    for f in range(len(pred)):
        num = sum(pred[f][j][k] * gt[f][j][k] for j in range(J) for k in range(3))
        den = sum(pred[f][j][k] ** 2 for j in range(J) for k in range(3))
        aligned.append([[pred[f][j][k] * num / den for k in range(3)] for j in range(J)])
    return loop_mpjpe(aligned, gt)


def loop_diff_error(pred, gt, order):
    def diff(x, f, j, k):
        if order == 1:
            return x[f + 1][j][k] - x[f][j][k]
        return x[f][j][k] - 2 * x[f + 1][j][k] + x[f + 2][j][k]

    total, count = 0.0, 0
    for f in range(len(pred) - order):
        for j in range(J):
            total += math.sqrt(sum((diff(pred, f, j, k) - diff(gt, f, j, k)) ** 2 for k in range(3)))
            count += 1
    return total / count


def loop_pck(pred, gt, threshold):
    hits = count = 0
    for f in range(len(pred)):
        for j in range(J):
            e = math.sqrt(sum((pred[f][j][k] - gt[f][j][k]) ** 2 for k in range(3)))
            hits += e < threshold
            count += 1
    return hits / count


# --- hand-computed values ------------------------------------------------------------------------
def test_hand_computed_mpjpe_pck_auc():
    gt = np.zeros((1, J, 3))
    pred = np.zeros((1, J, 3))
    pred[0, 1] = [3.0, 4.0, 0.0]  # error 5
    pred[0, 2] = [0.0, 0.0, 200.0]  # error 200
    assert M.mpjpe(pred, gt) == pytest.approx(205.0 / 17)
    assert M.pck3d(pred, gt) == pytest.approx(16 / 17)  # only the 200 mm joint misses
    # AUC: 15 zero-error joints hit at every threshold but 0 (30/31); the 5 mm joint from 10 mm (29/31)
    assert M.auc(pred, gt) == pytest.approx((15 * 30 / 31 + 29 / 31 + 0) / 17)
    per_joint = M.mpjpe_per_joint(pred, gt)
    assert per_joint.shape == (J,) and per_joint[1] == 5.0 and per_joint[2] == 200.0


def test_hand_computed_mask_and_temporal():
    gt = np.zeros((4, J, 3))
    pred = np.zeros((4, J, 3))
    pred[:, 3, 0] = [0.0, 1.0, 4.0, 9.0]  # joint 3 moves x = t^2: velocity error 1, 3, 5; acceleration 2, 2
    mask = np.zeros((4, J), bool)
    mask[:, 3] = True
    assert M.mpjpe(pred, gt, mask) == pytest.approx(14.0 / 4)
    assert M.mpjpe(pred, gt, ~mask) == 0.0
    assert math.isnan(M.mpjpe(pred, gt, np.zeros((4, J), bool)))
    assert M.mpjve(pred, gt) == pytest.approx(9.0 / (3 * J))
    assert M.mpjve(pred, gt, mask) == pytest.approx(3.0)
    assert M.accel_error(pred, gt) == pytest.approx(4.0 / (2 * J))
    assert M.accel_error(pred, gt, mask) == pytest.approx(2.0)
    # a joint dropped at frame 1 removes both velocity pairs that touch it
    m2 = mask.copy()
    m2[1, 3] = False
    assert M.mpjve(pred, gt, m2) == pytest.approx(5.0)
    assert math.isnan(M.accel_error(pred, gt, m2))


def test_hand_computed_n_mpjpe_and_p_mpjpe():
    rng = np.random.default_rng(1)
    gt = random_poses(rng, 2)
    assert M.n_mpjpe(2.5 * gt, gt) == pytest.approx(0.0, abs=1e-9)  # scale undone
    assert M.mpjpe(2.5 * gt, gt) == pytest.approx(1.5 * np.linalg.norm(gt, axis=-1).mean())
    mirrored = gt * np.array([-1.0, 1.0, 1.0])
    # a reflection cannot be undone by a rotation: the reflection fix keeps the error above zero
    assert M.p_mpjpe(mirrored, gt) > 1.0


# --- invariances and orderings ---------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), scale=st.floats(0.2, 5.0), shift=st.floats(-3000, 3000))
def test_p_mpjpe_invariant_to_similarity_of_prediction(seed, scale, shift):
    rng = np.random.default_rng(seed)
    gt = random_poses(rng, 3)
    pred = gt + rng.normal(size=gt.shape) * 30.0
    moved = scale * pred @ rotation(rng).T + shift * rng.normal(size=3)
    assert M.p_mpjpe(moved, gt) == pytest.approx(M.p_mpjpe(pred, gt), rel=1e-7, abs=1e-7)


@settings(max_examples=60, deadline=None)
@given(
    pred=arrays(np.float64, (2, J, 3), elements=st.floats(-2000, 2000)),
    gt=arrays(np.float64, (2, J, 3), elements=st.floats(-2000, 2000)),
)
def test_alignments_never_increase_the_squared_error(pred, gt):
    """What the alignments minimise (the root-mean-square error) is ordered P <= N <= none for any input."""

    def rms(a):
        return float(np.sqrt(np.mean(np.sum((a - gt) ** 2, axis=-1))))

    tol = 1e-6 * (1.0 + np.abs(gt).max() + np.abs(pred).max())
    if np.all(np.sum(pred**2, axis=(-1, -2)) > 1e-6):
        assert rms(M.procrustes_align(pred, gt)) <= rms(M.scale_align(pred, gt)) + tol
        assert rms(M.scale_align(pred, gt)) <= rms(pred) + tol


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), scale=st.floats(0.8, 1.2), noise=st.floats(1.0, 100.0))
def test_p_mpjpe_le_n_mpjpe_le_mpjpe_on_random_poses(seed, scale, noise):
    """On random root-relative poses (32 per draw) the mean errors keep the order P-MPJPE <= N-MPJPE <= MPJPE.

    (Per single pose it can fail by a hair: the alignments minimise squared, not mean, error.)"""
    rng = np.random.default_rng(seed)
    gt = random_poses(rng, 32)
    pred = gt * scale + rng.normal(size=gt.shape) * noise
    pred -= pred[:, :1]
    p, n, m = M.p_mpjpe(pred, gt), M.n_mpjpe(pred, gt), M.mpjpe(pred, gt)
    assert p <= n + 1e-9
    assert n <= m + 1e-9


# --- agreement with the loop implementations ----------------------------------------------------------
@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_vectorised_metrics_agree_with_loops(seed):
    rng = np.random.default_rng(seed)
    gt = random_poses(rng, 5) + rng.normal(size=3) * 100
    pred = 1.1 * gt @ rotation(rng).T + rng.normal(size=gt.shape) * 40.0
    g, p = gt.tolist(), pred.tolist()
    assert M.mpjpe(pred, gt) == pytest.approx(loop_mpjpe(p, g), abs=1e-6)
    assert M.p_mpjpe(pred, gt) == pytest.approx(loop_p_mpjpe(p, g), abs=1e-6)
    assert M.n_mpjpe(pred, gt) == pytest.approx(loop_n_mpjpe(p, g), abs=1e-6)
    assert M.mpjve(pred, gt) == pytest.approx(loop_diff_error(p, g, 1), abs=1e-6)
    assert M.accel_error(pred, gt) == pytest.approx(loop_diff_error(p, g, 2), abs=1e-6)
    assert M.pck3d(pred, gt) == pytest.approx(loop_pck(p, g, 150.0), abs=1e-12)
    expected_auc = sum(loop_pck(p, g, t) for t in np.linspace(0, 150, 31)) / 31
    assert M.auc(pred, gt) == pytest.approx(expected_auc, abs=1e-12)


def test_per_joint_means_match_the_mean():
    rng = np.random.default_rng(3)
    gt = random_poses(rng, 6)
    pred = gt + rng.normal(size=gt.shape) * 20
    for name, spec in M.METRICS.items():
        per_joint = spec.per_joint(pred, gt)
        assert per_joint.shape == (J,)
        assert float(np.mean(per_joint)) == pytest.approx(spec.fn(pred, gt), rel=1e-9), name


def test_torch_inputs_match_numpy():
    rng = np.random.default_rng(4)
    gt = random_poses(rng, 6)
    pred = gt + rng.normal(size=gt.shape) * 25
    mask = rng.random((6, J)) > 0.3
    for name, spec in M.METRICS.items():
        expected = spec.fn(pred, gt, mask)
        got = spec.fn(torch.tensor(pred), torch.tensor(gt), torch.tensor(mask))
        assert isinstance(got, torch.Tensor)
        assert float(got) == pytest.approx(expected, rel=1e-9, abs=1e-9), name
        got_joint = spec.per_joint(torch.tensor(pred), torch.tensor(gt))
        np.testing.assert_allclose(got_joint.numpy(), spec.per_joint(pred, gt), rtol=1e-9, atol=1e-9)


def test_registry_directions_and_units():
    """Errors are lower-is-better, the two fractions higher-is-better; the error form of a fraction is 1 - v."""
    better_high = {name for name, spec in M.METRICS.items() if spec.higher_is_better}
    assert better_high == {"pck3d", "auc"}
    assert all(M.METRICS[n].unit == "fraction" for n in better_high)
    assert {M.METRICS[n].unit for n in M.METRICS if n not in better_high} <= {"mm", "mm/frame", "mm/frame^2"}
    assert M.METRICS["auc"].error(0.75) == pytest.approx(0.25) and M.METRICS["mpjpe"].error(40.0) == 40.0
    with pytest.raises(ValueError, match="unknown metric 'mpjep'"):
        M.metric("mpjep")


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="share a shape"):
        M.mpjpe(np.zeros((2, J, 3)), np.zeros((3, J, 3)))
