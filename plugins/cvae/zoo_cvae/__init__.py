"""The cvae family: a class-conditional VAE; `zoo sample RUN --label 7` draws sevens."""

from zoo.plugin import FamilySpec

family = FamilySpec(
    name="cvae",
    model="zoo_cvae.model:CVAE",
    summary="Class-conditional VAE: encoder and decoder see the label; sample a chosen class",
    recipes="zoo_cvae.recipes",
    default_recipe="mnist",
)
