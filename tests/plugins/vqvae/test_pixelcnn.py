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


def test_top_k_sampling_draws_each_code_from_the_k_likeliest_given_the_codes_before_it():
    torch.manual_seed(0)
    prior = PixelCNNPrior(num_codes=12, grid=(3, 4), channels=8, layers=2, top_k=3)
    codes = prior.sample(200, generator=torch.Generator().manual_seed(0))
    # Raster order: the logits at a position, given the sampled codes, are the ones it was drawn from.
    logits = prior.logits(codes)
    rank = (logits > logits.gather(1, codes.unsqueeze(1))).sum(1)
    assert rank.max() == 2  # always among the 3 likeliest, and not only the likeliest
    prior.top_k = 1
    greedy = [prior.sample(4, generator=torch.Generator().manual_seed(s)) for s in (1, 2)]
    assert torch.equal(*greedy) and torch.equal(greedy[0][0], greedy[0][3])
    prior.top_k = 0
    everything = prior.sample(200, generator=torch.Generator().manual_seed(0))
    assert (prior.logits(everything) > prior.logits(everything).gather(1, everything.unsqueeze(1))).sum(1).max() > 2
