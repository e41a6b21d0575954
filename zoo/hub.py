"""Publishing and fetching models on the Hugging Face Hub, through huggingface_hub.

A Hub repo written by zoo is a model folder: config.json (family, package, config),
model.safetensors, README.md (the model card), recipe.yaml when zoo trained it, eval.json
when the model was evaluated, and the sample grid the card shows. Nothing else of a run
(checkpoints, metrics logs, loss plots) is published: the checkpoint is for resuming, not
for use, and the card carries the metrics.

Transfer, caching, locking, resuming, `HF_ENDPOINT`, `HF_TOKEN` and `HF_HUB_OFFLINE` are
huggingface_hub's (create_repo, upload_folder, snapshot_download). zoo does not use
`PyTorchModelHubMixin`: the mixin binds loading to one Python class and writes that class's
`__init__` arguments as config.json, whereas a zoo repo is loaded by `zoo.load` for any
family named in config.json (with the plugin package that provides it), and a zoo model folder
also carries the card, recipe and samples, and checks every tensor's shape and finiteness on
load. The parts the mixin would give us (snapshot_download, upload_folder, card upload) are
used directly.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo import __version__
from zoo.catalogue import CatalogueModel, is_commit_sha, load_catalogue
from zoo.errors import (
    CorruptFileError,
    HubError,
    InvalidInputError,
    NotFoundError,
    ZooError,
    did_you_mean,
    first_line,
    one_line,
)
from zoo.evaluation.report import EVAL_FILE, read_eval
from zoo.modelcard import card_images, model_card, with_metrics, with_usage
from zoo.modelfile import CARD_FILE, CONFIG_FILE, WEIGHTS_FILE
from zoo.names import HUB_PREFIX, ModelRef, check_repo_id, check_revision, parse_model_ref
from zoo.outputs import output_suffix
from zoo.runfolder import RECIPE_FILE, SAMPLES_DIR

if TYPE_CHECKING:
    from zoo.family import Family

#: What `zoo pull` fetches from a repo: the model folder and nothing else.
PULL_PATTERNS = [CONFIG_FILE, WEIGHTS_FILE, CARD_FILE, RECIPE_FILE, EVAL_FILE, f"{SAMPLES_DIR}/*.png"]
SAMPLE_GRID = "samples.png"
#: What a push removes from the repo when it does not carry it again: an eval.json, recipe or
#: sample grid of earlier weights must not stay beside these. Other files (a licence) stay.
REPLACED_ON_PUSH = [RECIPE_FILE, EVAL_FILE, f"{SAMPLES_DIR}/*"]
#: What a card may show and a push publish beside it.
CARD_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp")


@dataclass(frozen=True)
class Pulled:
    """A model fetched into the Hub cache: the snapshot folder, repo, commit and weights checksum."""

    path: Path
    repo: str
    commit: str
    sha256: str
    family: str
    catalogue_name: str = ""
    #: Why the Hub could not be asked for the revision's newest commit, when the pull gave
    #: the cached copy instead (huggingface_hub falls back to it without a word); else "".
    unreachable: str = ""


@dataclass(frozen=True)
class Pushed:
    """A finished upload: the repo, the branch and the commit it made."""

    repo: str
    branch: str
    commit: str
    url: str
    files: tuple[str, ...]


# ------------------------------------------------------------------------- fetching
def locate(ref: ModelRef) -> Path:
    """The local model folder of a parsed model reference (run folder, model folder, Hub id,
    catalogue name), downloading into the Hub cache when needed."""
    if ref.kind == "path":
        return Path(ref.text).expanduser()
    return _fetch(ref)[0]


@contextlib.contextmanager
def named_by_reference(ref: ModelRef, folder: Path) -> Iterator[None]:
    """Errors about the files of `folder`, the Hub cache's copy of `ref`, name them by `ref`
    (hf-hub:user/name@rev/config.json), not by the snapshot path deep in the cache; for a
    local folder, as they are."""
    try:
        yield
    except ZooError as err:
        if ref.kind == "path":
            raise
        shown = f"{HUB_PREFIX}{ref}" if ref.kind == "hub" else str(ref)
        err.args = tuple(a.replace(str(folder), shown) if isinstance(a, str) else a for a in err.args)
        raise


def pull(source: str, revision: str | None = None) -> Pulled:
    """Download a Hub repo or catalogue model into the cache and check it: the model folder's
    files are there, the checksum matches the catalogue, the family is installed, every tensor fits."""
    from zoo.modelfile import load, read_metadata

    ref = parse_model_ref(source, revision)
    if ref.kind == "path":
        what = (
            "a local folder" if Path(ref.text).expanduser().exists() else "neither a Hub repo id nor an existing folder"
        )
        raise InvalidInputError(f"'{source}' is {what}; `zoo pull` takes a Hub repo id or a catalogue name")
    unreachable = _why_unreachable(ref)
    folder, repo, digest = _fetch(ref)
    with named_by_reference(ref, folder):
        load(folder)
        family = read_metadata(folder)["family"]
    return Pulled(folder, repo, folder.name, digest, family, ref.text if ref.kind == "catalogue" else "", unreachable)


def _why_unreachable(ref: ModelRef) -> str:
    """Why the Hub does not answer for `ref` now ('' when it does, or when nothing newer than
    the cache could come: a catalogue pin, a commit sha, HF_HUB_OFFLINE)."""
    from huggingface_hub import HfApi, constants

    if ref.kind == "catalogue" or constants.HF_HUB_OFFLINE or is_commit_sha(ref.revision):
        return ""
    try:
        with retry_warnings_silenced(), _bounded_timeouts():
            HfApi(library_name="zoo", library_version=__version__).repo_info(ref.repo, revision=ref.revision)
    except Exception as err:  # whatever it is, the download that follows says it again or uses the cache
        return one_line(err)
    return ""


def catalogue_entry(name: str) -> CatalogueModel:
    """The catalogue's pinned entry for a short name; did-you-mean when there is none."""
    from zoo.registry import families

    models = load_catalogue().models
    if name not in models:
        hint = f" ('{name}' is a family: train it or zoo.create('{name}'))" if name in families.names() else ""
        raise NotFoundError(
            f"'{name}' is not a local folder, a Hub repo id ('user/name') or a catalogue model"
            f"{did_you_mean(name, models)}{hint}"
        )
    return models[name]


def _fetch(ref: ModelRef) -> tuple[Path, str, str]:
    """(snapshot folder, repo id, sha256 of its weights) for a Hub or catalogue reference."""
    pinned = catalogue_entry(ref.text) if ref.kind == "catalogue" else None
    repo = pinned.repo if pinned else ref.repo
    revision = pinned.revision if pinned else ref.revision
    folder = _download(repo, revision)
    what = f"{repo}@{revision or 'main'}"
    for required in (CONFIG_FILE, WEIGHTS_FILE):
        if not (folder / required).is_file():
            raise CorruptFileError(
                f"{what} is not a zoo model: it has no {required} (zoo loads only config.json + model.safetensors)"
            )
    digest = sha256_file(folder / WEIGHTS_FILE)
    if pinned and digest != pinned.sha256:
        raise CorruptFileError(
            f"{WEIGHTS_FILE} of '{ref.text}' ({what}) has sha256 {digest[:16]}…, the catalogue pins "
            f"{pinned.sha256[:16]}…: refusing to use it"
        )
    return folder, repo, digest


def _download(repo: str, revision: str | None) -> Path:
    from huggingface_hub import snapshot_download

    what = f"{repo}@{revision or 'main'}"
    with _transfer(what, repo, revision, "download"):
        path = snapshot_download(
            repo,
            revision=revision,
            allow_patterns=PULL_PATTERNS,
            library_name="zoo",
            library_version=__version__,
        )
    return Path(path)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ------------------------------------------------------------------------- publishing
def save_pretrained(model: Family, directory: str | os.PathLike, repo_id: str | None = None) -> Path:
    """Write `model` as a publishable model folder: config.json, model.safetensors, samples
    (seed 0, when the family samples: a grid PNG the model card shows, or samples.npy for
    vectors and signals) and a model card."""
    import torch

    from zoo import atomic
    from zoo.modelfile import save
    from zoo.outputs import output_bytes, output_suffix

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    grid = None
    if "sample" in model.capabilities():
        (directory / SAMPLES_DIR).mkdir(exist_ok=True)
        generator = torch.Generator(model.device).manual_seed(0)
        with torch.no_grad():
            samples = model.sample(16, generator=generator)
        suffix = output_suffix(model.config.input_shape)
        path = directory / SAMPLES_DIR / Path(SAMPLE_GRID).with_suffix(suffix)
        atomic.write_bytes(path, output_bytes(samples))  # zoo's own file of the folder: it may replace it
        grid = path if suffix == ".png" else None
    card = model_card(model, None, {}, samples=grid, repo_id=repo_id)
    return save(model, directory, card=card)


def push(
    source: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    branch: str | None = None,
    message: str | None = None,
    token: str | None = None,
) -> Pushed:
    """Publish the model folder (or run folder) `source` to the Hub repo `repo_id`, creating
    the repo (and `branch`) if needed. The folder is checked by loading it first and is never
    modified: the card with this repo's usage snippet is written to a staging folder. With
    `private`, an existing repo must be private already: a push never publishes what was
    meant to stay private."""
    from huggingface_hub import HfApi, constants

    from zoo.modelfile import load

    repo_id = check_repo_id(repo_id.removeprefix(HUB_PREFIX))
    if branch is not None:
        check_revision(branch)
    folder = Path(source).expanduser()
    if not folder.is_dir():
        raise NotFoundError(f"no model folder at '{source}' (push takes a run folder or a model folder)")
    if constants.HF_HUB_OFFLINE:
        raise HubError(f"HF_HUB_OFFLINE is set: pushing to {repo_id} needs the Hub; unset it to push")
    model = load(folder)
    with tempfile.TemporaryDirectory(prefix="zoo-push-") as staging:
        files = _stage(folder, Path(staging), model, repo_id if branch is None else f"{repo_id}@{branch}")
        api = HfApi(library_name="zoo", library_version=__version__, token=token)
        what = f"{repo_id}@{branch or 'main'}"
        with _transfer(what, repo_id, branch, "upload"):
            api.create_repo(repo_id, private=private, exist_ok=True)
            if private and not api.repo_info(repo_id).private:
                raise HubError(
                    f"{repo_id} exists and is public: --private does not change that; make it private on the "
                    "Hub first, or push without --private"
                )
            if branch is not None:
                api.create_branch(repo_id, branch=branch, exist_ok=True)
            info = api.upload_folder(
                repo_id=repo_id,
                folder_path=staging,
                revision=branch,
                delete_patterns=REPLACED_ON_PUSH,
                commit_message=message or f"Upload {model.name} model with zoo {__version__}",
            )
    return Pushed(repo_id, branch or "main", info.oid, info.commit_url, files)


def push_to_hub(model: Family, repo_id: str, **options: Any) -> Pushed:
    """Save `model` with `save_pretrained` into a temporary folder and `push` it."""
    with tempfile.TemporaryDirectory(prefix="zoo-save-") as folder:
        save_pretrained(model, folder, repo_id=check_repo_id(repo_id.removeprefix(HUB_PREFIX)))
        return push(folder, repo_id, **options)


def _stage(folder: Path, staging: Path, model: Family, reference: str) -> tuple[str, ...]:
    """Copy what is published into `staging`: the model files, the recipe, eval.json, the card
    (with usage for `reference`, the repo id with @branch when not main; eval.json's metrics
    merged in; written if the folder has none) and every image the card shows."""
    card_path = folder / CARD_FILE
    if card_path.is_file():
        card = with_usage(_read_card(card_path), reference, output_suffix(model.config.input_shape))
    else:
        card = model_card(model, None, {}, repo_id=reference)
    names = [CONFIG_FILE, WEIGHTS_FILE] + ([RECIPE_FILE] if (folder / RECIPE_FILE).is_file() else [])
    evaluation = read_eval(folder)
    if evaluation is not None:
        from zoo.codec import weights_sha256

        evaluated = evaluation.get("weights_sha256")
        if evaluated and evaluated != weights_sha256(model):  # the run trained on after `zoo eval`
            raise InvalidInputError(
                f"{folder / EVAL_FILE} holds figures of other weights than {WEIGHTS_FILE}: "
                f"run zoo eval {folder} again (or delete it) before pushing"
            )
        card = with_metrics(card, model.name, str(evaluation.get("data")), evaluation["metrics"])
        names.append(EVAL_FILE)
    for image in card_images(card):
        resolved = (folder / image).resolve()  # a link may point out of the folder
        if not resolved.is_file() or not resolved.is_relative_to(folder.resolve()) or Path(image).is_absolute():
            raise InvalidInputError(f"{card_path} shows '{image}', which is not a file inside {folder}")
        if Path(image).suffix.lower() not in CARD_IMAGE_SUFFIXES:
            kinds = ", ".join(CARD_IMAGE_SUFFIXES)
            raise InvalidInputError(f"{card_path} shows '{image}' as an image; a push publishes only {kinds} images")
        names.append(image)
    for name in names:
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(folder / name, staging / name)
    (staging / CARD_FILE).write_text(card, encoding="utf-8")
    return tuple(sorted([*names, CARD_FILE]))


def _read_card(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InvalidInputError(f"{path} is not UTF-8 text (a model card must be)") from None


# ------------------------------------------------------------------------- errors
@contextlib.contextmanager
def _transfer(what: str, repo: str, revision: str | None, action: str) -> Iterator[None]:
    """Run a transfer without progress bars or retry warnings (zoo prints one summary line),
    turning huggingface_hub's and the network's errors into one-line ZooErrors; after a failed
    download, drop the partial files it left in the cache."""
    from huggingface_hub import constants, errors
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    quiet = are_progress_bars_disabled()
    disable_progress_bars()
    try:
        # Uploads keep huggingface_hub's own timeouts: the Hub may take long to answer a commit.
        with retry_warnings_silenced(), _bounded_timeouts() if action == "download" else contextlib.nullcontext():
            yield
    except ZooError:
        raise
    except errors.GatedRepoError:
        raise HubError(f"{repo} is gated: accept its terms on the Hub, then set HF_TOKEN") from None
    except errors.RevisionNotFoundError:
        raise HubError(f"{repo} has no revision '{revision}' (a branch, tag or commit sha)") from None
    except errors.RepositoryNotFoundError:
        at = f" at revision '{revision}'" if revision else ""
        raise HubError(
            f"no repository {repo}{at} on {constants.ENDPOINT}, or it is private and HF_TOKEN does not grant access"
        ) from None
    except errors.RemoteEntryNotFoundError as err:
        raise HubError(f"{what}: a file is missing on the Hub ({first_line(err)})") from None
    except (errors.OfflineModeIsEnabled, errors.LocalEntryNotFoundError) as err:
        _drop_partial_downloads(repo)
        cause = err.__cause__ or err.__context__
        if _is_timeout(cause):
            raise _timeout_error(action, what) from None
        if constants.HF_HUB_OFFLINE:
            raise HubError(
                f"HF_HUB_OFFLINE is set and {what} is not in the cache ({constants.HF_HUB_CACHE}): "
                f"pull it once with network access"
            ) from None
        raise HubError(
            f"cannot reach the Hub at {constants.ENDPOINT} to {action} {what}"
            f"{f' ({first_line(cause)})' if cause else ''}, and it is not in the cache: "
            "check the network or HF_ENDPOINT"
        ) from None
    except errors.HfHubHTTPError as err:
        _drop_partial_downloads(repo)
        status = err.response.status_code if err.response is not None else None
        if status == 401:
            raise HubError(f"not authorised to {action} {what}: set HF_TOKEN or run `hf auth login`") from None
        if status == 403:
            raise HubError(f"forbidden to {action} {what}: the token in HF_TOKEN lacks that permission") from None
        raise HubError(f"the Hub refused to {action} {what} ({status}): {first_line(err)}") from None
    except errors.LocalTokenNotFoundError:
        raise HubError(f"to {action} {what} log in: set HF_TOKEN or run `hf auth login`") from None
    except errors.HFValidationError as err:
        raise InvalidInputError(f"{what}: {first_line(err)}") from None
    except Exception as err:
        # No route, a connection cut short, a full disk. The HTTP client's errors are matched by
        # module because huggingface_hub has moved between HTTP libraries (requests, httpx, httpx2).
        if not isinstance(err, OSError) and not type(err).__module__.startswith(("httpx", "httpcore", "requests")):
            raise
        _drop_partial_downloads(repo)
        if _is_timeout(err):
            raise _timeout_error(action, what) from None
        raise HubError(f"{action} of {what} failed: {one_line(err)}") from None
    finally:
        if not quiet:
            enable_progress_bars()


@contextlib.contextmanager
def retry_warnings_silenced() -> Iterator[None]:
    """Inside, huggingface_hub logs errors only: not a warning per retry of a failed request
    (offline, ten lines before zoo's one)."""
    import logging

    hub_logger = logging.getLogger("huggingface_hub")
    level = hub_logger.level
    hub_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        hub_logger.setLevel(level)


@contextlib.contextmanager
def _bounded_timeouts() -> Iterator[None]:
    """Give every request of a download a timeout. huggingface_hub sends some requests with
    none at all (snapshot_download's repo info and file list), so a server that accepts the
    connection and never answers would hang a pull for ever; those get HF_HUB_DOWNLOAD_TIMEOUT,
    which huggingface_hub documents as the default for requests that name no timeout."""
    from huggingface_hub import constants
    from huggingface_hub.utils import get_session

    def bound(request: Any) -> None:
        timeout = dict(request.extensions.get("timeout") or {})
        for phase in ("connect", "read", "write"):
            if timeout.get(phase) is None:
                timeout[phase] = float(constants.HF_HUB_DOWNLOAD_TIMEOUT)
        request.extensions = {**request.extensions, "timeout": timeout}

    session = get_session()
    session.event_hooks["request"].append(bound)
    try:
        yield
    finally:
        session.event_hooks["request"].remove(bound)


def _is_timeout(err: BaseException | None) -> bool:
    """Whether `err` is the HTTP client's timeout (matched by name: the client library has changed)."""
    return err is not None and any(
        k.__name__.endswith("Timeout") or k.__name__ == "TimeoutException" for k in type(err).__mro__
    )


def _timeout_error(action: str, what: str) -> HubError:
    from huggingface_hub import constants

    return HubError(
        f"the Hub at {constants.ENDPOINT} did not answer within the timeout to {action} {what} "
        f"(HF_HUB_DOWNLOAD_TIMEOUT={constants.HF_HUB_DOWNLOAD_TIMEOUT} s, HF_HUB_ETAG_TIMEOUT="
        f"{constants.HF_HUB_ETAG_TIMEOUT} s; raise them for a slow connection)"
    )


def _drop_partial_downloads(repo: str) -> None:
    """Remove the `.incomplete` blobs a failed download left in this repo's cache folder, so
    that the cache holds only whole files (a later pull downloads them again from the start)."""
    from huggingface_hub import constants
    from huggingface_hub.utils import WeakFileLock

    blobs = Path(constants.HF_HUB_CACHE) / f"models--{repo.replace('/', '--')}" / "blobs"
    for partial in blobs.glob("*.incomplete") if blobs.is_dir() else []:
        lock = Path(constants.HF_HUB_CACHE) / ".locks" / f"models--{repo.replace('/', '--')}"
        with WeakFileLock(lock / f"{partial.name.removesuffix('.incomplete')}.lock"):
            partial.unlink(missing_ok=True)
