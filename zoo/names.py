"""What a model reference names: a local folder, a Hub repo or a catalogue short name.

The rule (timm's): `hf-hub:` always means the Hub; otherwise an existing path is a path,
an unprefixed `user/name` is a Hub repo id (unless `user` is a local folder: `runs/<typo>`
is a missing run folder) and a bare name is a catalogue short name.
A family name is never a model reference (`zoo.create` / `zoo train` take those), so
`vae` is looked up in the catalogue, never taken for the family. Ids, revisions and short
names are checked here, before any request, so that nothing malformed (`../x`, `a/b/c`,
`user/name@../../refs`) reaches the network or the cache.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from zoo.errors import InvalidInputError

HUB_PREFIX = "hf-hub:"
# The Hub's own rule (huggingface_hub.utils.validate_repo_id), with the namespace required.
_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_REPO_ID = re.compile(rf"^{_PART}/{_PART}$")
_REVISION = re.compile(r"^[A-Za-z0-9._][A-Za-z0-9._/-]*$")
_SHORT_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
MAX_REPO_ID = 96
MAX_REVISION = 255


@dataclass(frozen=True)
class ModelRef:
    """A parsed model reference. kind: 'path' (a local folder), 'hub' (repo + revision or
    None for the default branch) or 'catalogue' (name, resolved through registry.yaml)."""

    kind: str
    text: str
    repo: str = ""
    revision: str | None = None

    def __str__(self) -> str:
        if self.kind == "hub":
            return f"{self.repo}@{self.revision}" if self.revision else self.repo
        return self.text


def parse_model_ref(text: str | os.PathLike, revision: str | None = None) -> ModelRef:
    """Classify `text` (see the module docstring); `revision` overrides an `@rev` suffix."""
    if isinstance(text, os.PathLike):
        return ModelRef("path", os.fspath(text))
    text = str(text).strip()
    if not text:
        raise InvalidInputError("empty model reference: give a run folder, a model folder or a Hub repo id")
    if text.startswith(HUB_PREFIX):
        return hub_ref(text[len(HUB_PREFIX) :], revision)
    if Path(text).expanduser().exists():
        if revision is not None:
            raise InvalidInputError(f"'{text}' is a local folder; --revision applies to Hub repos only")
        return ModelRef("path", text)
    if _looks_like_path(text.partition("@")[0]):
        return ModelRef("path", text)  # a missing path: loading says so
    if "/" in text and Path(text.partition("/")[0]).expanduser().is_dir():
        return ModelRef("path", text)  # runs/<a typo>: a missing run folder (hf-hub: names the Hub)
    if "/" in text:
        return hub_ref(text, revision)
    name, at, rev = text.partition("@")
    if at or revision is not None:
        raise InvalidInputError(
            f"'{text}': catalogue models are pinned to one revision; use the repo id to pick another"
        )
    check_short_name(name)
    return ModelRef("catalogue", name)


def hub_ref(text: str, revision: str | None = None) -> ModelRef:
    """A Hub reference `user/name[@revision]`, validated."""
    repo, at, rev = text.partition("@")
    if at and not rev:
        raise InvalidInputError(f"'{text}': nothing after '@' (give a branch, tag or commit sha)")
    check_repo_id(repo)
    chosen = revision if revision is not None else (rev or None)
    if chosen is not None:
        check_revision(chosen)
    return ModelRef("hub", text, repo=repo, revision=chosen)


def check_repo_id(repo: str) -> str:
    """`repo` if it is a valid `user/name` Hub id; InvalidInputError naming the fault otherwise."""
    if (
        not _REPO_ID.match(repo)
        or len(repo) > MAX_REPO_ID
        or any(bad in repo for bad in ("..", "--", "./", "/.", "-/", "/-"))
    ):
        raise InvalidInputError(
            f"'{repo}' is not a Hub repo id: expected 'user/name' of letters, digits, '-', '_' and '.' "
            f"(no '..', at most {MAX_REPO_ID} characters)"
        )
    return repo


def check_revision(revision: str) -> str:
    """`revision` if it is a plausible branch, tag or commit sha (it becomes a file name in the cache)."""
    parts = revision.split("/")
    if (
        not _REVISION.match(revision)
        or len(revision) > MAX_REVISION
        or any(p in ("", ".", "..") for p in parts)
        or revision.endswith((".lock", "."))
    ):
        raise InvalidInputError(f"'{revision}' is not a valid revision (a branch, tag or commit sha)")
    return revision


def check_short_name(name: str) -> str:
    if not _SHORT_NAME.match(name):
        raise InvalidInputError(
            f"'{name}' is neither an existing folder, a Hub repo id ('user/name') nor a catalogue name"
        )
    return name


def is_repo_id(text: str) -> bool:
    """Whether `text` has the form of a Hub repo id, `user/name`."""
    return bool(_REPO_ID.match(text))


def _looks_like_path(text: str) -> bool:
    return text.startswith(("/", ".", "~")) or "\\" in text or text.count("/") > 1
