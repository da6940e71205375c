"""A tqdm progress bar that stays silent when nobody is watching (not a terminal, or disabled)."""

from __future__ import annotations

import sys
from typing import Any


class _Silent:
    """The do-nothing stand-in for a tqdm bar."""

    n = 0

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix_str(self, s: str, refresh: bool = True) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> _Silent:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def progress_bar(total: int, desc: str, enabled: bool) -> Any:
    """A tqdm bar over ``total`` steps on stderr, or a silent stand-in when ``enabled`` is false,
    stderr is not a terminal, or tqdm is missing.

    >>> with progress_bar(3, "steps", enabled=False) as bar:
    ...     bar.update(3)
    """
    if not enabled or not getattr(sys.stderr, "isatty", lambda: False)():
        return _Silent()
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return _Silent()
    return tqdm(total=total, desc=desc, file=sys.stderr, leave=False, dynamic_ncols=True)
