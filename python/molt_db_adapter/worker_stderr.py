"""A spawned worker's stderr, read by the client: passed on to where the
caller wanted it (inherited, a file, DEVNULL) and its start kept, because a
worker that cannot start (bad option, bad DSN) says why there and exits."""

from __future__ import annotations

import os
from typing import IO, Any, Optional, Union

__all__ = ["StderrTap"]

#: how much of the start of stderr is kept for a start-up error
KEEP_BYTES = 8192


class StderrTap:
    def __init__(self, dest: Union[int, IO[Any], None]) -> None:
        self.head = bytearray()
        self._dest = dest

    def feed(self, data: bytes) -> None:
        room = KEEP_BYTES - len(self.head)
        if room > 0:
            self.head += data[:room]
        dest = self._dest
        try:
            if dest is None:
                _write_all(2, data)
            elif isinstance(dest, int):
                if dest >= 0:
                    _write_all(dest, data)
                # DEVNULL and the other subprocess constants: dropped
            elif "b" in getattr(dest, "mode", "b") or not hasattr(dest, "encoding"):
                dest.write(data)
                dest.flush()
            else:
                dest.write(data.decode("utf-8", "replace"))
                dest.flush()
        except (OSError, ValueError):
            pass  # a closed destination must not break the client

    def start_error(self, exit_status: Optional[int], answered: bool) -> Optional[str]:
        """The worker's message when it exited with an error before
        answering anything (it never started), else None."""
        if answered or exit_status is None or exit_status <= 0:
            return None
        text = self.head.decode("utf-8", "replace").strip()
        return text or "(it wrote nothing to stderr)"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]

