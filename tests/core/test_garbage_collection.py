import gc

import zoo
from tests.conftest import TINY
from zoo.progress import Reporter


class FreezeCounts(Reporter):
    """How many objects the garbage collector skips, seen at the end of each epoch."""

    def __init__(self):
        self.counts = []

    def end_epoch(self, stage, epoch, epochs, metrics):
        self.counts.append(gc.get_freeze_count())


def test_training_keeps_the_collector_off_the_objects_alive_when_it_starts(tmp_path):
    reporter = FreezeCounts()
    assert gc.get_freeze_count() == 0
    zoo.train("vae", overrides=TINY, out=str(tmp_path), reporter=reporter)
    # torch's modules alone are tens of thousands of objects; the model and data come on top
    assert len(reporter.counts) == 2 and all(count > 50_000 for count in reporter.counts)
    assert gc.get_freeze_count() == 0  # handed back: a finished run's objects can be freed


def test_objects_the_process_froze_itself_stay_frozen_and_no_others_are(tmp_path):
    gc.freeze()
    frozen = gc.get_freeze_count()
    try:
        reporter = FreezeCounts()
        zoo.train("vae", overrides=TINY, out=str(tmp_path), reporter=reporter)
        # frozen objects freed by reference counting leave the count; none join it
        counts = [*reporter.counts, gc.get_freeze_count()]
        assert all(frozen - 1000 < count <= frozen for count in counts), (frozen, counts)
    finally:
        gc.unfreeze()
