"""The ae family: a deterministic convolutional autoencoder, optionally denoising; it samples
from a Gaussian fitted to the codes of its training images."""

from zoo.plugin import FamilySpec

family = FamilySpec(
    name="ae",
    model="zoo_ae.model:AE",
    summary="Deterministic autoencoder (optionally denoising); samples from a Gaussian fitted to training codes",
    recipes="zoo_ae.recipes",
    default_recipe="mnist",
)
