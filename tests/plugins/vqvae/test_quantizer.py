import math

import pytest
import torch
from zoo_vqvae.quantizer import EMAQuantizer, codebook_stats


def features(vectors):
    """(M, D) vectors as a (1, D, 1, M) feature map."""
    return torch.as_tensor(vectors, dtype=torch.float32).t().reshape(1, -1, 1, len(vectors))


def test_codes_are_the_nearest_codewords_and_gradients_pass_straight_through():
    q = EMAQuantizer(3, 2).eval()
    q.codebook.copy_(torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]]))
    z = features([[1.0, 1.0], [9.0, 1.0], [1.0, 8.0], [6.0, 5.0]]).requires_grad_(True)
    out = q(z)
    assert out.codes.flatten().tolist() == [0, 1, 2, 1]
    assert torch.equal(out.features.detach(), q.lookup(out.codes))
    expected = (z.detach() - q.lookup(out.codes)).pow(2).mean()
    assert out.commitment.item() == pytest.approx(expected.item())
    out.features.sum().backward()
    assert torch.equal(z.grad, torch.ones_like(z))  # straight-through estimator


def test_ema_update_moves_used_codewords_to_the_decayed_mean_and_leaves_unused_ones():
    q = EMAQuantizer(3, 2, decay=0.5, dead_threshold=0.0).train()
    start = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    q.codebook.copy_(start)
    q.embed_sum.copy_(start)
    batch = [[1.0, 1.0], [3.0, 1.0], [9.0, 1.0]]  # two vectors for code 0 (mean (2, 1)), one for code 1
    q(features(batch))
    # count: 0.5·1 + 0.5·2 = 1.5; sum: 0.5·(0, 0) + 0.5·(4, 2) = (2, 1); codeword = sum / count.
    assert q.cluster_size.tolist() == pytest.approx([1.5, 1.0, 0.5])
    assert q.codebook[0].tolist() == pytest.approx([2 / 1.5, 1 / 1.5])
    assert q.codebook[1].tolist() == pytest.approx([(5 + 4.5) / 1.0, 0.5 / 1.0])
    assert q.codebook[2].tolist() == pytest.approx([0.0, 10.0])  # unused: count and sum decay together
    before = q.codebook.clone()
    q.eval()(features(batch))
    assert torch.equal(q.codebook, before)  # evaluation never updates the codebook


def test_dead_codes_are_reseeded_with_batch_vectors():
    torch.manual_seed(0)
    q = EMAQuantizer(8, 2, decay=0.9, dead_threshold=1.0).train()
    q.codebook.copy_(torch.full((8, 2), 100.0))
    q.codebook[0] = 0.0
    q.embed_sum.copy_(q.codebook)
    batch = torch.randn(50, 2)
    q(features(batch))
    # Code 0 took every vector; the seven others fell below one use per batch and were re-seeded.
    reseeded = q.codebook[1:]
    assert all(any(torch.allclose(code, row) for row in batch) for code in reseeded)
    assert q.cluster_size[1:].tolist() == [1.0] * 7
    codes = q.eval()(features(batch)).codes
    assert len(codes.unique()) > 1  # the re-seeded codes now take part


def test_drawing_for_every_code_as_on_a_gpu_reseeds_the_dead_codes_alone():
    """An accelerator's form of the re-seeding, which reads nothing on the host: a vector is
    drawn for each code, and only the dead codes take theirs."""
    torch.manual_seed(0)
    q = EMAQuantizer(8, 2).train()
    q.embed_sum.copy_(torch.arange(16.0).view(8, 2) + 100)
    q.cluster_size.fill_(5.0)
    before = q.embed_sum.clone()
    dead = torch.tensor([False, True, False, False, True, True, False, True])
    batch = torch.randn(50, 2)
    q._reseed(dead, batch, torch.zeros(50, dtype=torch.long), draws=8)
    assert torch.equal(q.embed_sum[~dead], before[~dead])
    assert all(any(torch.equal(code, row) for row in batch) for code in q.embed_sum[dead])
    assert q.cluster_size.tolist() == [5.0, 1.0, 5.0, 5.0, 1.0, 1.0, 5.0, 1.0]


def test_without_dead_code_reset_unused_codes_stay_where_they_are():
    q = EMAQuantizer(8, 2, decay=0.9, dead_threshold=0.0).train()
    q.codebook.copy_(torch.full((8, 2), 100.0))
    q.codebook[0] = 0.0
    q.embed_sum.copy_(q.codebook)
    q(features(torch.randn(50, 2)))
    assert torch.allclose(q.codebook[1:], torch.full((7, 2), 100.0))


@pytest.mark.parametrize(
    ("counts", "perplexity", "usage", "dead"),
    [
        ([5, 5, 5, 5, 0, 0, 0, 0], 4.0, 0.5, 4),
        ([9, 0, 0, 0], 1.0, 0.25, 3),
        ([1, 3], math.exp(-(0.25 * math.log(0.25) + 0.75 * math.log(0.75))), 1.0, 0),
    ],
)
def test_codebook_stats_are_perplexity_usage_and_dead_codes(counts, perplexity, usage, dead):
    stats = codebook_stats(torch.tensor(counts))
    assert stats["perplexity"].item() == pytest.approx(perplexity, rel=1e-5)
    assert stats["usage"].item() == pytest.approx(usage)
    assert stats["dead_codes"].item() == dead
