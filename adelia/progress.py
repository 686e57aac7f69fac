"""A quiet-by-default progress display for the mode search and the integration.

``Progress(enabled=None)`` shows a tqdm status line on stderr only once a stage has taken
longer than ``delay`` seconds and stderr is a terminal (so quick fits and logs stay clean);
``enabled=True`` (``verbose=True``) always shows it, ``enabled=False`` never.
"""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, enabled: bool | None = None, delay: float = 2.0):
        self.enabled = enabled
        self.delay = 0.0 if enabled else delay
        self._bar = None
        self._label = ""
        self._t0 = 0.0

    def _active(self) -> bool:
        if self.enabled is False:
            return False
        if self.enabled is None and not sys.stderr.isatty():
            return False
        return time.perf_counter() - self._t0 >= self.delay

    def start(self, label: str) -> None:
        self._label = label
        self._t0 = time.perf_counter()
        if self.enabled:
            self._open()

    def _open(self):
        if self._bar is None:
            try:
                from tqdm.auto import tqdm
            except ImportError:  # pragma: no cover - tqdm is a dependency
                return
            self._bar = tqdm(total=None, desc=f"adelia: {self._label}", leave=False, file=sys.stderr, bar_format="{desc} {elapsed} {postfix}")

    def update(self, message: str) -> None:
        if self._active():
            self._open()
            if self._bar is not None:
                self._bar.set_postfix_str(message, refresh=True)

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
