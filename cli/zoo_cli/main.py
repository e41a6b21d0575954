"""The `zoo` command group. Imports only click and zoo's error types at start-up; each
command imports what it needs when it runs, so `zoo --help` stays fast."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import click

from zoo import __version__
from zoo.errors import ZooError, first_line, one_line

EXIT_BUG = 1
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


class ZooGroup(click.Group):
    """Turns zoo's errors and usage errors into one red line and exit code 2, and any other
    exception into one line naming the package whose code raised it and exit code 1
    (tracebacks only with --debug)."""

    def make_context(self, info_name, args, parent=None, **extra) -> click.Context:
        with usage_errors_in_one_line():  # zoo's own options (a command's are parsed in invoke)
            return super().make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx: click.Context):
        try:
            with usage_errors_in_one_line():
                return super().invoke(ctx)
        except ZooError as err:
            if debugging(ctx):
                raise
            fail(str(err))
        except KeyboardInterrupt:
            if debugging(ctx):
                raise
            fail("aborted", code=EXIT_INTERRUPTED)
        except click.ClickException:
            raise
        except Exception as err:
            if debugging(ctx) or isinstance(err, (click.exceptions.Exit, click.exceptions.Abort)):
                raise
            if out_of_memory(err):
                what = first_line(err) if str(err).strip() else "an allocation failed"
                fail(f"out of memory: {what} (smaller sizes?)")
            package, place = culprit(err)
            fail(
                f"{package} failed at {place}: {one_line(err)} (a bug in {package}; zoo --debug shows the traceback)",
                code=EXIT_BUG,
            )


@contextlib.contextmanager
def usage_errors_in_one_line() -> Iterator[None]:
    """click's usage errors (an unknown option, a value out of range) as one red line naming
    the help to read: click's own are three (usage, a hint, the error)."""
    try:
        yield
    except click.exceptions.NoArgsIsHelpError:
        raise  # a command group given no command: its help
    except click.UsageError as err:
        where = err.ctx.command_path if err.ctx else "zoo"
        fail(f"{err.format_message().rstrip('.')} (see {where} --help)")


def culprit(err: BaseException) -> tuple[str, str]:
    """The package whose code raised `err` and where ("module line N"): the innermost frame in
    zoo or in a package that provides zoo plugins, so a plugin's bug is put down to it even
    when it fails inside torch."""
    import importlib.metadata
    import traceback

    from zoo.registry import FIRST_PARTY, datasets, families

    groups = (families.group, datasets.group)
    points = [ep for group in groups for ep in importlib.metadata.entry_points(group=group)]
    plugins = {FIRST_PARTY} | {ep.dist.name for ep in points if ep.dist}
    # top-level module → the plugin-providing package that installed it ("" for others)
    owners = {
        module: next((p for p in packages if p in plugins), "")
        for module, packages in importlib.metadata.packages_distributions().items()
    }
    for ep in points:  # also where a package's file list does not name its modules
        top = ep.module.split(".")[0]
        owners[top] = owners.get(top) or (ep.dist.name if ep.dist else "")
    owners.update(zoo=FIRST_PARTY, zoo_cli=FIRST_PARTY)
    for frame, line in reversed(list(traceback.walk_tb(err.__traceback__))):
        module = frame.f_globals.get("__name__", "")
        owner = owners.get(module.split(".")[0])
        if owner:
            return (owner if owner == FIRST_PARTY else f"plugin package '{owner}'"), f"{module} line {line}"
    return "zoo", "an unknown place"


def out_of_memory(err: BaseException) -> bool:
    """Whether `err` is an allocation that failed (numpy's MemoryError, torch's allocators'
    RuntimeError): sizes too large for the machine, e.g. a config asking for 10¹¹ units."""
    text = str(err)
    return isinstance(err, MemoryError) or "can't allocate memory" in text or "out of memory" in text.lower()


def debugging(ctx: click.Context) -> bool:
    """Whether `zoo --debug` was given: errors then show their tracebacks."""
    return bool(ctx.obj and ctx.obj.get("debug"))


def fail(message: str, code: int = EXIT_USER_ERROR) -> None:
    from rich.console import Console
    from rich.markup import escape

    # escaped: a message quotes paths and values, and rich would read `photo[final].png` as markup
    Console(stderr=True).print(f"[red]error:[/] {escape(' '.join(message.split()))}", soft_wrap=True, highlight=False)
    sys.exit(code)


@click.group(cls=ZooGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks for errors.")
@click.version_option(__version__, prog_name="zoo")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """A plugin-based zoo of generative image models.

    \b
      zoo list                         families, recipes, datasets, published models
      zoo train vae                    train with the default recipe on mnist-5k
      zoo sample runs/RUN -o grid.png  draw samples from a trained model
      zoo push runs/RUN user/name      publish it on the Hugging Face Hub
      zoo pull user/name               fetch a published model (then: zoo sample user/name)
    """
    ctx.obj = {"debug": debug}


def _register_commands() -> None:
    from zoo_cli import catalogue, codec, evaluating, hub, imaging, plugins, tasks, training

    commands = (
        catalogue.list_command,
        catalogue.info,
        training.train,
        imaging.sample,
        imaging.reconstruct,
        evaluating.evaluate,
        tasks.interpolate,
        tasks.denoise,
        tasks.inpaint,
        tasks.anomaly,
        tasks.encode,
        tasks.plot,
    )
    for command in (*commands, codec.compress, codec.decompress, hub.push, hub.pull, plugins.plugin):
        main.add_command(command)


_register_commands()
