"""The vqvae family: a VQ-VAE (vector-quantised code grid, EMA codebook with dead-code
reset, commitment loss) with a gated PixelCNN prior over the codes, trained as a second stage."""

from zoo.plugin import FamilySpec

family = FamilySpec(
    name="vqvae",
    model="zoo_vqvae.model:VQVAE",
    summary="VQ-VAE with an EMA codebook and a gated PixelCNN prior over the code grid (two stages)",
    recipes="zoo_vqvae.recipes",
    default_recipe="mnist",
)
