"""The corruption registry: every family joined with its versioned severity table.

The one module that knows every family (it imports them; nothing imports it back but the modules
above it: `engine.corrupt`, the package face, `generate`). A table is read with `safe_yaml.load_yaml`,
validated as a whole (strict, `extra="forbid"`) and row by row through the family's parameter
model; a fault is one `UserError` naming the file, the corruption, the severity and the key.
"""

from __future__ import annotations

import difflib
import fnmatch
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from corrupt_bench.engine.base import SEVERITIES, Corruption, Family, FrameContext, Modality
from corrupt_bench.engine.blur import FAMILIES as BLUR
from corrupt_bench.engine.keypoints import FAMILIES as KEYPOINTS
from corrupt_bench.engine.noise import FAMILIES as NOISE
from corrupt_bench.engine.occlusion import FAMILIES as OCCLUSION
from corrupt_bench.engine.params import ParamError, Params, validate_row
from corrupt_bench.engine.photometric import FAMILIES as PHOTOMETRIC
from corrupt_bench.engine.views import FAMILIES as VIEWS
from corrupt_bench.errors import UserError
from corrupt_bench.layout import CLEAN
from corrupt_bench.resources import resource_dir
from corrupt_bench.safe_yaml import load_yaml

FAMILIES: tuple[Family, ...] = (*NOISE, *BLUR, *PHOTOMETRIC, *OCCLUSION, *VIEWS, *KEYPOINTS)


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    name: str
    version: int
    modality: Modality
    description: str
    source: str
    applies_to: dict[Literal["person_crop", "full_frame"], str]
    severities: dict[int, dict[str, Any]]


def families() -> dict[str, Family]:
    """Every corruption family of the engine, by name."""
    return {family.name: family for family in FAMILIES}


def describe_param_error(name: str, severity: int, error: ParamError) -> str:
    """One line: the corruption, the severity, the key and what is allowed."""
    where = f"corruption '{name}', severity {severity}"
    return f"{where}, key '{error.key}': {error.fault}" if error.key is not None else f"{where}: {error.fault}"


def load_table(path: Path, family: Family) -> Corruption:
    """Read and validate one `corruptions/<name>.yaml` against its family's parameter model."""
    raw = load_yaml(path, "severity table")
    try:
        table = _Table.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UserError(f"invalid severity table at '{where}': {first['msg']}", path) from exc
    if table.name != family.name:
        raise UserError(f"table names '{table.name}', expected '{family.name}'", path)
    if table.modality != family.modality:
        raise UserError(f"table says modality '{table.modality}', the code says '{family.modality}'", path)
    if set(table.severities) != set(SEVERITIES):
        raise UserError(f"severities must be exactly 1..5, got {sorted(table.severities)}", path)
    rows: dict[int, Params] = {}
    for severity in SEVERITIES:
        try:
            rows[severity] = validate_row(family.params, table.severities[severity])
        except ParamError as exc:
            raise UserError(describe_param_error(family.name, severity, exc), path) from None
    return Corruption(
        family=family,
        version=table.version,
        table=rows,
        description=table.description,
        source=table.source,
        applies_to=dict(table.applies_to),
    )


def load_registry(table_dir: Path | None = None) -> dict[str, Corruption]:
    """Every corruption, its code joined with its table from `table_dir` (default: the packaged one)."""
    table_dir = resource_dir("corruptions") if table_dir is None else Path(table_dir)
    registry = {}
    for name, family in sorted(families().items()):
        path = table_dir / f"{name}.yaml"
        if not path.is_file():
            raise UserError(f"no severity table for corruption '{name}'", path)
        registry[name] = load_table(path, family)
    return registry


@lru_cache(maxsize=1)
def _default_registry() -> dict[str, Corruption]:
    return load_registry()


class NoParams(Params):
    """The clean reference has no parameter."""


def _clean_sample(rng, row: NoParams, ctx: FrameContext) -> None:
    return None


CLEAN_CORRUPTION = Corruption(
    family=Family(CLEAN, "pixel", "ssim", NoParams, _clean_sample, stochastic=False),
    version=0,
    table={},
    description="No corruption: the clean reference (severity 0).",
)


def get_corruption(name: str) -> Corruption:
    """The corruption called `name` ("clean" is the identity); a typo raises with a suggestion."""
    if name == CLEAN:
        return CLEAN_CORRUPTION
    registry = _default_registry()
    if name not in registry:
        close = difflib.get_close_matches(name, list(registry), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else f"; known: {', '.join(registry)}"
        raise UserError(f"unknown corruption '{name}'{hint}")
    return registry[name]


def list_corruptions(pattern: str = "*") -> list[Corruption]:
    """Registered corruptions whose name matches the glob `pattern`, sorted by name."""
    return [c for n, c in _default_registry().items() if fnmatch.fnmatch(n, pattern)]
