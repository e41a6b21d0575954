import shutil
import subprocess

import pytest

from zoo.plugin import PLUGIN_API_VERSION
from zoo.scaffold import PluginNames, new_plugin


def test_names_derive_from_the_family_name():
    names = PluginNames.for_family("ring-vae2")
    assert (names.package, names.module, names.cls) == ("zoo-ring-vae2", "zoo_ring_vae2", "RingVae2")


def test_the_package_declares_its_entry_point_api_version_and_recipe(tmp_path):
    names, root, files = new_plugin("ring-vae", tmp_path / "pkg")
    assert root == tmp_path / "pkg" and all(f.is_relative_to(root) for f in files)
    pyproject = (root / "pyproject.toml").read_text()
    assert 'name = "zoo-ring-vae"' in pyproject
    assert '[project.entry-points."zoo.families"]\nring-vae = "zoo_ring_vae:family"' in pyproject
    spec = (root / "zoo_ring_vae" / "__init__.py").read_text()
    assert f"api_versions=({PLUGIN_API_VERSION},)" in spec and "import torch" not in spec
    model = (root / "zoo_ring_vae" / "model.py").read_text()
    assert "class RingVae(zoo.Family)" in model and "zoo_vae" not in model
    assert "$" not in "".join(f.read_text() for f in files)  # every placeholder filled


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is installed with the test extra")
def test_the_package_is_ruff_clean_even_with_a_long_name(tmp_path):
    _, root, _ = new_plugin("a-rather-long-family-name-for-a-plugin", tmp_path / "pkg")
    for command in (["ruff", "check", "--no-cache", "."], ["ruff", "format", "--no-cache", "--check", "."]):
        result = subprocess.run(command, cwd=root, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
