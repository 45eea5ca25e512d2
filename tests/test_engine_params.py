"""Typed, bounded corruption parameters, parametrised over the registry (a new family is covered
without being named): every shipped table validates, every number is bounded, and a value just
past each bound, a wrong type, NaN or infinity is refused with the key and what is allowed."""

from __future__ import annotations

import math
import shutil
import typing

import pytest
import yaml

from corrupt_bench.engine import ParamError, Params, get_corruption, list_corruptions, load_registry
from corrupt_bench.engine.base import SEVERITIES
from corrupt_bench.engine.params import allowed_text, validate_row
from corrupt_bench.errors import UserError
from corrupt_bench.resources import resource_dir

FIELDS = [(c.name, f) for c in list_corruptions() for f in c.family.param_names]


def _bounds(model: type[Params], name: str) -> dict[str, float]:
    found = {}
    for meta in model.model_fields[name].metadata:
        for kind in ("ge", "gt", "le", "lt"):
            if getattr(meta, kind, None) is not None:
                found[kind] = getattr(meta, kind)
    return found


def _is_literal(model: type[Params], name: str) -> bool:
    return typing.get_origin(model.model_fields[name].annotation) is typing.Literal


def _row(name: str, field: str, value) -> dict:
    """Severity 3 of `name` with `field` set to `value`; a value inside the field's bounds moves the
    other side of an ordered pair along (and zeroes the other field of an exclusive pair), so that
    only `field`'s own bounds decide."""
    corruption = get_corruption(name)
    model = corruption.family.params
    row = corruption.table[3].model_dump()
    row[field] = value
    if not _within(model, field, value):
        return row  # refused by the field's own check, before any rule over two fields
    for low, high in model.ordered:
        if field == low:
            row[high] = max(row[high], value)
        if field == high:
            row[low] = min(row[low], value)
    for pair in model.exclusive:
        if field in pair:
            other = pair[1] if field == pair[0] else pair[0]
            row[other] = type(row[other])(0)
    return row


def _within(model: type[Params], name: str, value) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return False
    if model.model_fields[name].annotation is int and not isinstance(value, int):
        return False
    b = _bounds(model, name)
    return (
        value >= b.get("ge", -math.inf) and value > b.get("gt", -math.inf)
        and value <= b.get("le", math.inf) and value < b.get("lt", math.inf)
    )  # fmt: skip


def _refused(name: str, field: str, value) -> ParamError:
    with pytest.raises(ParamError) as info:
        validate_row(get_corruption(name).family.params, _row(name, field, value))
    return info.value


@pytest.mark.parametrize("name", [c.name for c in list_corruptions()])
def test_every_shipped_table_validates_as_written(name):
    path = resource_dir("corruptions") / f"{name}.yaml"
    raw = yaml.safe_load(path.read_text())
    corruption = get_corruption(name)
    for severity in SEVERITIES:
        row = validate_row(corruption.family.params, raw["severities"][severity])
        assert row == corruption.table[severity]
        assert row.model_dump() == pytest.approx(raw["severities"][severity])  # no value moved


@pytest.mark.parametrize("name,field", FIELDS)
def test_every_number_is_bounded_on_both_sides(name, field):
    model = get_corruption(name).family.params
    if _is_literal(model, field):
        return
    bounds = _bounds(model, field)
    assert {"ge", "gt"} & set(bounds) and {"le", "lt"} & set(bounds), f"{name}.{field} needs finite bounds"
    assert all(math.isfinite(v) for v in bounds.values())


@pytest.mark.parametrize("name,field", FIELDS)
def test_a_value_just_past_each_bound_is_refused(name, field):
    model = get_corruption(name).family.params
    if _is_literal(model, field):
        choices = typing.get_args(model.model_fields[field].annotation)
        for value in choices:
            validate_row(model, _row(name, field, value))
        error = _refused(name, field, "not-" + str(choices[0]))
        assert error.key == field and "allowed: one of" in error.fault
        return
    is_int = model.model_fields[field].annotation is int
    for kind, bound in _bounds(model, field).items():
        step = 1 if is_int else 1e-9 * max(1.0, abs(bound))
        past = {"ge": bound - step, "gt": bound, "le": bound + step, "lt": bound}[kind]
        error = _refused(name, field, past)
        assert error.key == field
        assert f"got {past!r}" in error.fault and allowed_text(model, field) in error.fault
        if kind in ("ge", "le"):  # the bound itself is allowed
            validate_row(model, _row(name, field, bound))


@pytest.mark.parametrize("name,field", FIELDS)
def test_wrong_types_nan_and_infinity_are_refused(name, field):
    model = get_corruption(name).family.params
    if _is_literal(model, field):
        bad = [3, None, True]
    else:
        bad = ["abc", "0.5", True, None, [1], float("nan"), float("inf"), -float("inf")]
        if model.model_fields[field].annotation is int:
            bad.append(2.0)  # a count is an integer, not a float that happens to be whole
    for value in bad:
        assert _refused(name, field, value).key == field, value


@pytest.mark.parametrize("name", [c.name for c in list_corruptions()])
def test_unknown_and_missing_parameters_are_refused(name):
    corruption = get_corruption(name)
    model = corruption.family.params
    row = corruption.table[1].model_dump()
    with pytest.raises(ParamError, match="unknown parameter; allowed: " + ", ".join(model.model_fields)):
        validate_row(model, {**row, "extra_knob": 1})
    first = next(iter(model.model_fields))
    with pytest.raises(ParamError, match=f"key '{first}': missing"):
        validate_row(model, {k: v for k, v in row.items() if k != first})


def test_ordered_pairs_are_checked():
    with pytest.raises(ParamError, match=r"min_missing \(9\) must not exceed max_missing \(8\)"):
        get_corruption("joint_dropout").overridden_row(3, {"min_missing": 9})
    with pytest.raises(ParamError, match="scale_min .* must not exceed scale_max"):
        get_corruption("voc_occluder").overridden_row(1, {"scale_min": 0.5})
    with pytest.raises(ParamError, match="duration_s .* must not exceed window_s"):
        get_corruption("temporal_occlusion").overridden_row(1, {"window_s": 0.2})


def test_overrides_keep_the_registered_table():
    base = get_corruption("jpeg_compression")
    changed = base.with_overrides({2: {"quality": 50}})
    assert changed.table[2].quality == 50 and base.table[2].quality == 18
    assert changed.table[3] is base.table[3]
    assert base.with_overrides({}) is base


@pytest.mark.parametrize(
    "name,old,new,expected",
    [
        ("jpeg_compression", "quality: 15", 'quality: "high"', "key 'quality': got 'high'; allowed: an integer in 1..100"),
        ("jpeg_compression", "quality: 15", "quality: 15.0", "key 'quality': got 15.0; allowed: an integer in 1..100"),
        ("gaussian_noise", "sigma: 0.18", "sigma: abc", "key 'sigma': got 'abc'; allowed: a finite number in [0, 1]"),
        ("gaussian_noise", "sigma: 0.18", "sigma: .nan", "key 'sigma': got nan; allowed: a finite number in [0, 1]"),
        ("block_dropout", "count: 3", "count: 1000000000", "key 'count': got 1000000000; allowed: an integer in 0..64"),
        ("motion_blur", "length: 16", "length: 223084", "key 'length': got 223084; allowed: a finite number in [0, 100]"),
    ],
)  # fmt: skip
def test_a_bad_table_value_names_file_corruption_severity_and_key(tmp_path, name, old, new, expected):
    tables = tmp_path / "corruptions"
    shutil.copytree(resource_dir("corruptions"), tables)
    path = tables / f"{name}.yaml"
    text = path.read_text()
    assert text.count(old) == 1
    path.write_text(text.replace(old, new))
    with pytest.raises(UserError) as info:
        load_registry(tables)
    assert str(info.value) == f"{path}: corruption '{name}', severity 3, {expected}"
