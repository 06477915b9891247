"""Progress bars for long work: documents done, docs/s and ETA (tqdm), safe to advance from worker threads.

On a terminal the bar redraws twice a second; in CI logs (stderr not a TTY) it prints a line every 10 s.
Either way a bar appears only once the work has taken a moment, so small steps do not clutter the output.
"""

from __future__ import annotations

import sys
import threading

from tqdm import tqdm


class Progress:
    def __init__(self, label: str, total: int | None, *, initial: int = 0, enabled: bool = True):
        tty = sys.stderr.isatty()
        self._lock = threading.Lock()
        self._bar = tqdm(total=total, initial=initial, desc=label, unit="doc", unit_scale=True, file=sys.stderr,
                         disable=not enabled, mininterval=0.5 if tty else 10.0, delay=0.5 if tty else 2.0,
                         dynamic_ncols=tty, ascii=not tty, leave=True)

    def advance(self, documents: int) -> None:
        if documents:
            with self._lock:
                self._bar.update(documents)

    def close(self) -> None:
        with self._lock:
            self._bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
