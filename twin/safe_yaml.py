"""Bounded YAML loading for scenario files: plain data only, with alias expansion and nesting depth limited.

``yaml.safe_load`` builds no objects from tags, but YAML aliases let a few hundred bytes stand for billions
of values (the "billion laughs" alias bomb): the composed graph is small, and the blow-up comes later,
when validation, ``deepcopy`` or ``repr`` walk it. :class:`BoundedSafeLoader` counts, while the document is
composed, how many nodes each node stands for once every alias is expanded, and stops as soon as the
document exceeds :data:`MAX_NODES` or nests deeper than :data:`MAX_DEPTH` (recursive aliases are refused).
The file size is limited too (:data:`MAX_BYTES`). :func:`short_repr` shortens values for messages
without walking a huge value.

It also refuses what YAML allows but a scenario never means (docs/reliability.md): a key given twice in one
mapping (YAML's "last one wins" hides typos), ``.nan``/``.inf`` (no weight, time or count is infinite), and
integers longer than :data:`MAX_INT_DIGITS` digits (Python refuses to convert 4,300+ digits anyway).
"""
from __future__ import annotations

import math
import reprlib
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

__all__ = ["BoundedSafeLoader", "YAMLLimitError", "safe_load_bounded", "short_repr",
           "MAX_NODES", "MAX_DEPTH", "MAX_BYTES", "MAX_INT_DIGITS"]

MAX_NODES = 100_000     # scalars + collections after alias expansion (the largest shipped scenario: 312)
MAX_DEPTH = 64          # nested collections
MAX_INT_DIGITS = 30     # an integer longer than this is a typo (seeds are < 2**32, counts < 1e9)
MAX_BYTES = 4_000_000   # scenario file size (the largest shipped: 4.6 kB); large inputs (trips, counts) live in CSV/XML data files


class YAMLLimitError(ComposerError):
    """The document breaks a size limit (expanded nodes, depth, recursion); ``problem`` says which."""


class BoundedSafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses documents too large after alias expansion, too deep, or recursive."""

    max_nodes = MAX_NODES
    max_depth = MAX_DEPTH

    def __init__(self, stream) -> None:
        super().__init__(stream)
        self._expanded: dict[int, int] = {}  # id(node) -> nodes it stands for, once expanded
        self._depth = 0

    def compose_node(self, parent, index):  # PyYAML hook
        if self.check_event(AliasEvent):
            event = self.peek_event()
            target = self.anchors.get(event.anchor)
            if target is not None and id(target) not in self._expanded:
                raise YAMLLimitError(None, None, f"alias *{event.anchor[:40]} refers to a collection that "
                                     "contains it (recursive aliases are refused)", event.start_mark)
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > self.max_depth:
            raise YAMLLimitError(None, None, f"nesting deeper than {self.max_depth} levels is refused",
                                 self.peek_event().start_mark)
        node = super().compose_node(parent, index)
        self._depth -= 1
        n = 1
        if isinstance(node, SequenceNode):
            n += sum(self._expanded[id(c)] for c in node.value)
        elif isinstance(node, MappingNode):
            n += sum(self._expanded[id(k)] + self._expanded[id(v)] for k, v in node.value)
            _refuse_duplicate_keys(node)
        if n > self.max_nodes:
            raise YAMLLimitError(None, None, f"the document expands to more than {self.max_nodes:,} values "
                                 "(through aliases *name); a scenario this large is refused", node.start_mark)
        self._expanded[id(node)] = n
        return node


def _refuse_duplicate_keys(node: MappingNode) -> None:
    seen: dict[tuple[str, str], Any] = {}
    for k, _ in node.value:
        if not isinstance(k, ScalarNode) or k.value == "<<":
            continue
        key = (k.tag, k.value)
        if key in seen:
            raise YAMLLimitError(None, None, f"key {k.value[:40]!r} is given twice in one mapping (first on line "
                                 f"{seen[key].line + 1}); remove one", k.start_mark)
        seen[key] = k.start_mark


def _construct_int(loader: yaml.SafeLoader, node: ScalarNode) -> int:
    digits = sum(c.isdigit() for c in str(node.value))
    if digits > MAX_INT_DIGITS:
        raise YAMLLimitError(None, None, f"an integer of {digits:,} digits — at most {MAX_INT_DIGITS} digits",
                             node.start_mark)
    return yaml.SafeLoader.construct_yaml_int(loader, node)


def _construct_float(loader: yaml.SafeLoader, node: ScalarNode) -> float:
    if len(str(node.value)) > 100:
        raise YAMLLimitError(None, None, "a number of more than 100 characters", node.start_mark)
    v = yaml.SafeLoader.construct_yaml_float(loader, node)
    if not math.isfinite(v):
        raise YAMLLimitError(None, None, f"{node.value!s:.20} — numbers must be finite (no .nan or .inf)",
                             node.start_mark)
    return v


BoundedSafeLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
BoundedSafeLoader.add_constructor("tag:yaml.org,2002:float", _construct_float)


def safe_load_bounded(text: str | bytes) -> Any:
    """Plain data from YAML text (like ``yaml.safe_load``), within the limits above; raise a yaml.YAMLError."""
    if len(text) > MAX_BYTES:
        raise YAMLLimitError(None, None, f"{len(text) / 1e6:.1f} MB — scenario files are limited to "
                             f"{MAX_BYTES // 1_000_000} MB (put large inputs in data files)", None)
    loader = BoundedSafeLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


_short = reprlib.Repr()
_short.maxstring = 60
_short.maxother = 60
_short.maxlist = _short.maxtuple = _short.maxdict = _short.maxset = 4
_short.maxlevel = 2


def short_repr(value: Any, limit: int = 80) -> str:
    """A repr of ``value`` of at most ``limit`` characters that never walks more than a few items."""
    s = _short.repr(value)
    return s if len(s) <= limit else s[:limit - 3] + "..."
