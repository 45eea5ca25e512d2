"""The one way corrupt-bench reads YAML: manifests, severity tables, model configs, stored manifests.

`yaml.safe_load` runs no code, but it still lets a small file cost minutes and gigabytes (an alias
bomb: nine levels of nine aliases is 9^9 leaves from 700 bytes), recurse past Python's limit
(20,000 nested lists), raise raw Python errors from its constructors (`!!int abc`, `!!float ''`,
`!!timestamp abc`, an impossible date) and silently keep the last of two duplicate keys. This reader
refuses all of that before anything is built, and every fault is one `UserError` line naming the
file (and the line and column where YAML knows them):

- input size: at most `MAX_BYTES`;
- anchors and aliases (and the merge key `<<` that needs them) are refused outright: no file of
  ours uses them, and a budget would only move the bomb's threshold;
- nesting depth: at most `MAX_DEPTH` levels of mappings and sequences;
- explicit tags: only `!!str` (a harmless way to quote); `!!int`, `!!timestamp`, `!!binary`,
  `!!python/...` and local tags are refused;
- duplicate keys in a mapping are refused;
- any other error of the parser or a constructor (a malformed implicit date, an integer of 10,000
  digits, an unhashable key) becomes the same one line, never a traceback, and the message never
  holds the input's repr.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent, CollectionStartEvent, ScalarEvent
from yaml.nodes import MappingNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from corrupt_bench.errors import UserError

MAX_BYTES = 1 << 20  # 1 MiB: the largest shipped manifest is ~4 kB
MAX_DEPTH = 32  # levels of mappings/sequences; shipped files use at most 5
ALLOWED_TAGS = frozenset({"tag:yaml.org,2002:str"})
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Refused(Exception):
    """A construct this reader refuses, with the node's position."""

    def __init__(self, message: str, mark: Any = None):
        super().__init__(message)
        self.message = message
        self.mark = mark


class _StrictComposer(Composer):
    """PyYAML's composer that refuses anchors, aliases, explicit tags and deep nesting as it goes."""

    def compose_node(self, parent, index):  # noqa: D401  (PyYAML's signature)
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            raise _Refused(f"YAML alias '*{event.anchor}' is not allowed (anchors and aliases are refused)", event.start_mark)
        if getattr(event, "anchor", None) is not None:
            raise _Refused(f"YAML anchor '&{event.anchor}' is not allowed (anchors and aliases are refused)", event.start_mark)
        tag = getattr(event, "tag", None)
        if isinstance(event, (ScalarEvent, CollectionStartEvent)) and tag not in (None, "!"):
            if tag not in ALLOWED_TAGS:
                shown = tag.replace("tag:yaml.org,2002:", "!!")
                raise _Refused(f"YAML tag '{shown}' is not allowed; write a plain value (only !!str is allowed)", event.start_mark)
        if isinstance(event, CollectionStartEvent):
            self._depth = getattr(self, "_depth", 0) + 1
            if self._depth > MAX_DEPTH:
                raise _Refused(f"nesting deeper than {MAX_DEPTH} levels", event.start_mark)
            try:
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1
        return super().compose_node(parent, index)


class _StrictConstructor(SafeConstructor):
    """SafeConstructor that refuses duplicate keys and the merge key."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, MappingNode):
            seen: set = set()
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    raise _Refused("YAML merge key '<<' is not allowed", key_node.start_mark)
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                except TypeError:
                    raise _Refused("a mapping key must be a plain value (found a list or mapping as key)", key_node.start_mark) from None
                if duplicate:
                    raise _Refused(f"duplicate key {_short(key)} in a mapping", key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


class _StrictLoader(Reader, Scanner, Parser, _StrictComposer, _StrictConstructor, Resolver):
    def __init__(self, stream):
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        _StrictComposer.__init__(self)
        _StrictConstructor.__init__(self)
        Resolver.__init__(self)


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value) if isinstance(value, (str, int, float, bool)) or value is None else type(value).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _where(mark: Any) -> str:
    return f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""


def parse_yaml(text: str, path: str | Path | None = None, what: str = "YAML") -> Any:
    """Parse YAML text under the rules of this module; a fault is a one-line UserError naming `path`."""
    if len(text) > MAX_BYTES:
        raise UserError(f"{what} is larger than {MAX_BYTES // 1024} KiB; refused", path)
    loader = None
    try:
        loader = _StrictLoader(text)  # the reader checks the characters here
        return loader.get_single_data()
    except _Refused as exc:
        raise UserError(f"invalid YAML{_where(exc.mark)}: {exc.message}", path) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        raise UserError(f"invalid YAML{_where(mark)}: {problem}", path) from None
    except yaml.YAMLError as exc:
        raise UserError(f"invalid YAML: {str(exc).splitlines()[0][:200]}", path) from None
    except RecursionError:
        raise UserError("invalid YAML: nested too deeply", path) from None
    except (ValueError, TypeError, OverflowError, IndexError, AttributeError, KeyError) as exc:
        # a constructor of an implicit scalar (an impossible date, an integer of thousands of digits)
        raise UserError(f"invalid YAML: a value cannot be read ({type(exc).__name__}: {str(exc)[:120]})", path) from None
    finally:
        if loader is not None:
            loader.dispose()


def load_yaml(path: str | Path, what: str = "YAML") -> Any:
    """Read a YAML file (at most MAX_BYTES, UTF-8) under the rules of this module."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise UserError(f"cannot read the {what} ({exc.strerror or exc})", path) from None
    if len(data) > MAX_BYTES:
        raise UserError(f"{what} is larger than {MAX_BYTES // 1024} KiB; refused", path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{what} is not UTF-8 text (byte {exc.start})", path) from None
    return parse_yaml(text, path, what)
