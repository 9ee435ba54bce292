"""A change stamp shared by every process on one machine: eight bytes of a memory-mapped file.

A writer sets the stamp after each change it has made durable; a reader compares it with the
value it saw when it last looked, and reads the changes only when it differs. Reading the stamp
is a load from shared memory: no system call and no query, so a request can afford it where a
read of the store itself would cost it (on a worker idle between requests, an SQLite query
costs ten times what it costs back to back, and brings SQLite's code back into the caches).

Writers set a value no writer has set before and never set one back (a SQLite rowid, a file's
size after an append), after their change is visible. So a reader that sees the value it saw
last time has missed nothing written before it looked: a writer whose change was visible
already would have set a new value, and a value once replaced never comes back. Two writers
racing may leave the older of their values in place; it still differs from what a reader saw
before either wrote. A reader records the value it saw before reading the changes, so a change
made while it reads is seen on its next look.

Where the file cannot be opened (a read-only folder), :meth:`ChangeStamp.read` returns None and
the caller reads the store every time, as it would without a stamp.
"""

from __future__ import annotations

import mmap
import os
import struct
from pathlib import Path

_FORMAT = struct.Struct("<q")


class ChangeStamp:
    """The stamp file at ``path`` (created, eight zero bytes, when missing)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._map: mmap.mmap | None = None
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            return
        try:
            # several processes may create it at once: growing a file to the size it has
            # changes nothing, and one that another process has written keeps its value
            if os.fstat(fd).st_size < _FORMAT.size:
                os.ftruncate(fd, _FORMAT.size)
            self._map = mmap.mmap(fd, _FORMAT.size)
        except (OSError, ValueError):
            self._map = None
        finally:
            os.close(fd)

    def read(self) -> int | None:
        """The value last set by any process; None where the stamp is unavailable."""
        if self._map is None:
            return None
        return int(_FORMAT.unpack_from(self._map)[0])

    def set(self, value: int) -> None:
        """Publish ``value`` (module doc: one no writer has set before, after the change)."""
        if self._map is not None:
            _FORMAT.pack_into(self._map, 0, value)

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
