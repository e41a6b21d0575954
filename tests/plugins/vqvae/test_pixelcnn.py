import torch
from zoo_vqvae.pixelcnn import PixelCNNPrior


def test_each_position_depends_only_on_the_positions_before_it_in_raster_order():
    torch.manual_seed(0)
    prior = PixelCNNPrior(num_codes=5, grid=(4, 5), channels=8, layers=3)
    codes = torch.randint(0, 5, (1, 4, 5))
    base = prior.logits(codes)
    for i in range(4):
        for j in range(5):
            changed = codes.clone()
            changed[0, i, j] = (changed[0, i, j] + 1) % 5
            moved = (prior.logits(changed) - base).abs().amax(dim=(0, 1)) > 1e-6
            position = i * 5 + j
            order = torch.arange(20).view(4, 5)
            assert not moved[order <= position].any(), (i, j)  # no position sees itself or later ones
            if position < 19:
                assert moved[order == position + 1].all(), (i, j)  # the next one does see it


def test_log_prob_sums_the_categorical_log_likelihoods_and_sampling_follows_the_generator():
    torch.manual_seed(0)
    prior = PixelCNNPrior(num_codes=6, grid=(3, 3), channels=8, layers=2)
    codes = torch.randint(0, 6, (4, 3, 3))
    log_probs = prior.logits(codes).log_softmax(1).gather(1, codes.unsqueeze(1)).squeeze(1)
    assert torch.allclose(prior.log_prob(codes), log_probs.flatten(1).sum(1))
    a = prior.sample(5, generator=torch.Generator().manual_seed(1))
    b = prior.sample(5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == (5, 3, 3) and a.dtype == torch.long
    assert a.min() >= 0 and a.max() < 6
