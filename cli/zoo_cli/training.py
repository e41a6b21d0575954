"""`zoo train`: one command for every family; the work is zoo.train's."""

from __future__ import annotations

import sys

import click

from zoo_cli.loading import SEED


@click.command()
@click.argument("family", required=False)
@click.option("--recipe", "-r", help="Recipe name the family ships, or a YAML file. Default: the family's default.")
@click.option("--data", "-d", help="Dataset name (see `zoo list`). Default: the recipe's.")
@click.option(
    "--epochs",
    "-e",
    type=click.IntRange(min=1),
    help="Epochs (with --resume: of the stage the run is in, written into its recipe).",
)
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
@click.option("--seed", type=SEED, help="Random seed. Default: the recipe's.")
@click.option("--resume", type=click.Path(file_okay=False), help="Continue the run in this folder.")
@click.option(
    "--stage",
    help="With --resume: train this stage of the run again (e.g. prior), from its current weights.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar; print only the summary.")
@click.option(
    "--nproc",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Data-parallel processes on this machine (launched with torchrun; gloo on CPU, nccl on GPU).",
)
@click.pass_context
def train(
    ctx, family, recipe, data, epochs, batch_size, overrides, out, device, seed, resume, stage, quiet, nproc
) -> None:
    """Train FAMILY (e.g. vae) and write a run folder.

    The run folder holds config.json + model.safetensors (a model folder that
    `zoo sample` and `zoo.load` read), recipe.yaml, metrics.jsonl, sample grids,
    loss.png and a checkpoint. Ctrl-C stops after the current step and saves;
    `zoo train --resume RUN` continues bit for bit; `zoo train --resume RUN
    --stage prior --epochs 30` trains a run's prior stage again."""
    import os

    import zoo
    from zoo.progress import Reporter, RichReporter

    if resume is not None and ctx.get_parameter_source("out") is not click.core.ParameterSource.DEFAULT:
        from zoo.errors import InvalidInputError

        raise InvalidInputError("--out names where a new run goes; --resume continues RUN in its own folder")
    if nproc > 1 and "WORLD_SIZE" not in os.environ:
        _launch(ctx, nproc)
        return
    from zoo.errors import ZooError
    from zoo_cli.launcher import ABORTED, DONE, ERROR, report_outcome
    from zoo_cli.main import debugging

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
    except ZooError as err:
        # The launcher prints it, once; with --debug every worker shows its traceback too.
        if report_outcome(ERROR + str(err)) and not debugging(ctx):
            _exit_worker(2)
        raise
    except KeyboardInterrupt:  # a second Ctrl-C
        if report_outcome(ABORTED):
            _exit_worker(130)
        raise
    finally:
        reporter.close()
    if int(os.environ.get("RANK", "0")) == 0:
        _summary(run)
    if "WORLD_SIZE" in os.environ:
        report_outcome(DONE)
        _exit_worker(0)


def _exit_worker(code: int) -> None:
    """A torchrun worker ends here: exit without running interpreter teardown, which can
    race with gloo's threads (the process group was already left cleanly)."""
    import os

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _launch(ctx: click.Context, nproc: int) -> None:
    """Re-run this command in `nproc` data-parallel processes (zoo_cli.launcher)."""
    from zoo.recipes import load_recipe
    from zoo_cli.launcher import launch
    from zoo_cli.main import debugging

    params = dict(ctx.params)
    if params["resume"] is None and params["family"]:  # refuse a bad recipe here, once, not in every worker
        extra = [f"{k}={v}" for k, v in (("data", params["data"]), ("seed", params["seed"])) if v is not None]
        load_recipe(params["family"], params["recipe"], [*params["overrides"], *extra])
    args = [params["family"]] if params["family"] else []
    flags = {
        "--recipe": "recipe",
        "--data": "data",
        "--epochs": "epochs",
        "--batch-size": "batch_size",
        "--out": "out",
        "--device": "device",
        "--seed": "seed",
        "--resume": "resume",
        "--stage": "stage",
    }
    if params["resume"] is not None:
        del flags["--out"]  # a resumed run stays in its folder
    for flag, key in flags.items():
        if params[key] is not None:
            args += [flag, str(params[key])]
    for item in params["overrides"]:
        args += ["--set", item]
    if params["quiet"]:
        args.append("--quiet")
    debug = ["--debug"] if debugging(ctx) else []
    launch([*debug, "train", *args], nproc)


def _summary(run) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    if run.interrupted:
        console.print(
            f"[yellow]interrupted[/] at step {run.steps}; saved. "
            f"Continue with: zoo train --resume {escape(str(run.path))}",
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
    console.print(f"run folder: [cyan]{escape(str(run.path))}[/]", soft_wrap=True)
