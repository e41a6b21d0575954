"""The gan family: a DCGAN-style generator and critic trained with the non-saturating,
hinge or WGAN-GP loss, optional spectral norm, n_critic critic steps per generator step."""

from zoo.plugin import FamilySpec

family = FamilySpec(
    name="gan",
    model="zoo_gan.model:GAN",
    summary="DCGAN-style GAN: non-saturating, hinge or WGAN-GP loss; spectral norm; Fréchet-distance model selection",
    recipes="zoo_gan.recipes",
    default_recipe="mnist",
)
