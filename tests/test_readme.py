"""The README's Python snippets run as written (in a temporary folder)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def python_snippets() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_python_snippets_run(tmp_path, monkeypatch):
    snippets = python_snippets()
    assert snippets, "the README has Python examples"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for code in snippets:
        exec(compile(code, str(README), "exec"), namespace)


def test_readme_recipe_is_a_valid_vae_recipe(tmp_path):
    from zoo.recipes import load_recipe

    (block,) = re.findall(r"```yaml\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    path = tmp_path / "recipe.yaml"
    path.write_text(block, encoding="utf-8")
    recipe = load_recipe("vae", str(path))
    assert recipe.train.epochs == 25 and recipe.model["latent_dim"] == 32
    assert not (recipe.train.matmul_conv or recipe.train.optimizer.fused or recipe.train.channels_last)
