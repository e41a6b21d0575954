"""What the trainer tells a person while it runs. The base Reporter is silent (library
use, tests); RichReporter draws a progress bar with the loss and images/s."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class Reporter:
    """Silent; subclass to show progress. The trainer calls these in order."""

    def start(self, run_dir: Path, recipe: Any, model: Any) -> None: ...

    def start_epoch(self, stage: str, epoch: int, epochs: int, steps: int, done: int) -> None: ...

    def advance(self, done: int, record: dict[str, float]) -> None: ...

    def end_epoch(self, stage: str, epoch: int, epochs: int, metrics: dict[str, float]) -> None: ...

    def message(self, text: str) -> None: ...

    def close(self) -> None: ...


class RichReporter(Reporter):
    def __init__(self, console: Any = None, headline: str = "loss") -> None:
        from rich.console import Console

        self.console = console or Console(stderr=True)
        self.progress = None
        self.task = None
        self.headline = headline

    def start(self, run_dir: Path, recipe: Any, model: Any) -> None:
        params = sum(p.numel() for p in model.parameters())
        self.headline = type(model).headline_metric
        self.console.print(
            f"[bold]{recipe.family}[/] on [bold]{recipe.data}[/] · {params:,} parameters · "
            f"seed {recipe.seed} → [cyan]{run_dir}[/]"
        )

    def start_epoch(self, stage: str, epoch: int, epochs: int, steps: int, done: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.close()
        label = f"epoch {epoch + 1}/{epochs}" if stage == "main" else f"{stage} {epoch + 1}/{epochs}"
        self.progress = Progress(
            TextColumn(f"{label:>14}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
            # Its figures change only where the trainer logs (every train.log_every steps); a
            # redraw takes about 0.6 ms of the training process's time and holds the GIL, so
            # twice a second rather than rich's ten.
            refresh_per_second=2,
        )
        self.progress.start()
        self.task = self.progress.add_task(label, total=steps, completed=done, stats="")

    def advance(self, done: int, record: dict[str, float]) -> None:
        if self.progress is None:
            return
        value = record.get(self.headline, record.get("loss", float("nan")))
        stats = f"{self.headline} {value:.3f} · {record.get('images_per_s', 0):,.0f} img/s"
        self.progress.update(self.task, completed=done, stats=stats)

    def end_epoch(self, stage: str, epoch: int, epochs: int, metrics: dict[str, float]) -> None:
        self.close()
        label = f"epoch {epoch + 1}/{epochs}" if stage == "main" else f"{stage} {epoch + 1}/{epochs}"
        shown = " · ".join(f"{k} {v:.4g}" for k, v in metrics.items())
        self.console.print(f"{label:>14}  test  {shown}")

    def message(self, text: str) -> None:
        self.console.print(f"[yellow]{text}[/]")

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
