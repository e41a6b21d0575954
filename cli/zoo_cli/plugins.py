"""`zoo plugin new` and `zoo plugin check`: write a plugin package, see which plugins work."""

from __future__ import annotations

import json
import sys

import click

#: `zoo plugin check` found a plugin that is not ok (user errors stay exit 2).
EXIT_PROBLEMS = 1


@click.group("plugin")
def plugin() -> None:
    """Write and check plugin packages that add families (and datasets) to zoo."""


@plugin.command("new")
@click.argument("name")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False),
    help="Folder to create (new or empty). Default: ./zoo-NAME.",
)
def new(name: str, directory: str | None) -> None:
    """Write an installable package for a new family NAME (e.g. ring-vae): a pyproject with the
    entry point, a small working model, a default recipe, a README and tests that run zoo's
    conformance kit (`zoo.testing`)."""
    from rich.console import Console
    from rich.markup import escape

    from zoo.scaffold import new_plugin

    names, root, files = new_plugin(name, directory)
    console = Console(highlight=False, soft_wrap=True)
    console.print(f"wrote {names.package} ({len(files)} files) in [cyan]{escape(str(root))}[/]")
    for path in files:
        console.print(f"  {path.relative_to(root)}", markup=False)
    console.print(f"next: cd {root} && pip install -e '.[test]' && pytest && zoo train {names.family}", markup=False)


@plugin.command("check")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def check(name: str | None, as_json: bool) -> None:
    """Import every plugin fully (each family's model class, each dataset's loader), or only
    NAME (a family, dataset or package), and report its status; exit 1 if any is not ok."""
    from zoo.plugincheck import check_plugins

    found = check_plugins(name)
    if as_json:
        click.echo(json.dumps([vars(s) for s in found], indent=2))
    else:
        _render(found)
    if not all(s.ok for s in found):
        sys.exit(EXIT_PROBLEMS)


def _render(found: list) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="Plugins", title_justify="left")
    for column in ("kind", "name", "package", "status"):
        table.add_column(column, overflow="fold")
    for s in found:
        state = "[green]ok[/]" if s.ok else f"[red]{s.status}[/]: {escape(s.error)}"
        table.add_row(s.kind, s.name, f"{s.package} {s.version}", state)
    console = Console()
    console.print(table)
    problems = sum(not s.ok for s in found)
    console.print(f"{problems} problem(s)" if problems else "all ok", style="red" if problems else "green")
