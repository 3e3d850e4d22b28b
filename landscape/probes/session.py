"""What every probe pipeline shares: the callbacks it reports through (:class:`Reporter`), the
out-of-memory retry of its matrix (:class:`Fitted`) and its result (:class:`Written`)."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

OnProgress = Callable[[str, int, int], None]  # (what, done, total)


class Written(NamedTuple):
    """What a pipeline computed and wrote."""

    report: dict  # the JSON written (hessian.json, curvature.json); eigen_map: its summary
    files: list[str]  # every file written, in order (the JSON first)


@dataclasses.dataclass(frozen=True)
class Reporter:
    """The caller's callbacks, each optional.

    ``on_progress(what, done, total)``: ``done`` of ``total`` units of the phase ``what``
    (``"density"`` probes, ``"eigen map"`` points, ``"blocks"``, ``"mini-batches"``,
    ``"curvature"`` steps). ``on_message(line)``: a line of the summary (values, tables).
    ``on_warning(line)``: a note or warning ("note: ...", "warning: ...", "out of device
    memory ...: retrying with ..."); without it, a :class:`RuntimeWarning`. Lines name the
    pipeline's arguments in backticks (`` `tol` ``), as the library's errors do."""

    on_progress: OnProgress | None = None
    on_message: Callable[[str], None] | None = None
    on_warning: Callable[[str], None] | None = None

    def message(self, line: str) -> None:
        if self.on_message is not None:
            self.on_message(line)

    def warning(self, line: str) -> None:
        if self.on_warning is None:
            warnings.warn(line, RuntimeWarning, stacklevel=3)
        else:
            self.on_warning(line)

    def shrink(self, old: int, new: int, what: str) -> None:
        from landscape.engine.memory import shrink_message

        self.warning(shrink_message(old, new, what))

    def counter(self, what: str, total: int, done: int = 0) -> Callable[[int], None]:
        """``add(n)``: ``n`` more units of ``what`` done (reported at once with ``done``)."""
        count = [done]

        def add(n: int = 1) -> None:
            count[0] += n
            if self.on_progress is not None:
                self.on_progress(what, count[0], total)

        add(0)
        return add


class Fitted:
    """Runs ``fn(problem)``; out of device memory, again over batches of half the size (said as
    a warning each time), and keeps the problem that fitted for what follows."""

    def __init__(self, problem: Any, said: Reporter):
        self.problem, self.said = problem, said

    def __call__(self, fn: Callable[[Any], Any]) -> Any:
        from landscape.curvature.operator import smaller_on_oom

        result, self.problem = smaller_on_oom(self.problem, fn, on_shrink=self.said.shrink)
        return result
