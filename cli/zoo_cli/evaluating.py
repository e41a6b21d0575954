"""`zoo eval`: the metrics that apply to a model, printed and kept in its folder's eval.json."""

from __future__ import annotations

import json

import click

from zoo_cli.hub import revision_option
from zoo_cli.loading import SEED, load_model, model_data


@click.command("eval")
@click.argument("model")
@click.option("--data", "-d", help="Dataset whose test split is scored. Default: the one the model was trained on.")
@click.option(
    "--metrics",
    "-m",
    help="Comma-separated groups: family, nll, recon, fid, probe, disentanglement. Default: all that apply.",
)
@click.option(
    "--nll-k", type=click.IntRange(1, 10000), default=1000, show_default=True, help="Importance samples per image."
)
@click.option("--nll-examples", type=click.IntRange(0), default=0, help="Test images scored by nll (0: all).")
@click.option(
    "--fid-samples", type=click.IntRange(0, 100_000), default=0, help="Samples for fid (0: as many as test images)."
)
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of every random draw.")
@click.option("--json", "as_json", is_flag=True, help="Print the eval.json document instead of a table.")
@click.option(
    "-o", "--output", help="Where to write eval.json. Default: into MODEL's folder when it is a local folder."
)
@click.option("--device", default="cpu", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@revision_option
def evaluate(
    model: str,
    data: str | None,
    metrics: str | None,
    nll_k: int,
    nll_examples: int,
    fid_samples: int,
    seed: int,
    as_json: bool,
    output: str | None,
    device: str,
    revision: str | None,
) -> None:
    """Score MODEL on a test split: likelihood, reconstruction, sample quality, probes.

    MODEL is a run folder, a model folder or a Hub repo id. The results go to eval.json in a
    local MODEL's folder (the only file eval writes there) and into the model card when the
    model is pushed. docs/eval.md defines every metric."""
    from zoo.errors import InvalidInputError
    from zoo.evaluation.report import EvalSettings
    from zoo.evaluation.report import evaluate as run_evaluation
    from zoo.names import parse_model_ref

    groups = [g.strip() for g in metrics.split(",") if g.strip()] if metrics is not None else None
    if groups == []:
        raise InvalidInputError("--metrics needs at least one group")
    _check_fid_samples(fid_samples)
    target = _target(output, model, revision)
    net, folder = load_model(model, device, revision)
    splits = model_data(net, folder, data)
    settings = EvalSettings(nll_k=nll_k, nll_examples=nll_examples, fid_samples=fid_samples, seed=seed)
    report = run_evaluation(net, splits, groups, settings, reference=str(parse_model_ref(model, revision)))
    if target:
        report, note = _add_to_earlier(report, target)
        written = f"wrote {report.write(target)}{note}"
    else:
        written = "not written: MODEL is not a local folder (pass -o PATH to keep it)"
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
        return
    _print_table(report)
    click.echo(written)


def _add_to_earlier(report, target):
    """The report to write at `target`, with the groups of the eval report already there that
    this run did not repeat (`EvalReport.adding_to`), and a note on what became of that one."""
    from zoo.errors import CorruptFileError
    from zoo.evaluation.report import read_eval_file, why_apart

    try:
        earlier = read_eval_file(target)
    except CorruptFileError:
        return report, f" (replacing {target.name}, which was not a zoo eval report)"
    if earlier is None:
        return report, ""
    apart = why_apart(earlier, report)
    if apart:
        return report, f" (replacing the earlier {target.name}: {apart})"
    combined = report.adding_to(earlier)
    kept = [g for g in combined.groups if g not in report.groups]
    return combined, f" (with the earlier figures of {', '.join(kept)})" if kept else ""


def _target(output: str | None, model: str, revision: str | None):
    """The file eval.json goes to: -o, else the local model folder's eval.json, else None."""
    from pathlib import Path

    from zoo.atomic import refuse_model_file
    from zoo.errors import InvalidInputError
    from zoo.evaluation.report import EVAL_FILE
    from zoo.names import parse_model_ref

    if output:
        path = Path(output)
        if path.suffix != ".json":
            raise InvalidInputError(f"output '{output}' must end in .json")
        if not path.parent.is_dir():
            raise InvalidInputError(f"cannot write '{output}': folder '{path.parent}' does not exist")
        return refuse_model_file(path)
    ref = parse_model_ref(model, revision)
    return Path(ref.text).expanduser() / EVAL_FILE if ref.kind == "path" else None


def _print_table(report) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"{report.family} on {report.data} ({report.split}, {report.examples} images)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in sorted(report.metrics.items()):
        table.add_row(name, f"{value:.4g}")
    console = Console()
    console.print(table)
    for group, reason in report.skipped.items():
        console.print(f"[dim]skipped {group}: {escape(reason)}[/]", highlight=False)


def _check_fid_samples(fid_samples: int) -> None:
    """Refuse a sample count too small for fid's precision and recall (0 means: as many as test images)."""
    from zoo.errors import InvalidInputError
    from zoo.evaluation.samples import NEIGHBOURS

    if 0 < fid_samples <= NEIGHBOURS:
        raise InvalidInputError(
            f"--fid-samples {fid_samples} is too few: precision and recall need more than {NEIGHBOURS} "
            "samples (0: as many as test images)"
        )
