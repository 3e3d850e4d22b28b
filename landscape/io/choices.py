"""The engine's remembered strategy choices: one small JSON file, so that a second scan of the
same computation on the same devices does not probe again.

It lives in ``$LANDSCAPE_CACHE_DIR/strategies.json`` (default ``~/.cache/landscape``). It is a
cache: an unreadable or malformed file counts as empty, and a file that cannot be written is
skipped without a word (the next scan probes again).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

from landscape.io.atomic import write_text

ENV_VAR = "LANDSCAPE_CACHE_DIR"
FILE_NAME = "strategies.json"
MAX_ENTRIES = 256


def cache_dir() -> Path:
    return Path(os.environ.get(ENV_VAR) or Path.home() / ".cache" / "landscape")


class StrategyChoices(MutableMapping):
    """A mapping of fingerprint → choice, read from and written through to ``path``."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def _load(self) -> dict[str, Any]:
        try:
            with open(self.path) as handle:
                data = json.load(handle)
        except (OSError, ValueError, RecursionError):
            return {}
        return data if isinstance(data, dict) else {}

    def __getitem__(self, key: str) -> Any:
        return self._load()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        data = self._load()
        data.pop(key, None)
        data[key] = value
        while len(data) > MAX_ENTRIES:
            data.pop(next(iter(data)))
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_text(str(self.path), json.dumps(data, indent=1) + "\n")
        except Exception:  # a cache that cannot be written costs a probe next time, no more
            pass

    def __delitem__(self, key: str) -> None:
        data = self._load()
        del data[key]
        write_text(str(self.path), json.dumps(data, indent=1) + "\n")

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())


def default_choices() -> StrategyChoices:
    return StrategyChoices(cache_dir() / FILE_NAME)
