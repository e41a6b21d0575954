"""`zoo list` and `zoo info`: what is installed and what it can do."""

from __future__ import annotations

import fnmatch
import json

import click


@click.command("list")
@click.argument("pattern", default="*")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts instead of tables.")
def list_command(pattern: str, as_json: bool) -> None:
    """List model families (with their recipes), datasets and published models.

    PATTERN filters names shell-style, e.g. `zoo list 'v*'`."""
    from zoo.catalogue import load_catalogue
    from zoo.registry import datasets, families

    def match(name: str) -> bool:
        return fnmatch.fnmatch(name, pattern)

    fams = [
        {
            "name": e.name,
            "summary": e.spec.summary if e.spec else "",
            "package": e.package,
            "version": e.version,
            "first_party": e.first_party,
            "status": e.status,
            "error": e.error,
            "recipes": _recipes(e.spec),
            "default_recipe": e.spec.default_recipe if e.spec else None,
        }
        for e in families.entries()
        if match(e.name)
    ]
    sets = [
        {
            "name": e.name,
            "summary": e.spec.summary if e.spec else "",
            "shape": list(e.spec.shape) if e.spec else [],
            "classes": e.spec.num_classes if e.spec else 0,
            "size": e.spec.size if e.spec else "",
            "package": e.package,
            "status": e.status,
            "error": e.error,
        }
        for e in datasets.entries()
        if match(e.name)
    ]
    models = [{"name": name, **vars(m)} for name, m in load_catalogue().models.items() if match(name)]
    if as_json:
        click.echo(json.dumps({"families": fams, "datasets": sets, "models": models}, indent=2))
        return
    _render(fams, sets, models)


def _recipes(spec: object) -> list[str]:
    """The recipes a family ships; none for a spec that failed to load or whose recipes
    package does not import (`zoo plugin check` says why)."""
    from zoo.errors import ZooError
    from zoo.recipes import recipe_names

    try:
        return recipe_names(spec) if spec else []
    except ZooError:
        return []


def _render(fams: list[dict], sets: list[dict], models: list[dict]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    table = Table(title="Families", title_justify="left")
    for column in ("name", "recipes", "package", "status", "summary"):
        table.add_column(column, overflow="fold")
    for f in fams:
        recipes = ", ".join(f"[bold]{r}[/]" if r == f["default_recipe"] else r for r in f["recipes"])
        origin = f"{f['package']} {f['version']}" + ("" if f["first_party"] else " [magenta](third-party)[/]")
        status = "[green]ok[/]" if f["status"] == "ok" else f"[red]{f['status']}[/]: {escape(f['error'])}"
        table.add_row(f["name"], recipes, origin, status, escape(f["summary"]))
    console.print(table)
    table = Table(title="Datasets", title_justify="left")
    for column in ("name", "shape", "classes", "size", "summary"):
        table.add_column(column, overflow="fold")
    for d in sets:
        if d["status"] != "ok":
            table.add_row(d["name"], "", "", "", f"[red]{d['status']}[/]: {escape(d['error'])}")
        else:
            shape = "×".join(map(str, d["shape"]))
            table.add_row(d["name"], shape, str(d["classes"] or ""), escape(d["size"]), escape(d["summary"]))
    console.print(table)
    if models:
        table = Table(title="Published models", title_justify="left")
        for column in ("name", "family", "dataset", "repo", "revision"):
            table.add_column(column)
        for m in models:
            table.add_row(m["name"], m["family"], m["dataset"], m["repo"], m["revision"][:10])
        console.print(table)
    else:
        console.print("[dim]No published models in the catalogue yet.[/]")


@click.command()
@click.argument("family")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def info(family: str, as_json: bool) -> None:
    """Show a family: where it comes from, what it can do, its config and recipes."""
    import dataclasses
    import inspect

    from zoo.factory import family_class, family_entry
    from zoo.recipes import recipe_names

    entry = family_entry(family)
    cls = family_class(family)
    fields = [
        {
            "name": f.name,
            "type": str(f.type),
            "default": f.default if f.default is not dataclasses.MISSING else f.default_factory(),
        }
        for f in dataclasses.fields(cls.config_class)
    ]
    data = {
        "name": entry.name,
        "package": entry.package,
        "version": entry.version,
        "summary": entry.spec.summary,
        "description": inspect.cleandoc(cls.__doc__ or ""),
        "capabilities": list(cls.capabilities()),
        "stages": list(cls.stages),
        "headline_metric": cls.headline_metric,
        "recipes": recipe_names(entry.spec),
        "default_recipe": entry.spec.default_recipe,
        "config": fields,
    }
    if as_json:
        click.echo(json.dumps(data, indent=2, default=list))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    console.print(f"[bold]{data['name']}[/] — {escape(data['summary'])}  [dim]({entry.package} {entry.version})[/]")
    if data["description"]:
        console.print(escape(data["description"]))
    console.print(
        f"can: {', '.join(data['capabilities']) or '—'} · stages: {', '.join(data['stages'])} · "
        f"headline metric: {data['headline_metric']}"
    )
    console.print(f"recipes: {', '.join(data['recipes'])} (default {data['default_recipe']})")
    table = Table(title="Config (override with --set model.KEY=VALUE)", title_justify="left")
    for column in ("key", "type", "default"):
        table.add_column(column)
    for f in fields:
        table.add_row(f["name"], escape(f["type"]), escape(str(f["default"])))
    console.print(table)
