"""The kNN monitor's accuracy and the collapse score: known answers and the InstDisc vote."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from medssl.engine.monitor import collapse_score, knn_accuracy


def instdisc_vote(bank, bank_labels, queries, query_labels, k, temperature):
    """InstDisc §3.4 written out: the k most cosine-similar bank rows vote for their class
    with weight exp(cos / temperature); accuracy of the top class."""
    k = min(k, len(bank))
    n_classes = int(max(bank_labels.max(), query_labels.max())) + 1
    sim = F.normalize(queries.float(), dim=1) @ F.normalize(bank.float(), dim=1).t()  # (Q, M)
    top_sim, top_idx = sim.topk(k, dim=1)  # (Q, k)
    votes = torch.zeros(len(queries), n_classes)
    votes.scatter_add_(1, bank_labels[top_idx], torch.exp(top_sim / temperature))
    return float((votes.argmax(dim=1) == query_labels).float().mean())


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("k", [1, 5, 20, 500])
def test_knn_accuracy_is_the_instdisc_vote(seed, k):
    g = torch.Generator().manual_seed(seed)
    bank, queries = torch.randn(200, 64, generator=g), torch.randn(80, 64, generator=g)
    bank_labels = torch.randint(0, 3, (200,), generator=g)
    query_labels = torch.randint(0, 3, (80,), generator=g)
    bank[:, 0] += 2.0 * bank_labels  # some class signal, so the accuracy is not only chance
    queries[:, 0] += 2.0 * query_labels
    got = knn_accuracy(bank, bank_labels, queries, query_labels, k=k, temperature=0.07)
    assert got == instdisc_vote(bank, bank_labels, queries, query_labels, k, 0.07)


def test_knn_accuracy_known_answer():
    # bank on the unit circle: class 0 near angle 0, class 1 near angle pi/2
    angles = torch.tensor([0.0, 0.1, -0.1, 1.5, 1.6, 1.7])
    bank = torch.stack([angles.cos(), angles.sin()], dim=1)
    bank_labels = torch.tensor([0, 0, 0, 1, 1, 1])
    queries = torch.tensor([[1.0, 0.05], [0.1, 1.0], [1.0, 1.0]])
    # the third query (angle pi/4): its 3 nearest are at angles 0.1, 1.5 and 0.0 (cos 0.774,
    # 0.755, 0.707); class 0 gets exp(0.774/0.07) + exp(0.707/0.07) > class 1's exp(0.755/0.07)
    assert knn_accuracy(bank, bank_labels, queries, torch.tensor([0, 1, 0]), k=3) == 1.0
    assert knn_accuracy(bank, bank_labels, queries, torch.tensor([0, 1, 1]), k=3) == pytest.approx(
        2 / 3
    )


def test_collapse_score_is_sqrt_d_times_the_std_of_normalised_rows():
    z = torch.randn(100, 32, generator=torch.Generator().manual_seed(0))
    zn = F.normalize(z, dim=1)
    assert collapse_score(z) == float(zn.std(dim=0).mean() * math.sqrt(32))
    assert collapse_score(torch.ones(10, 32)) == 0.0  # one point: collapsed
    assert 0.9 < collapse_score(torch.randn(4096, 32)) < 1.1  # isotropic: about 1
