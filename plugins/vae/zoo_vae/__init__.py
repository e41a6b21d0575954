"""The vae family: a VAE with a Gaussian posterior, a standard-normal prior and a Bernoulli
likelihood on [0, 1] pixels (conv parts), or a Gaussian likelihood on vectors (MLP parts) and
1-D signals (1-D conv parts); `beta` weights the KL term (β-VAE)."""

from zoo.plugin import FamilySpec

family = FamilySpec(
    name="vae",
    model="zoo_vae.model:VAE",
    summary="Variational autoencoder (β-VAE): Gaussian posterior, N(0, I) prior; images, vectors, 1-D signals",
    recipes="zoo_vae.recipes",
    default_recipe="mnist",
)
