"""Reading inventory and workload files: YAML (one or many documents) or JSON, lists flattened.

A file may hold one object, several YAML documents, or a `v1 List` (what `kubectl get ... -o
yaml` prints); every Kubernetes object inside comes back as a `Document` that remembers where
it was found, so an error can name it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hami_core.simulate.errors import InputError

__all__ = ["Document", "describe", "read_documents", "read_file"]

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class Document:
    """One object read from `file`; `where` says where in the file (`document 2`, `items[3]`)."""

    file: str
    where: str
    obj: Any


def describe(doc: Document) -> str:
    """How an error names the object: `Pod "ns/name" (document 2)`, or just where it is."""
    obj = doc.obj
    if not isinstance(obj, Mapping):
        return doc.where
    kind = obj.get("kind")
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) else None
    namespace = meta.get("namespace") if isinstance(meta, Mapping) else None
    label = str(kind) if isinstance(kind, str) and kind else "object"
    if isinstance(name, str) and name:
        shown = f"{namespace}/{name}" if isinstance(namespace, str) and namespace else name
        return f'{label} "{shown}" ({doc.where})'
    return f"{label} ({doc.where})"


def read_file(path: str) -> list[Any]:
    """The documents of a YAML or JSON file (empty documents skipped).

    Raises `InputError` naming the file when it cannot be read or parsed.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except IsADirectoryError:
        raise InputError(path, "is a directory, not a file") from None
    except UnicodeDecodeError:
        raise InputError(path, "not a text file (expected YAML or JSON)") from None
    except OSError as exc:
        raise InputError(path, f"cannot read: {exc.strerror or exc}") from None
    stripped = text.lstrip()
    if path.endswith(".json") or stripped.startswith(("{", "[")):
        try:
            return [json.loads(text)]
        except json.JSONDecodeError as exc:
            if path.endswith(".json"):
                raise InputError(
                    path, f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
                ) from None
    try:
        return [d for d in yaml.load_all(text, Loader=_Loader) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise InputError(path, f"not valid YAML: {problem}{at}") from None


def _is_list(obj: Any) -> bool:
    if not isinstance(obj, Mapping) or not isinstance(obj.get("items"), list):
        return False
    kind = obj.get("kind")
    return kind is None or (isinstance(kind, str) and kind.endswith("List"))


def _flatten(file: str, where: str, obj: Any) -> Iterator[Document]:
    if _is_list(obj):
        for i, item in enumerate(obj["items"]):
            yield from _flatten(file, f"{where} items[{i}]".strip(), item)
    elif isinstance(obj, list):
        for i, item in enumerate(obj):
            yield from _flatten(file, f"{where} [{i}]".strip(), item)
    else:
        yield Document(file, where, obj)


def read_documents(path: str) -> list[Document]:
    """Every object in the file, `List`s and top-level arrays flattened into their items."""
    docs = read_file(path)
    out: list[Document] = []
    for i, obj in enumerate(docs):
        where = f"document {i + 1}" if len(docs) > 1 else ""
        out.extend(_flatten(path, where, obj))
    return [d if d.where else Document(d.file, "document 1", d.obj) for d in out]
