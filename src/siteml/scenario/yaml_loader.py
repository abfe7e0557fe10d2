"""Safe, bounded YAML loading that remembers the line of every value.

Only plain data is built (mappings, sequences, scalars of the safe schema). The file size, the
nesting depth and the number of nodes after alias expansion are capped, so a hostile file (a
"billion laughs" alias bomb, a huge or deeply nested document) is rejected quickly instead of
being expanded. Duplicate keys and non-string keys are errors, not silently merged.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from siteml.core.errors import Problem, ScenarioError

MAX_FILE_BYTES = 1024 * 1024
MAX_NODES = 20_000
MAX_DEPTH = 32

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"
_SCALARS: dict[tuple[Any, str, Any], tuple[str, Any]] = {}
_PLAIN_COLLECTION_TAGS = (None, "!", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")

YamlPath = tuple[str | int, ...]
Source = tuple[str, int | None, str | None]
"""Where a value came from: (file, line, origin)."""


@dataclass
class YamlDocument:
    """A loaded YAML mapping plus where each value came from.

    Attributes:
        file: The file as the user named it.
        data: The top-level mapping.
        lines: YAML path -> 1-based line of that value (for a key: the line of the key).
        sources: YAML path -> (file, line, origin) for values that came from elsewhere
            (an included site file, a ``--set`` override).
    """

    file: str
    data: dict[str, Any]
    lines: dict[YamlPath, int] = field(default_factory=dict)
    sources: dict[YamlPath, Source] = field(default_factory=dict)

    def locate(self, path: YamlPath) -> Source:
        """Return (file, line, origin) of the deepest known node on ``path``."""
        for end in range(len(path), -1, -1):
            prefix = path[:end]
            if prefix in self.sources:
                return self.sources[prefix]
            if prefix in self.lines:
                return self.file, self.lines[prefix], None
        return self.file, None, None

    def graft(self, key: str, other: YamlDocument) -> None:
        """Put ``other``'s mapping at the top-level ``key``; its lines stay those of its file."""
        path = (key,)
        self.data[key] = other.data
        self.sources[path] = (other.file, 1, None)
        for sub, line in other.lines.items():
            self.sources[path + sub] = (other.file, line, None)


def load_yaml(path: Path, display: str | None = None) -> YamlDocument:
    """Load a YAML file whose top level must be a mapping.

    Args:
        path: File to read.
        display: How to name the file in errors (defaults to ``str(path)``).

    Raises:
        ScenarioError: unreadable, too big, malformed, hostile or not a mapping.
    """
    name = display or str(path)

    def fail(message: str, line: int | None = None) -> ScenarioError:
        return ScenarioError([Problem(name, line, "", message)])

    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise fail(f"file is {size / 1024:.0f} KiB; YAML input is limited to "
                       f"{MAX_FILE_BYTES // 1024} KiB")
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise fail("file not found") from None
    except IsADirectoryError:
        raise fail("is a directory, expected a YAML file") from None
    except UnicodeDecodeError as exc:
        raise fail(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise fail(f"cannot read: {exc.strerror}") from None

    loader = _Loader(text)
    try:
        builder = _EventBuilder(name, loader)
        doc = YamlDocument(name, builder.build(), builder.lines)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise fail(f"malformed YAML: {exc.problem or exc.context}", line) from None
    except yaml.YAMLError as exc:
        raise fail(f"malformed YAML: {exc}") from None
    finally:
        loader.dispose()
    return doc


@dataclass
class _Frame:
    path: YamlPath
    mark: Any
    value: dict[str, Any] | list[Any]
    anchor: str | None
    first_count: int
    key: str | None = None
    merged: dict[str, Any] = field(default_factory=dict)


class _EventBuilder:
    """Builds Python data straight from parser events, with no recursion.

    PyYAML's composers recurse once per nesting level (the C one overflows the C stack on a
    deeply nested file), and they expand aliases blindly; this builder caps both.
    """

    def __init__(self, file: str, loader: Any):
        self.file = file
        self.loader = loader
        self.lines: dict[YamlPath, int] = {}
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.open_anchors: set[str] = set()
        self.stack: list[_Frame] = []
        self.count = 0
        self.root: Any = None
        self.documents = 0

    def error(self, mark: Any, path: YamlPath, message: str) -> ScenarioError:
        dotted = ".".join(str(p) for p in path)
        return ScenarioError([Problem(self.file, mark.line + 1, dotted, message)])

    def build(self) -> dict[str, Any]:
        """Consume the event stream and return the top-level mapping, with ``self.lines`` filled."""
        while True:
            event = self.loader.get_event()
            if isinstance(event, yaml.StreamEndEvent):
                break
            if isinstance(event, yaml.DocumentStartEvent):
                self.documents += 1
                if self.documents > 1:
                    raise self.error(event.start_mark, (), "more than one YAML document; "
                                     "put one scenario per file")
            elif isinstance(event, yaml.ScalarEvent):
                self.on_scalar(event)
            elif isinstance(event, yaml.AliasEvent):
                self.on_alias(event)
            elif isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
                self.on_start(event)
            elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                self.on_end()
        return self.check_root()

    def check_root(self) -> dict[str, Any]:
        if self.documents == 0 or (self.root is None and () not in self.lines):
            raise ScenarioError([Problem(self.file, None, "",
                                         "file is empty; expected a mapping of keys")])
        if not isinstance(self.root, dict):
            kind = "a list" if isinstance(self.root, list) else "a single value"
            raise ScenarioError([Problem(self.file, self.lines.get((), 1), "",
                                         f"top level is {kind}; expected a mapping of keys")])
        return self.root

    def child_path(self, mark: Any) -> YamlPath:
        if not self.stack:
            return ()
        frame = self.stack[-1]
        if isinstance(frame.value, list):
            return (*frame.path, len(frame.value))
        if frame.key is None:
            raise self.error(mark, frame.path,
                             "a key must be a plain string, not a list or mapping")
        return (*frame.path, frame.key)

    def tick(self, mark: Any, path: YamlPath, amount: int = 1) -> None:
        self.count += amount
        if self.count > MAX_NODES:
            raise self.error(mark, path, f"document expands to more than {MAX_NODES} values "
                             "(an alias expansion bomb?); refusing to load it")

    def on_start(self, event: Any) -> None:
        path = self.child_path(event.start_mark)
        if event.tag not in _PLAIN_COLLECTION_TAGS:
            raise self.error(event.start_mark, path, f"unsupported YAML tag {event.tag!r}; "
                             "only plain data is allowed")
        if len(self.stack) >= MAX_DEPTH:
            raise self.error(event.start_mark, path, f"nesting deeper than {MAX_DEPTH} levels")
        self.tick(event.start_mark, path)
        self.lines.setdefault(path, event.start_mark.line + 1)
        container: dict[str, Any] | list[Any] = (
            {} if isinstance(event, yaml.MappingStartEvent) else [])
        if event.anchor:
            self.open_anchors.add(event.anchor)
        self.stack.append(_Frame(path, event.start_mark, container, event.anchor, self.count))

    def on_end(self) -> None:
        frame = self.stack.pop()
        value = frame.value
        if isinstance(value, dict) and frame.merged:
            value = {**frame.merged, **value}
        if frame.anchor:
            self.open_anchors.discard(frame.anchor)
            self.anchors[frame.anchor] = (value, self.count - frame.first_count + 1)
        self.emit(value, frame.mark)

    def on_scalar(self, event: Any) -> None:
        tag, value = self.construct(event)
        frame = self.stack[-1] if self.stack else None
        if frame is not None and isinstance(frame.value, dict) and frame.key is None:
            self.on_key(frame, event, tag, value)
            return
        path = self.child_path(event.start_mark)
        self.tick(event.start_mark, path)
        if event.anchor:
            self.anchors[event.anchor] = (value, 1)
        self.emit(value, event.start_mark)

    def construct(self, event: Any) -> tuple[str, Any]:
        """Resolve and build a scalar: (tag, value). Results are immutable, so they are cached."""
        cache_key = (event.tag, event.value, event.implicit)
        cached = _SCALARS.get(cache_key)
        if cached is None:
            tag = (event.tag if event.tag not in (None, "!")
                   else self.loader.resolve(yaml.ScalarNode, event.value, event.implicit))
            node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
            value = event.value if tag in (_STR_TAG, _MERGE_TAG) else (
                self.loader.construct_object(node, deep=True))
            cached = _SCALARS[cache_key] = (tag, value)
            if len(_SCALARS) > 100_000:
                _SCALARS.clear()
        return cached

    def on_key(self, frame: _Frame, event: Any, tag: str, key: Any) -> None:
        if tag == _MERGE_TAG:
            frame.key = "<<"
            return
        path = (*frame.path, str(key))
        if not isinstance(key, str):
            raise self.error(event.start_mark, frame.path,
                             f"key {event.value!r} must be a string; quote it")
        if key in frame.value:
            raise self.error(event.start_mark, path,
                             f"duplicate key (first at line {self.lines[path]})")
        self.lines[path] = event.start_mark.line + 1
        frame.key = key

    def on_alias(self, event: Any) -> None:
        path = self.child_path(event.start_mark)
        if event.anchor in self.open_anchors:
            raise self.error(event.start_mark, path, f"alias *{event.anchor} refers to a value "
                             "that contains it (recursive alias)")
        if event.anchor not in self.anchors:
            raise self.error(event.start_mark, path, f"undefined alias *{event.anchor}")
        value, size = self.anchors[event.anchor]
        self.tick(event.start_mark, path, size)
        self.lines.setdefault(path, event.start_mark.line + 1)
        self.emit(copy.deepcopy(value), event.start_mark)

    def emit(self, value: Any, mark: Any) -> None:
        if not self.stack:
            self.root = value
            self.lines.setdefault((), mark.line + 1)
            return
        frame = self.stack[-1]
        if isinstance(frame.value, list):
            self.lines.setdefault((*frame.path, len(frame.value)), mark.line + 1)
            frame.value.append(value)
            return
        key, frame.key = frame.key, None
        assert key is not None  # child_path refused a mapping's value without a key
        if key == "<<":
            sources = value if isinstance(value, list) else [value]
            if not all(isinstance(s, dict) for s in sources):
                raise self.error(mark, frame.path,
                                 "merge key '<<' needs a mapping or a list of mappings")
            for source in reversed(sources):
                frame.merged.update(source)
            return
        frame.value[key] = value

