"""The vae family: a convolutional VAE with a Gaussian posterior, a standard-normal prior
and a Bernoulli likelihood on [0, 1] pixels; `beta` weights the KL term (β-VAE)."""

from zoo.plugin import FamilySpec

family = FamilySpec(
    name="vae",
    model="zoo_vae.model:VAE",
    summary="Variational autoencoder (β-VAE): Gaussian posterior, N(0, I) prior, Bernoulli pixels",
    recipes="zoo_vae.recipes",
    default_recipe="mnist",
)
