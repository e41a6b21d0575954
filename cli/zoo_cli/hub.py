"""`zoo push` and `zoo pull`: publish a model folder to the Hugging Face Hub, fetch one back."""

from __future__ import annotations

import click

revision_option = click.option(
    "--revision", help="Branch, tag or commit sha of a Hub model (same as MODEL@REVISION). Default: main."
)


@click.command()
@click.argument("folder", type=click.Path(file_okay=False))
@click.argument("repo_id")
@click.option("--private", is_flag=True, help="Create the repo as private; an existing repo must be private already.")
@click.option("--branch", help="Push to this branch (created from main if missing). Default: main.")
@click.option("--message", "-m", help="Commit message.")
def push(folder: str, repo_id: str, private: bool, branch: str | None, message: str | None) -> None:
    """Publish FOLDER (a run folder or model folder) to the Hub repo REPO_ID (user/name).

    Uploads config.json, model.safetensors, recipe.yaml, eval.json, the model card (README.md,
    with a usage snippet for REPO_ID) and the sample grid it shows; never checkpoints or logs.
    What an earlier push left that this one does not carry (recipe, eval.json, samples) is
    removed.
    The token comes from HF_TOKEN or `hf auth login`; HF_ENDPOINT picks another Hub."""
    from zoo.hub import push as push_folder

    pushed = push_folder(folder, repo_id, private=private, branch=branch, message=message)
    click.echo(f"pushed {len(pushed.files)} files to {pushed.repo}@{pushed.branch} (commit {pushed.commit[:12]})")
    click.echo(pushed.url)


@click.command()
@click.argument("model")
@revision_option
def pull(model: str, revision: str | None) -> None:
    """Download MODEL (user/name, hf-hub:user/name[@rev], or a catalogue name) into the Hub
    cache and check it loads; prints where it landed.

    Catalogue models are pinned to a commit and their model.safetensors must match the
    catalogue's sha256. Afterwards the model works offline (HF_HUB_OFFLINE=1)."""
    from zoo.hub import pull as pull_model

    pulled = pull_model(model, revision=revision)
    if pulled.unreachable:
        click.secho(
            f"note: the Hub did not answer ({pulled.unreachable}); this is the copy in the cache, "
            "which may be older than the repo",
            err=True,
            fg="yellow",
        )
    checked = "sha256 matches the catalogue" if pulled.catalogue_name else f"sha256 {pulled.sha256[:16]}…"
    click.echo(f"pulled {pulled.family} model {pulled.repo}@{pulled.commit[:12]}: loads, {checked}")
    click.echo(str(pulled.path))
