import pytest

import zoo
from zoo.errors import InvalidInputError, NotFoundError
from zoo.names import parse_model_ref


@pytest.mark.parametrize(
    ("text", "kind", "repo", "revision"),
    [
        ("alice/mnist-vae", "hub", "alice/mnist-vae", None),
        ("hf-hub:alice/mnist-vae", "hub", "alice/mnist-vae", None),
        ("hf-hub:alice/mnist-vae@v1.0", "hub", "alice/mnist-vae", "v1.0"),
        ("alice/mnist-vae@refs/pr/1", "hub", "alice/mnist-vae", "refs/pr/1"),
        ("mnist-vae", "catalogue", "", None),
        ("vae", "catalogue", "", None),  # a family name is never a model: the catalogue says so
        ("/abs/run", "path", "", None),
        ("./alice/mnist-vae", "path", "", None),
        ("runs/vae/x", "path", "", None),
    ],
)
def test_references_are_classified_by_timms_rule(text, kind, repo, revision):
    ref = parse_model_ref(text)
    assert (ref.kind, ref.repo, ref.revision) == (kind, repo, revision)


def test_an_existing_folder_is_a_path_even_when_it_looks_like_a_repo_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "alice" / "mnist-vae").mkdir(parents=True)
    assert parse_model_ref("alice/mnist-vae").kind == "path"
    assert parse_model_ref("hf-hub:alice/mnist-vae").kind == "hub"


def test_a_missing_folder_inside_a_local_folder_is_a_path_not_a_hub_repo(tmp_path, monkeypatch):
    """`runs/<a typo>` says the run folder is missing, not that the Hub cannot be reached."""
    monkeypatch.chdir(tmp_path)
    assert parse_model_ref("runs/vae-x").kind == "hub"  # no folder 'runs' here
    (tmp_path / "runs").mkdir()
    assert parse_model_ref("runs/vae-x").kind == "path"
    assert parse_model_ref("hf-hub:runs/vae-x").kind == "hub"
    with pytest.raises(
        NotFoundError, match=r"^no model folder at 'runs/vae-x' \(for the Hub repo: hf-hub:runs/vae-x\)$"
    ):
        zoo.load("runs/vae-x")


@pytest.mark.parametrize(
    "text",
    [
        "hf-hub:../etc",
        "hf-hub:a/b/c",
        "hf-hub:alice",
        "alice/na..me",
        "alice/-name",
        "al ice/name",
        "alice/name@../../refs/main",
        "alice/name@",
        "alice/name@a b",
        "alice/" + "x" * 100,
        "Mnist_VAE",
        "mnist-vae@v1",
    ],
)
def test_malformed_ids_revisions_and_names_are_refused_before_any_request(text):
    with pytest.raises(InvalidInputError):
        parse_model_ref(text)


def test_revision_argument_overrides_and_is_checked():
    assert parse_model_ref("alice/x@v1", revision="main").revision == "main"
    with pytest.raises(InvalidInputError, match="not a valid revision"):
        parse_model_ref("alice/x", revision="../../x")
