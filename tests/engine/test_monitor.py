"""The health read's leave-one-group-out kNN and the collapse score: known answers and the
InstDisc vote."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from medssl.engine.health_read import loo_knn_predictions
from medssl.engine.monitor import collapse_score


def instdisc_vote(x, labels, groups, k, temperature):
    """InstDisc §3.4 written out, leave one group out: for each row, the k most cosine-similar
    rows of other groups vote for their class with weight exp(cos / temperature); the top class
    (lowest index on a tie)."""
    n_classes = int(labels.max()) + 1
    z = F.normalize(x.float(), dim=1)
    preds = []
    for i in range(len(x)):
        others = [j for j in range(len(x)) if groups[j] != groups[i]]
        sim = z[others] @ z[i]  # (M,)
        top_sim, top = sim.topk(min(k, len(others)))
        votes = torch.zeros(n_classes)
        votes.scatter_add_(0, labels[others][top], torch.exp(top_sim / temperature))
        preds.append(int(votes.argmax()))
    return np.array(preds)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("k", [1, 5, 20, 500])
def test_loo_knn_is_the_instdisc_vote_without_the_querys_group(seed, k):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(120, 64, generator=g)
    labels = torch.randint(0, 3, (120,), generator=g)
    x[:, 0] += 2.0 * labels  # some class signal, so the vote is not only chance
    groups = np.arange(120) // 2  # pairs of images share a patient
    got = loo_knn_predictions(x, labels.numpy(), groups, k=k, temperature=0.07)
    assert (got == instdisc_vote(x, labels, groups, k, 0.07)).all()


def test_loo_knn_known_answer():
    # on the unit circle: class 0 near angle 0, class 1 near angle pi/2, and one point at pi/4
    angles = torch.tensor([0.0, 0.1, -0.1, 1.5, 1.6, 1.7, math.pi / 4])
    x = torch.stack([angles.cos(), angles.sin()], dim=1)
    labels = np.array([0, 0, 0, 1, 1, 1, 1])
    # the point at pi/4: its 3 nearest others are at 0.1, 0.0 and 1.5 (cos 0.774, 0.707,
    # 0.755); class 0 gets exp(0.774/0.07) + exp(0.707/0.07) > class 1's exp(0.755/0.07)
    got = loo_knn_predictions(x, labels, np.arange(7), k=3, temperature=0.07)
    assert got.tolist() == [0, 0, 0, 1, 1, 1, 0]


def test_collapse_score_is_sqrt_d_times_the_std_of_normalised_rows():
    z = torch.randn(100, 32, generator=torch.Generator().manual_seed(0))
    zn = F.normalize(z, dim=1)
    assert collapse_score(z) == float(zn.std(dim=0).mean() * math.sqrt(32))
    assert collapse_score(torch.ones(10, 32)) == 0.0  # one point: collapsed
    assert 0.9 < collapse_score(torch.randn(4096, 32)) < 1.1  # isotropic: about 1
