import pytest
import torch
from zoo_gan.losses import critic_loss, generator_loss, gradient_penalty


class Linear(torch.nn.Module):
    """D(x) = w·x: its gradient is w everywhere."""

    def __init__(self, w):
        super().__init__()
        self.w = torch.nn.Parameter(w)

    def forward(self, x):
        return x.flatten(1) @ self.w


@pytest.mark.parametrize(("norm", "penalty"), [(3.0, 4.0), (1.0, 0.0), (0.5, 0.25)])
def test_gradient_penalty_of_a_linear_critic_is_its_squared_gradient_norm_minus_one(norm, penalty):
    w = torch.randn(12)
    critic = Linear(w / w.norm() * norm)
    real, fake = torch.rand(5, 3, 2, 2), torch.rand(5, 3, 2, 2)
    value = gradient_penalty(critic, real, fake)
    assert value.item() == pytest.approx(penalty, abs=1e-5)
    value.backward()  # differentiable in the critic's weights (double backprop)
    assert critic.w.grad is not None and (penalty == 0 or critic.w.grad.abs().sum() > 0)


def test_gradient_penalty_is_taken_between_real_and_fake():
    class Square(torch.nn.Module):
        def forward(self, x):  # D(x) = ½‖x‖²: ∇ = x, so the penalty depends on where it is taken
            return 0.5 * x.flatten(1).pow(2).sum(1)

    real, fake = torch.full((2, 4), 1.0), torch.zeros(2, 4)
    alpha = torch.full((2, 1), 0.5)
    # x̂ = 0.5 everywhere: ‖x̂‖ = 0.5·2 = 1, so the penalty is 0; at α = 1 it is (2 − 1)² = 1.
    assert gradient_penalty(Square(), real, fake, alpha).item() == pytest.approx(0.0, abs=1e-6)
    assert gradient_penalty(Square(), real, fake, torch.ones(2, 1)).item() == pytest.approx(1.0)


def test_losses_on_known_scores():
    real, fake = torch.tensor([2.0, 0.0]), torch.tensor([-2.0, 0.5])
    softplus = torch.nn.functional.softplus
    assert critic_loss("ns", real, fake).item() == pytest.approx(
        (softplus(-real).mean() + softplus(fake).mean()).item()
    )
    assert critic_loss("hinge", real, fake).item() == pytest.approx((0 + 1) / 2 + (0 + 1.5) / 2)
    assert critic_loss("wgan-gp", real, fake).item() == pytest.approx(-0.75 - 1.0)
    assert generator_loss("ns", fake).item() == pytest.approx(softplus(-fake).mean().item())
    assert generator_loss("hinge", fake).item() == pytest.approx(0.75)
    assert generator_loss("wgan-gp", fake).item() == pytest.approx(0.75)
