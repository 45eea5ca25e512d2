"""Seeded, bounded fuzzing of what a user hands the tool: YAML text, manifests and every corruption's
parameters. The only outcomes allowed are success or one `UserError` line; a parameter row that is
accepted must also apply to a clip without an exception (bounds that cap time and memory).

Derandomised (the same examples on every run) and sized so the whole file stays under a minute on two
CPU cores (about 30 s measured); `-m slow` adds test_deep_parameter_fuzz with 3000 examples. Found so
far and fixed: control characters of a user's key in the one line (now escaped by UserError), a NUL
byte raising PyYAML's reader error before parsing, and -0.0 passing `ge=0` then failing numpy's
`uniform(-m, m)` (Params now reads -0.0 as 0.0).
"""

from __future__ import annotations

import math
import typing
import unicodedata

import pytest
import yaml
from engine_frames import test_clip
from fixtures_hostile import TINY
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corrupt_bench.engine import ParamError, corrupt_clip, get_corruption, list_corruptions
from corrupt_bench.errors import UserError
from corrupt_bench.generate.manifest import parse_manifest
from corrupt_bench.safe_yaml import parse_yaml

FUZZ = settings(derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck))


def fuzz(examples: int) -> settings:
    """Derandomised (a fixed sequence of examples), no deadline (CI machines are slow), no example database."""
    return settings(FUZZ, max_examples=examples)


CORRUPTIONS = [c.name for c in list_corruptions()]

BASE_MANIFEST = {**TINY, "output": {"format": "png", "quality": 95}}

# values a user (or an attacker) can write in YAML: every scalar type, the edges of numbers, containers
SCALARS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, -1, 2**31, 2**63, 10**9, 223084]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([float("nan"), float("inf"), -float("inf"), 0.0, -0.0, 1e-300, 1e300]),
    st.booleans(),
    st.none(),
    st.text(max_size=12),
    st.sampled_from(["", "S99", "Walkin", "../x", "/abs", "1", ".nan", "abc", "gaussian_noise"]),
)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)


def _one_line(exc: UserError) -> None:
    text = str(exc)
    assert text and len(text.splitlines()) == 1, repr(text)
    assert not any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in text), repr(text)  # no control character
    assert len(text) < 2000 and "Traceback" not in text


def _paths(data, prefix=()):
    """Every (path, value) of nested dicts and lists."""
    yield prefix, data
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _paths(value, (*prefix, i))


def _set(data, path, value):
    if not path:
        return value
    import copy

    data = copy.deepcopy(data)
    node = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return data


PATHS = [p for p, _ in _paths(BASE_MANIFEST)]


@fuzz(500)
@given(st.lists(st.tuples(st.sampled_from(PATHS), VALUES), min_size=1, max_size=3))
def test_manifest_fuzz_is_valid_or_one_line(changes):
    """A manifest with one to three of its values replaced by anything YAML can hold: validated or one line."""
    data = BASE_MANIFEST
    for path, value in changes:
        try:
            data = _set(data, path, value)
        except (KeyError, IndexError, TypeError):  # an earlier change replaced the container
            continue
    text = yaml.safe_dump(data, allow_unicode=True)
    try:
        parse_manifest(parse_yaml(text, "fuzz.yaml", "manifest"), "fuzz.yaml")
    except UserError as exc:
        _one_line(exc)


@fuzz(400)
@given(
    st.sampled_from(CORRUPTIONS),
    st.integers(min_value=1, max_value=5),
    st.dictionaries(st.text(min_size=1, max_size=20), VALUES, max_size=2),
)
def test_manifest_override_fuzz_is_valid_or_one_line(name, severity, changes):
    """Overrides of any key (known or not) with any value: validated or one line naming the key."""
    data = _set(BASE_MANIFEST, ("variants", 0, "corruptions", 0), {"name": name, "severities": [severity], "overrides": {severity: changes}})
    try:
        parse_manifest(parse_yaml(yaml.safe_dump(data), "fuzz.yaml", "manifest"), "fuzz.yaml")
    except UserError as exc:
        _one_line(exc)


YAML_ALPHABET = st.sampled_from(list("ab:-[]{},&*!|>'\"#%@`?\n\t 0123456789.<") + ["!!int", "!!float", "!!timestamp", "&a", "*a", "<<:", "\\x", "\ufeff", "\x00"])


@fuzz(1500)
@given(st.lists(YAML_ALPHABET, max_size=60).map("".join))
def test_yaml_text_fuzz_is_data_or_one_line(text):
    """Any text: plain data, or one line (no anchors, tags, duplicate keys, constructor errors, recursion)."""
    try:
        parse_yaml(text, "fuzz.yaml")
    except UserError as exc:
        _one_line(exc)


def _field_values(model, field: str):
    """Values around a field's bounds (both sides, the edges, inside) plus anything else YAML can hold."""
    info = model.model_fields[field]
    if typing.get_origin(info.annotation) is typing.Literal:
        edges = st.sampled_from([*typing.get_args(info.annotation), "nosuch", 1])
    else:
        lo = hi = None
        for meta in info.metadata:
            lo = getattr(meta, "ge", None) if getattr(meta, "ge", None) is not None else (getattr(meta, "gt", None) if getattr(meta, "gt", None) is not None else lo)
            hi = getattr(meta, "le", None) if getattr(meta, "le", None) is not None else (getattr(meta, "lt", None) if getattr(meta, "lt", None) is not None else hi)
        assert lo is not None and hi is not None, f"{model.__name__}.{field} is unbounded"
        if info.annotation is int:
            inside = st.integers(min_value=int(lo), max_value=int(hi))
            edges = st.sampled_from([int(lo) - 1, int(lo), int(hi), int(hi) + 1, float(hi)]) | inside
        else:
            inside = st.floats(min_value=float(lo), max_value=float(hi))
            edges = st.sampled_from([float(lo), float(hi), math.nextafter(float(hi), math.inf), float(lo) - 1.0]) | inside
    return edges | SCALARS


@st.composite
def _override(draw):
    corruption = get_corruption(draw(st.sampled_from(CORRUPTIONS)))
    model = corruption.family.params
    fields = draw(st.lists(st.sampled_from(sorted(model.model_fields)), min_size=1, max_size=len(model.model_fields), unique=True))
    changes = {f: draw(_field_values(model, f)) for f in fields}
    return corruption, draw(st.integers(min_value=1, max_value=5)), changes


@fuzz(1000)
@given(_override())
def test_every_corruption_parameter_is_valid_or_one_line_and_applies(case):
    """Every parameter of every corruption: refused with one line naming the key, or accepted and then
    applied to a two-view clip without an exception (the bounds also cap time and memory)."""
    _check_override(case)


@pytest.mark.slow
@fuzz(3000)
@given(_override())
def test_deep_parameter_fuzz(case):
    """The same property with ten times the examples (not in CI)."""
    _check_override(case)


def _check_override(case) -> None:
    corruption, severity, changes = case
    try:
        overridden = corruption.with_overrides({severity: changes})
    except ParamError as exc:
        text = str(exc)
        assert "\n" not in text and len(text) < 2000
        assert exc.key is None or exc.key in changes or exc.key in corruption.family.param_names
        return
    clip = test_clip(n_views=2, n_frames=3, size=48)
    corrupted, record = corrupt_clip(clip, corruption.name, severity, seed=3, corruption=overridden)
    if corrupted.images is not None:
        assert corrupted.images.shape == clip.images.shape and corrupted.images.dtype == clip.images.dtype
    assert record.joints_2d.shape == clip.joints_2d.shape
