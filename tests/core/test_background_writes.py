import threading
import time

import pytest

from zoo.background_writes import MAX_PENDING, BackgroundWriter
from zoo.errors import StorageError


def test_writes_land_in_the_order_they_were_handed_over():
    landed: list[int] = []
    writer = BackgroundWriter()
    for i in range(40):
        writer.submit(lambda i=i: (time.sleep(0.001 * (i % 3)), landed.append(i)))
    writer.close()
    assert landed == list(range(40))


def test_a_failed_write_is_raised_on_the_callers_thread_and_later_writes_are_dropped():
    landed: list[str] = []
    writer = BackgroundWriter()

    def fail() -> None:
        raise StorageError("cannot write 'x': No space left on device")

    writer.submit(lambda: landed.append("before"))
    writer.submit(fail)
    writer.submit(lambda: landed.append("after"))
    with pytest.raises(StorageError, match="No space left"):
        writer.close()
    assert landed == ["before"]


def test_handing_over_returns_at_once_and_blocks_only_past_the_pending_limit():
    release = threading.Event()
    writer = BackgroundWriter()
    started = time.perf_counter()
    writer.submit(release.wait)  # a disk that does not answer
    for _ in range(MAX_PENDING - 1):
        writer.submit(lambda: None)
    assert time.perf_counter() - started < 0.5  # the caller went on

    one_more = threading.Thread(target=writer.submit, args=(lambda: None,))
    one_more.start()
    one_more.join(timeout=0.3)
    assert one_more.is_alive()  # waits for the stuck write: memory stays bounded
    release.set()
    one_more.join(timeout=5)
    assert not one_more.is_alive()
    writer.close()
