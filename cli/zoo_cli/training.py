"""`zoo train`: one command for every family; the work is zoo.train's."""

from __future__ import annotations

import click


@click.command()
@click.argument("family", required=False)
@click.option("--recipe", "-r", help="Recipe name the family ships, or a YAML file. Default: the family's default.")
@click.option("--data", "-d", help="Dataset name (see `zoo list`). Default: the recipe's.")
@click.option("--epochs", "-e", type=click.IntRange(min=1), help="Epochs (with --resume: extend a finished run).")
@click.option("--batch-size", "-b", type=click.IntRange(min=1), help="Batch size.")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a recipe value, e.g. --set model.beta=4 --set train.optimizer.lr=1e-3.",
)
@click.option("--out", "-o", default="runs", show_default=True, help="Folder that receives the run folder.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--seed", type=int, help="Random seed. Default: the recipe's.")
@click.option("--resume", type=click.Path(file_okay=False), help="Continue the run in this folder.")
@click.option(
    "--stage",
    help="With --resume: train this stage of the run again (e.g. prior), from its current weights.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar; print only the summary.")
def train(family, recipe, data, epochs, batch_size, overrides, out, device, seed, resume, stage, quiet) -> None:
    """Train FAMILY (e.g. vae) and write a run folder.

    The run folder holds config.json + model.safetensors (a model folder that
    `zoo sample` and `zoo.load` read), recipe.yaml, metrics.jsonl, sample grids,
    loss.png and a checkpoint. Ctrl-C stops after the current step and saves;
    `zoo train --resume RUN` continues bit for bit; `zoo train --resume RUN
    --stage prior --epochs 30` trains a run's prior stage again."""
    import zoo
    from zoo.progress import Reporter, RichReporter

    reporter = Reporter() if quiet else RichReporter()
    try:
        run = zoo.train(
            family,
            recipe,
            data=data,
            epochs=epochs,
            batch_size=batch_size,
            seed=seed,
            overrides=list(overrides),
            out=out,
            device=device,
            resume=resume,
            stage=stage,
            reporter=reporter,
        )
    finally:
        reporter.close()
    _summary(run)


def _summary(run) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if run.interrupted:
        console.print(
            f"[yellow]interrupted[/] at step {run.steps}; saved. Continue with: zoo train --resume {run.path}",
            soft_wrap=True,
        )
        return
    headline = type(run.model).headline_metric
    table = Table(title=f"{run.model.name} · {run.steps} steps · {run.seconds:.0f} s", title_justify="left")
    table.add_column("test metric")
    table.add_column("value", justify="right")
    for key, value in run.metrics.items():
        table.add_row(f"[bold]{key}[/]" if key == headline else key, f"{value:.4f}")
    console.print(table)
    console.print(f"run folder: [cyan]{run.path}[/]", soft_wrap=True)
