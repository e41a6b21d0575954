"""The trainer's file writes, done on one background thread while training goes on.

What a write holds is made on the training thread (the bytes of a checkpoint, a model
folder's files or a sample grid: a snapshot of that moment) and handed over; the thread does the part that
waits on the disk: write, fsync, rename (`zoo.atomic`; Python releases the GIL for each).
On a busy or network disk that part takes from a few to tens of milliseconds per file.

Writes land in the order they were handed over. After a failed write the later ones are
dropped, so that no file gets ahead of an error; the error is raised on the training
thread at the next handover or at `wait()`. At most `MAX_PENDING` writes wait at a time,
which bounds the memory their bytes hold.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

#: Writes that may wait at once: one epoch's end hands over a sample grid, a model folder and
#: a checkpoint.
MAX_PENDING = 3


class BackgroundWriter:
    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="zoo-writes")
        self._pending: deque[Future[None]] = deque()
        self._failed = False  # read and set on the writing thread only

    def submit(self, write: Callable[[], object]) -> None:
        """Run `write()` after the writes handed over before it; raises an earlier write's error."""
        self._collect(keep=MAX_PENDING - 1)
        self._pending.append(self._executor.submit(self._run, write))

    def wait(self) -> None:
        """Block until every write handed over has landed; raise the first one that failed."""
        self._collect(keep=0)

    def close(self) -> None:
        """`wait()`, then stop the thread (also when a write failed)."""
        try:
            self.wait()
        finally:
            self._executor.shutdown(wait=True)

    def _collect(self, keep: int) -> None:
        """Take finished writes off the queue, waiting for the oldest while more than `keep` wait."""
        while self._pending and (self._pending[0].done() or len(self._pending) > keep):
            self._pending.popleft().result()

    def _run(self, write: Callable[[], object]) -> None:
        if self._failed:
            return
        try:
            write()
        except BaseException:
            self._failed = True
            raise
