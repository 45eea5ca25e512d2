"""Unpickling of data files that hold numpy arrays in builtin containers, and nothing else.

The field ships some of its data as pickles: VideoPose3D's npz members are pickled dicts (written by
`np.savez`), mmpose's `cameras.pkl` is a pickled dict of arrays. A pickle is a program: a plain
`pickle.load` (or `np.load(..., allow_pickle=True)`) runs whatever callables the file names. Here a
file may name only the globals that numpy arrays need, each replaced by a guarded stand-in:

| global (numpy 1.x and 2.x module names)               | what the stand-in admits                                  |
|-------------------------------------------------------|-----------------------------------------------------------|
| `numpy.ndarray`                                       | only as the class handed to `_reconstruct`                |
| `numpy.core.multiarray._reconstruct` (and `numpy._core.`) | `(ndarray, (0,), b'b')`, exactly what numpy writes; the array's state (`BUILD`) is checked before an array is made |
| `numpy.dtype`                                         | a type string such as `'f4'`, `'O8'`, `'U67'`, `copy=True` |
| `numpy.core.multiarray.scalar` (and `numpy._core.`)   | a non-object dtype and exactly `itemsize` bytes           |
| `numpy.core.numeric._frombuffer` (and `numpy._core.`) | protocol 5: a buffer of exactly the array's size          |
| `_codecs.encode`                                      | `(str, 'latin1')`: how protocol 2 (numpy <= 1.16) stores bytes |
| `__builtin__.bytes` / `builtins.bytes`                | no argument: protocol 2's empty bytes                      |
| `collections.OrderedDict`                             | no argument (the items follow as data)                    |

Anything else, including `_codecs.encode` of a non-str payload, is refused by name. Before the
unpickler runs, the opcode stream is scanned (`pickletools.genops`, which only decodes): a declared
length beyond the data, a memo index beyond the file's size and the extension-registry / persistent-id
opcodes are refused, so a small file can neither execute code nor make the unpickler allocate far
beyond its own size (numpy's own `ndarray.__setstate__` trusts the declared shape of an object array
and crashes the interpreter when it lies; that state is checked here first).
"""

from __future__ import annotations

import io
import math
import pickle
import pickletools
import re
from collections import OrderedDict
from typing import Any

import numpy as np

MAX_DEPTH = 64  # containers nested deeper than this are refused (real files nest 3-4 levels)
_DTYPE_SPEC = re.compile(r"^[<>|=]?[biufcOUSV]\d{0,6}$")
_REFUSED_OPCODES = frozenset({"EXT1", "EXT2", "EXT4", "PERSID", "BINPERSID", "NEXT_BUFFER", "READONLY_BUFFER"})
_MEMO_PUTS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})


class _NdarrayClass:
    """Stands for `numpy.ndarray` in a pickle: may only be handed to `_reconstruct`."""

    def __call__(self, *args: Any) -> Any:
        raise pickle.UnpicklingError("refusing to call numpy.ndarray from a pickle")


_NDARRAY = _NdarrayClass()


class _PendingArray:
    """What `_reconstruct` returns: becomes an ndarray when its state (`BUILD`) has been checked."""

    __slots__ = ("array",)

    def __init__(self) -> None:
        self.array: np.ndarray | None = None

    def __setstate__(self, state: Any) -> None:
        if self.array is not None:
            raise pickle.UnpicklingError("array state set twice")
        self.array = _array_from_state(state)


def _array_from_state(state: Any) -> np.ndarray:
    """An ndarray from numpy's pickled state `(version, shape, dtype, is_fortran, data)`, checked first."""
    if not isinstance(state, tuple) or len(state) not in (4, 5):
        raise pickle.UnpicklingError("array state is not numpy's (version, shape, dtype, order, data)")
    shape, dtype, fortran, data = state[-4:]
    if not isinstance(shape, tuple) or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
        raise pickle.UnpicklingError(f"array shape {shape!r} is not a tuple of non-negative integers")
    if not isinstance(dtype, np.dtype) or not isinstance(fortran, bool):
        raise pickle.UnpicklingError("array state has no numpy dtype or no order flag")
    size = math.prod(shape)
    order = "F" if fortran else "C"
    if dtype.hasobject:
        if dtype != np.dtype(object):
            raise pickle.UnpicklingError(f"refusing a structured dtype holding objects ({dtype})")
        if not isinstance(data, list) or len(data) != size:
            n = len(data) if isinstance(data, list) else type(data).__name__
            raise pickle.UnpicklingError(f"object array of shape {shape} holds {n} items")
        array = np.empty(size, dtype=object)
        for i, item in enumerate(data):
            array[i] = _plain(item)
        return array.reshape(shape, order=order)
    if not isinstance(data, bytes) or len(data) != size * dtype.itemsize:
        n = len(data) if isinstance(data, bytes) else type(data).__name__
        raise pickle.UnpicklingError(f"array of shape {shape} and dtype {dtype} has {n} bytes of data")
    array = np.ndarray.__new__(np.ndarray, (0,), np.uint8)
    array.__setstate__((shape, dtype, fortran, data))  # numpy's own path, sizes checked above
    return array


def _plain(item: Any) -> Any:
    """An item with a pending array replaced by its ndarray (its state must have been set)."""
    if isinstance(item, _PendingArray):
        if item.array is None:
            raise pickle.UnpicklingError("an array was used before its state was set")
        return item.array
    return item


def _reconstruct(cls: Any, shape: Any, typecode: Any) -> _PendingArray:
    if cls is not _NDARRAY or shape != (0,) or typecode != b"b":
        raise pickle.UnpicklingError("refusing _reconstruct with arguments numpy never writes")
    return _PendingArray()


def _dtype(spec: Any, align: Any = False, copy: Any = False) -> np.dtype:
    if not isinstance(spec, str) or not _DTYPE_SPEC.match(spec):
        raise pickle.UnpicklingError(f"refusing numpy.dtype({spec!r})")
    if not copy:  # numpy always pickles copy=True; without it BUILD would alter numpy's shared dtype
        raise pickle.UnpicklingError("refusing numpy.dtype without copy=True")
    return np.dtype(spec, bool(align), True)


def _scalar(dtype: Any, data: Any = None) -> Any:
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise pickle.UnpicklingError("refusing a numpy scalar of an object or unknown dtype")
    if not isinstance(data, bytes) or len(data) != dtype.itemsize:
        raise pickle.UnpicklingError(f"numpy scalar of dtype {dtype} needs {dtype.itemsize} bytes")
    return np.frombuffer(data, dtype=dtype)[0]


def _frombuffer(buffer: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    if not isinstance(dtype, np.dtype) or dtype.hasobject or order not in ("C", "F"):
        raise pickle.UnpicklingError("refusing _frombuffer of an object or unknown dtype")
    if not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise pickle.UnpicklingError(f"array shape {shape!r} is not a tuple of non-negative integers")
    data = bytes(buffer) if isinstance(buffer, (bytearray, memoryview)) else buffer
    if not isinstance(data, bytes) or len(data) != math.prod(shape) * dtype.itemsize:
        raise pickle.UnpicklingError(f"buffer does not hold an array of shape {shape} and dtype {dtype}")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order=order).copy(order="K")


def _codecs_encode(text: Any, encoding: Any = None, *rest: Any) -> bytes:
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1") or rest:
        raise pickle.UnpicklingError(
            f"refusing _codecs.encode of a {type(text).__name__} with {encoding!r} "
            "(old numpy pickles encode only text as latin1)"
        )
    return text.encode("latin1")


def _empty_bytes(*args: Any) -> bytes:
    if args:
        raise pickle.UnpicklingError("refusing bytes() with arguments")
    return b""


def _ordered_dict(*args: Any) -> OrderedDict:
    if args:
        raise pickle.UnpicklingError("refusing OrderedDict() with arguments")
    return OrderedDict()


_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _dtype,
    ("_codecs", "encode"): _codecs_encode,
    ("__builtin__", "bytes"): _empty_bytes,
    ("builtins", "bytes"): _empty_bytes,
    ("collections", "OrderedDict"): _ordered_dict,
}
for _core in ("numpy.core", "numpy._core"):
    _GLOBALS[(f"{_core}.multiarray", "_reconstruct")] = _reconstruct
    _GLOBALS[(f"{_core}.multiarray", "scalar")] = _scalar
    _GLOBALS[(f"{_core}.numeric", "_frombuffer")] = _frombuffer
ALLOWED_GLOBALS = frozenset(_GLOBALS)


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Resolves a global only to the guarded stand-ins above (nothing is imported)."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load global '{module}.{name}'") from None


def _scan(data: bytes) -> None:
    """Walk the opcodes without running them; refuse what could run away before the unpickler sees it."""
    stream = io.BytesIO(data)
    count = 0
    for opcode, arg, pos in pickletools.genops(stream):
        count += 1
        name = opcode.name
        if name in _REFUSED_OPCODES:
            raise pickle.UnpicklingError(f"refusing opcode {name}")
        if name == "PROTO" and not 2 <= arg <= 5:
            raise pickle.UnpicklingError(f"unknown pickle protocol {arg}")
        if name == "FRAME" and arg > len(data) - stream.tell():
            raise pickle.UnpicklingError(f"a frame of {arg} bytes at byte {pos} runs past the end of the data")
        if name in _MEMO_PUTS and int(arg) > count:  # numpy writes them in order; a huge index grows the memo
            raise pickle.UnpicklingError(f"memo index {arg} at byte {pos} is beyond the pickle")
        if name == "STOP":
            break


def _resolve(value: Any) -> Any:
    """The loaded structure with every pending array replaced by its ndarray (iterative, depth-bounded;
    object arrays resolved their items when they were built)."""
    root = [_plain(value)]
    stack: list[tuple[Any, int]] = [(root, 0)]
    seen: set[int] = set()
    while stack:
        container, depth = stack.pop()
        if id(container) in seen:
            continue
        seen.add(id(container))
        if depth > MAX_DEPTH:
            raise pickle.UnpicklingError(f"containers nested deeper than {MAX_DEPTH} levels")
        if isinstance(container, dict):
            for key, item in list(container.items()):
                container[key] = _plain(item)
            children = list(container.values())
        elif isinstance(container, list):
            container[:] = [_plain(item) for item in container]
            children = container
        elif isinstance(container, tuple):
            if any(isinstance(item, _PendingArray) for item in container):
                raise pickle.UnpicklingError("an array inside a tuple (numpy data files hold none)")
            children = list(container)
        elif isinstance(container, np.ndarray) and container.dtype == object:
            children = list(container.ravel(order="K"))
        else:
            continue
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list, tuple, np.ndarray)))
    return root[0]


def loads(data: bytes) -> Any:
    """The object a pickle holds, admitting only numpy arrays, numpy scalars and builtin values.

    Raises `pickle.UnpicklingError` (or the `ValueError` of a malformed opcode stream) on anything
    else; callers turn it into a UserError that names their file."""
    _scan(data)
    return _resolve(_ArrayOnlyUnpickler(io.BytesIO(data)).load())
