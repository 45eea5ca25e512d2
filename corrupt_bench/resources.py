"""Locate the top-level data folders (corruptions/, manifests/, baselines/) from a checkout or a wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """Return the folder `name`: inside the installed wheel (`_resources/`) or at the checkout's root."""
    for candidate in (_PACKAGE / "_resources" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"resource folder '{name}' not found next to {_PACKAGE}")
