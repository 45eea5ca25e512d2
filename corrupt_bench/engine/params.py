"""Typed, bounded corruption parameters: the schema of one severity row of a table.

Each family declares its parameters as a subclass of `Params`: strict types (a string is not a
number, `true` is not an integer, a float is not an integer), finite numbers only (NaN and
infinity are refused) and bounds that also cap the time and memory one frame may cost (kernel
lengths in px, counts, photon numbers, probabilities in [0, 1], sizes as fractions of the person
box). The bounds reach a little beyond the shipped tables so a manifest can override a severity
without editing code, and no further. Severity tables (`corruptions/*.yaml`) and manifest
`overrides` are validated through these models; a fault is a `ParamError` naming the key, what
was given and what is allowed.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from corrupt_bench.errors import short_repr


class Params(BaseModel):
    """One severity row of a corruption table (subclass per family, fields = parameter names).

    `ordered` lists pairs of fields (low, high) that must satisfy low <= high; `exclusive` lists
    pairs of fields of which at most one may be non-zero (two kinds of a family that do not combine)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)
    ordered: ClassVar[tuple[tuple[str, str], ...]] = ()
    exclusive: ClassVar[tuple[tuple[str, str], ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _no_negative_zero(cls, data: Any) -> Any:
        """-0.0 is 0.0 (found by fuzzing: `uniform(-m, m)` refuses m = -0.0, which passes `ge=0`)."""
        if isinstance(data, dict):
            return {k: 0.0 if isinstance(v, float) and v == 0.0 else v for k, v in data.items()}
        return data

    @model_validator(mode="after")
    def _check_ordered(self) -> Params:
        for low, high in self.ordered:
            a, b = getattr(self, low), getattr(self, high)
            if a > b:
                raise ValueError(f"{low} ({a!r}) must not exceed {high} ({b!r}); allowed: {low} <= {high}")
        for first, second in self.exclusive:
            a, b = getattr(self, first), getattr(self, second)
            if a != 0 and b != 0:
                raise ValueError(
                    f"{first} ({a!r}) and {second} ({b!r}) do not combine; allowed: {first} 0 or {second} 0"
                )
        return self

    def uses_occluder_bank(self) -> bool:
        """Whether these parameters paste objects of an occluder bank (Pascal VOC on a real source)."""
        return False

    def reach_frames(self) -> float:
        """Source frames a clip-level corruption reads beyond a frame (time shifts); 0 for the others."""
        return 0.0


class ParamError(ValueError):
    """A severity row that its family's parameter model refuses: which key, and what is allowed."""

    def __init__(self, key: str | None, fault: str):
        self.key = key  # None: a rule over several keys (the fault names them)
        self.fault = fault
        super().__init__(f"key '{key}': {fault}" if key is not None else fault)


def _number_text(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def allowed_text(model: type[Params], name: str) -> str:
    """What field `name` of `model` accepts, in words: 'an integer in 1..100', 'a number in [0, 1]'."""
    field = model.model_fields[name]
    annotation = field.annotation
    if typing.get_origin(annotation) is typing.Literal:
        return "one of " + ", ".join(repr(v) for v in typing.get_args(annotation))
    lo = hi = None
    lo_open = hi_open = False
    for meta in field.metadata:  # pydantic's Field(ge=, gt=, le=, lt=) constraints
        if getattr(meta, "ge", None) is not None:
            lo = meta.ge
        elif getattr(meta, "gt", None) is not None:
            lo, lo_open = meta.gt, True
        elif getattr(meta, "le", None) is not None:
            hi = meta.le
        elif getattr(meta, "lt", None) is not None:
            hi, hi_open = meta.lt, True
    if annotation is int:
        if lo is not None and hi is not None and not (lo_open or hi_open):
            return f"an integer in {lo}..{hi}"
        return "an integer"
    if annotation is float:
        if lo is None or hi is None:
            return "a finite number"
        left, right = "(" if lo_open else "[", ")" if hi_open else "]"
        return f"a finite number in {left}{_number_text(lo)}, {_number_text(hi)}{right}"
    return f"a value of type {getattr(annotation, '__name__', annotation)}"


def validate_row(model: type[Params], row: Mapping[str, Any]) -> Params:
    """`row` as `model`; raise ParamError naming the first faulty key and what it allows."""
    if not isinstance(row, Mapping):
        raise ParamError(None, f"a severity row must be a mapping of parameters, got {short_repr(row)}")
    try:
        return model.model_validate(dict(row))
    except ValidationError as exc:
        error = exc.errors()[0]
    names = ", ".join(model.model_fields)
    loc = error["loc"]
    if not loc:  # a model validator: a rule over several keys
        raise ParamError(None, error["msg"].removeprefix("Value error, ")) from None
    key = str(loc[0])
    if error["type"] == "extra_forbidden":
        raise ParamError(key, f"unknown parameter; allowed: {names}") from None
    if error["type"] == "missing":
        raise ParamError(key, f"missing; required parameters: {names}") from None
    raise ParamError(key, f"got {short_repr(error.get('input'))}; allowed: {allowed_text(model, key)}") from None
