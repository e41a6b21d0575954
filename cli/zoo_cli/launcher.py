"""`zoo train --nproc N`: the command run again under torchrun, reported like one process.

Every worker writes its outcome (done, aborted, or its one-line error) to a file in a
folder the launcher names in ZOO_WORKER_OUTCOMES, instead of printing errors itself; the
launcher then ends as one process would: exit 0, or one line (rank 0's error first) and
exit 2.
torchrun runs in a child process (`python -m zoo_cli.launcher`) with its own logging and
tracebacks silenced: they would repeat, as a traceback, what the workers' outcomes say.

Ctrl-C reaches the launcher, torchrun and the workers alike (one process group): the
launcher waits, torchrun forwards it once more, and each worker takes the two as one
request to stop after the current step with a checkpoint (see zoo.trainer).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from zoo.errors import TrainingError

#: The folder a zoo-launched worker writes its outcome to (unset: torchrun run by hand).
OUTCOMES = "ZOO_WORKER_OUTCOMES"
DONE = "done"
ABORTED = "aborted"
ERROR = "error "


def report_outcome(outcome: str) -> bool:
    """In a worker started by `launch`: write this rank's outcome (DONE, ABORTED, or ERROR +
    the message) and return True; elsewhere do nothing and return False."""
    folder = os.environ.get(OUTCOMES)
    if not folder:
        return False
    Path(folder, f"rank-{os.environ.get('RANK', '0')}").write_text(outcome, encoding="utf-8")
    return True


def launch(args: list[str], nproc: int) -> None:
    """Run `zoo ARGS` (a `train` command) in `nproc` data-parallel processes; return when
    all are done, else raise the error of the first failing rank (rank 0's first), or
    KeyboardInterrupt when a second Ctrl-C aborted them."""
    with tempfile.TemporaryDirectory(prefix="zoo-workers-") as folder:
        env = {**os.environ, OUTCOMES: folder}
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
        command = [sys.executable, "-m", "zoo_cli.launcher", "--standalone", f"--nproc_per_node={nproc}"]
        process = subprocess.Popen([*command, "-m", "zoo_cli", *args], env=env)
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # the workers handle Ctrl-C
        try:
            code = process.wait()
        finally:
            signal.signal(signal.SIGINT, previous)
        outcomes = {int(p.name.split("-")[1]): p.read_text(encoding="utf-8") for p in Path(folder).glob("rank-*")}
    errors = [outcomes[rank][len(ERROR) :] for rank in sorted(outcomes) if outcomes[rank].startswith(ERROR)]
    if errors:
        raise TrainingError(errors[0])
    if ABORTED in outcomes.values():
        raise KeyboardInterrupt
    if len(outcomes) < nproc:
        raise TrainingError(
            f"data-parallel training failed: {nproc - len(outcomes)} of {nproc} processes ended without "
            f"finishing (exit code {code}); see their output above"
        )


def quiet_torchrun(argv: list[str]) -> int:
    """torchrun with `argv`, its logging off and its failures as an exit code, not a traceback."""
    import logging

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    logging.disable(logging.CRITICAL)
    try:
        run(parse_args(argv))
    except ChildFailedError as err:
        return err.get_first_failure()[1].exitcode or 1
    except SignalException:
        return 128 + signal.SIGINT
    return 0


if __name__ == "__main__":
    sys.exit(quiet_torchrun(sys.argv[1:]))
