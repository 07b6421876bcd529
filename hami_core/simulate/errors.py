"""The one error `hami simulate` raises for bad input: it names the file, the object, the field."""

from __future__ import annotations

from hami_core.errors import HamiError

__all__ = ["InputError"]


class InputError(HamiError, ValueError):
    """An inventory, workload or config file that cannot be simulated.

    `file` is the path as given, `obj` names the object inside it (e.g. `node "gpu-1"
    (nodes[0])`), `field` the dotted path of the bad field; either may be empty when the problem
    is with the whole file or object.
    """

    def __init__(self, file: str, problem: str, *, obj: str = "", field: str = "") -> None:
        where = ": ".join(part for part in (file, obj, field) if part)
        super().__init__(f"{where}: {problem}")
        self.file = file
        self.obj = obj
        self.field = field
        self.problem = problem
