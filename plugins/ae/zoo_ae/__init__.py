"""The ae family: a deterministic autoencoder (conv, or MLP for vectors), optionally
denoising; it samples from a Gaussian fitted to the codes of its training data."""

from zoo.plugin import FamilySpec

family = FamilySpec(
    name="ae",
    model="zoo_ae.model:AE",
    summary="Deterministic autoencoder (optionally denoising); samples from a Gaussian fitted to training codes",
    recipes="zoo_ae.recipes",
    default_recipe="mnist",
)
