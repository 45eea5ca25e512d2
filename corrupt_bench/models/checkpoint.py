"""Checkpoints: safetensors weights + a JSON config beside them; `.pt` only via weights_only loading."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path
from typing import Any

from corrupt_bench.errors import UserError
from corrupt_bench.io import atomic_write_bytes
from corrupt_bench.resources import resource_dir
from corrupt_bench.safe_yaml import load_yaml

WEIGHTS = "model.safetensors"
META = "model.json"


def config_path(model: str, config: str | Path) -> Path:
    """The file of a config name: 'tiny' / 'full' -> baselines/<model>/<name>.yaml; a path as given."""
    path = Path(config)
    if not path.suffix:
        path = resource_dir("baselines") / model / f"{config}.yaml"
    return path


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A YAML (or JSON) model config file -> dict (`yaml.safe_load`; an empty file is {})."""
    path = Path(path)
    if not path.is_file():
        raise UserError("config file not found", path)
    data = load_yaml(path, "model config")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError("a model config must be a YAML mapping of keys", path)
    return data


def load_config(model: str, config: str | Path) -> dict[str, Any]:
    """A model's config: 'tiny' / 'full' from baselines/<model>/, or a YAML file path."""
    path = config_path(model, config)
    if not path.is_file():
        raise UserError(f"no config '{config}' for model '{model}'", path)
    return read_config_file(path)


def config_digest(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def file_digest(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_checkpoint(folder: str | Path, model_name: str, config: dict, state_dict: dict, **meta: Any) -> Path:
    """Write `folder/model.safetensors` and `folder/model.json` atomically; returns the weights path."""
    from safetensors.torch import save

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    atomic_write_bytes(folder / WEIGHTS, save(tensors))
    payload = {"model": model_name, "config": config, **meta}
    atomic_write_bytes(folder / META, json.dumps(payload, indent=1, sort_keys=True).encode())
    return folder / WEIGHTS


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint folder, a `.safetensors` file or a `.pt` file -> the weights file."""
    path = Path(path)
    if path.is_dir():
        path = path / WEIGHTS
    if not path.is_file():
        raise UserError("checkpoint not found", path)
    if path.suffix not in (".safetensors", ".pt", ".pth"):
        raise UserError("checkpoint must be .safetensors (with its .json) or .pt", path)
    return path


def read_meta(path: str | Path) -> tuple[Path | None, dict]:
    """(path of the JSON beside the weights or None, its content) of a checkpoint, without reading the
    weights. A `.pt` file may carry its meta inside (`{"state_dict": ..., "meta": ...}`): that part
    is only read by `load_checkpoint`."""
    weights = resolve_checkpoint(path)
    meta_path = weights.with_name(META) if weights.name == WEIGHTS else weights.with_suffix(".json")
    if not meta_path.is_file():
        return None, {}
    try:
        meta = json.loads(meta_path.read_bytes())
    except json.JSONDecodeError as exc:
        raise UserError(f"checkpoint config is not valid JSON (line {exc.lineno})", meta_path) from None
    except (ValueError, RecursionError) as exc:  # not UTF-8, nested too deeply
        raise UserError(f"checkpoint config is not valid JSON ({type(exc).__name__})", meta_path) from None
    if not isinstance(meta, dict) or not isinstance(meta.get("config", {}), dict):
        raise UserError("checkpoint config must be a JSON object (with 'model' and a 'config' object)", meta_path)
    return meta_path, meta


def load_checkpoint(path: str | Path) -> tuple[dict, dict]:
    """Return (state_dict, meta). `.pt` files load through torch.load(weights_only=True) only."""
    import torch

    weights = resolve_checkpoint(path)
    _, meta = read_meta(weights)
    try:
        if weights.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(weights))
        else:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
                stored = state.get("meta", {})
                meta = {**(stored if isinstance(stored, dict) else {}), **meta}
                state = state["state_dict"]
    except UserError:
        raise
    except pickle.UnpicklingError:  # torch's own message goes on to advise weights_only=False: never
        raise UserError(
            "refused: this .pt file holds Python objects besides tensors, and loading them could run code; "
            "corrupt-bench loads .pt files only as weights (weights_only=True): save a plain state_dict or safetensors",
            weights,
        ) from None
    except Exception as exc:
        raise UserError(f"unreadable checkpoint ({type(exc).__name__}: {exc})".splitlines()[0], weights) from exc
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise UserError("checkpoint holds no state_dict (a mapping of parameter names to tensors)", weights)
    return state, meta
