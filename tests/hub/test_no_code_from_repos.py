"""A downloaded repo is data: Python files in it are never imported, and the family its
config.json names is looked up among installed entry points only. Every Python file here
would create a marker file if it were ever imported; the commands run with the repo's
files in the working directory, which `python -m` and `python -c` put first on sys.path."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from tests.conftest import assert_one_line_error, run_zoo
from tests.hub.conftest import run_python

pytestmark = pytest.mark.hub

CODE_FILES = ("zoo_evil.py", "family.py", "model.py", "__init__.py", "plugins/evil/__init__.py")
PULL_AND_LOAD = """
import json, sys, zoo
from zoo.hub import pull
pulled = pull("REPO")
model = zoo.load("REPO")
imported = sorted(m for m in sys.modules if m.split(".")[0] in ("zoo_evil", "family", "model", "plugins"))
files = sorted(p.name for p in pulled.path.iterdir())
print(json.dumps({"files": files, "module": type(model).__module__, "imported": imported}))
"""


@pytest.fixture
def repo_with_code(hub, tiny_run, tmp_path):
    """publish(repo_id, family, package) → the files of a repo holding tiny_run's model,
    config.json naming `family` of `package`, and Python files that would write
    tmp_path/imported; also copied to tmp_path/repo."""
    marker = tmp_path / "imported"

    def publish(repo_id: str, family: str, package: str = "zoo-evil") -> dict[str, bytes]:
        meta = json.loads((tiny_run.path / "config.json").read_text())
        files = {
            "config.json": json.dumps({**meta, "family": family, "package": package}).encode(),
            "model.safetensors": (tiny_run.path / "model.safetensors").read_bytes(),
            "README.md": (tiny_run.path / "README.md").read_bytes(),
        }
        files |= {name: f"open({str(marker)!r}, 'w').write({name!r})\n".encode() for name in CODE_FILES}
        hub.create_repo(repo_id)
        hub.add_commit(repo_id, "main", files)
        for name, data in files.items():
            (tmp_path / "repo" / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / "repo" / name).write_bytes(data)
        return files

    yield publish, marker, tmp_path / "repo"
    shutil.rmtree(tmp_path / "repo", ignore_errors=True)


def test_a_repo_naming_a_family_that_is_not_installed_fails_in_one_line_and_runs_none_of_its_code(repo_with_code):
    publish, marker, local = repo_with_code
    publish("mallory/evil", family="evil")
    result = run_zoo("pull", "mallory/evil", cwd=local)
    assert result.returncode == 2
    assert_one_line_error(result.stderr, "no family named 'evil'", "pip install zoo-evil")
    result = run_zoo("sample", str(local), "-o", str(local.parent / "s.png"), cwd=local)  # the files, local
    assert_one_line_error(result.stderr, "no family named 'evil'")
    assert not marker.exists()
    # The control: importing any one of them from there does leave the marker.
    subprocess.run([sys.executable, "-c", "import family"], cwd=local, check=True)
    assert marker.read_text() == "family.py"


def test_a_family_given_as_an_import_path_is_a_name_to_look_up_not_a_module_to_import(repo_with_code):
    publish, marker, local = repo_with_code
    publish("mallory/import-path", family="zoo_evil:Evil")
    result = run_zoo("pull", "mallory/import-path", cwd=local)
    assert result.returncode == 2
    assert_one_line_error(result.stderr, "'zoo_evil:Evil'")
    assert not marker.exists()


def test_a_repo_naming_an_installed_family_loads_through_its_entry_point_and_skips_the_code(repo_with_code):
    publish, marker, local = repo_with_code
    publish("mallory/vae-and-code", family="vae", package="zoo")
    out = run_python(PULL_AND_LOAD.replace("REPO", "mallory/vae-and-code"), {}, cwd=local)
    assert out == {
        "files": ["README.md", "config.json", "model.safetensors"],
        "module": "zoo_vae.model",
        "imported": [],
    }
    assert not marker.exists()


def test_a_repo_naming_another_packages_family_of_an_installed_name_is_refused(repo_with_code):
    """Its 'vae' is zoo-evil's, not zoo's: it does not load into zoo's class by its name."""
    publish, marker, local = repo_with_code
    publish("mallory/other-vae", family="vae")
    result = run_zoo("pull", "mallory/other-vae", cwd=local)
    assert result.returncode == 2
    assert_one_line_error(result.stderr, "it is zoo-evil's 'vae', not the one from zoo")
    assert not marker.exists()
