"""The iwae family: a VAE trained on the importance-weighted bound with K samples."""

from zoo.plugin import FamilySpec

family = FamilySpec(
    name="iwae",
    model="zoo_iwae.model:IWAE",
    summary="Importance-weighted autoencoder: VAE parts, trained on the K-sample bound (K in config)",
    recipes="zoo_iwae.recipes",
    default_recipe="mnist",
)
