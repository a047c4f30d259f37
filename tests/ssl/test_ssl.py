"""SSL methods: known-answer losses and contract tests over every registered method."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from contracts import (
    check_collapse_guard,
    check_step_contract,
    check_validation_has_no_side_effects,
    two_views,
)
from medssl.errors import ConfigError
from medssl.models.encoder import build_encoder
from medssl.ssl import METHODS, build_method, method_names
from medssl.ssl.byol import byol_loss
from medssl.ssl.densecl import dense_loss
from medssl.ssl.moco import info_nce
from medssl.ssl.simsiam import simsiam_loss
from medssl.ssl.vicreg import vicreg_terms

EXPECTED = {"simclr", "moco", "byol", "simsiam", "barlow_twins", "vicreg", "densecl"}
SMALL = {"moco": {"queue_size": 10}, "densecl": {"queue_size": 10}}  # others: their defaults


def make(name, seed=0, encoder=None):
    torch.manual_seed(seed)
    return build_method(name, encoder or build_encoder(), SMALL.get(name))


def test_registry_holds_the_expected_methods():
    assert set(method_names()) == EXPECTED
    assert METHODS.get("byol").__name__ == "BYOL"
    with pytest.raises(ConfigError, match=re.escape(", ".join(sorted(EXPECTED)))):
        build_method("swav", build_encoder())
    with pytest.raises(ConfigError, match="unknown key"):
        build_method("simclr", build_encoder(), {"temprature": 0.1})


@pytest.mark.parametrize("name", method_names())
def test_name_is_file_and_class(name):
    cls = METHODS.get(name)
    assert cls.__module__ == f"medssl.ssl.{name}"
    assert cls.__name__.lower() == name.replace("_", "")


def test_nt_xent_matches_naive_loop():
    z0, z1 = two_views(n=5)[0].view(5, -1)[:, :8], two_views(n=5, seed=1)[0].view(5, -1)[:, :8]
    t = 0.07
    loss = make("simclr").criterion(z0, z1)
    z = F.normalize(torch.cat([z0, z1]), dim=1).double()
    n2, total = z.shape[0], 0.0
    for i in range(n2):
        j = (i + n2 // 2) % n2
        denom = sum(math.exp(float(z[i] @ z[k]) / t) for k in range(n2) if k != i)
        total += -math.log(math.exp(float(z[i] @ z[j]) / t) / denom)
    assert loss.item() == pytest.approx(total / n2, rel=1e-4)


def test_byol_loss_is_two_minus_two_cos():
    p, z = torch.randn(6, 16), torch.randn(6, 16)
    expected = (2 - 2 * F.cosine_similarity(p, z, dim=1)).mean()
    assert byol_loss(p, z, make("byol").criterion).item() == pytest.approx(
        expected.item(), rel=1e-5
    )
    assert byol_loss(p, 3 * p, make("byol").criterion).item() == pytest.approx(0.0, abs=1e-6)


def test_info_nce_matches_naive_loop():
    q, k, queue = (F.normalize(torch.randn(n, 8), dim=1) for n in (3, 3, 5))
    t, total = 0.07, 0.0
    for i in range(3):
        logits = [float(q[i] @ k[i]) / t] + [float(q[i] @ queue[j]) / t for j in range(5)]
        total += -logits[0] + math.log(sum(math.exp(v) for v in logits))
    assert info_nce(q, k, queue, t).item() == pytest.approx(total / 3, rel=1e-5)


@pytest.mark.parametrize("name", method_names())
def test_step_contract(name):
    check_step_contract(make(name))


@pytest.mark.parametrize("name", method_names())
def test_validation_step_has_no_side_effects(name):
    check_validation_has_no_side_effects(make(name))


@pytest.mark.parametrize("name", method_names())
def test_collapse_guard_fires_on_constant_encoder(name):
    check_collapse_guard(lambda encoder: make(name, encoder=encoder))


def test_moco_queue_wraps_around():
    m = make("moco")  # queue_size 10, batch 4
    for step in range(1, 4):
        m.training_step(two_views(seed=step))
        keys = m._pending_keys.clone()
        m.after_optimizer_step(step, 3)
    assert int(m.queue_ptr) == 2  # 12 keys written into 10 slots
    assert torch.allclose(m.queue[8:10], keys[:2]) and torch.allclose(m.queue[0:2], keys[2:])
    assert torch.allclose(m.queue.norm(dim=1), torch.ones(10), atol=1e-5)


def test_byol_momentum_follows_cosine_to_one():
    m = make("byol")
    assert m.momentum_at(1, 100) == pytest.approx(0.99)
    assert m.momentum_at(100, 100) == pytest.approx(1.0)
    assert 0.99 < m.momentum_at(50, 100) < 1.0
    const = build_method("byol", build_encoder(), {"momentum_end": 0.99})
    assert const.momentum_at(50, 100) == pytest.approx(0.99)


def test_simsiam_loss_is_negative_cosine_with_stop_gradient():
    g = torch.Generator().manual_seed(0)
    p0, p1, z0, z1 = (torch.randn(5, 8, generator=g, requires_grad=True) for _ in range(4))
    loss = simsiam_loss(p0, p1, z0, z1, make("simsiam").criterion)
    expected = -0.5 * (F.cosine_similarity(p0, z1).mean() + F.cosine_similarity(p1, z0).mean())
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    loss.backward()
    assert z0.grad is None and z1.grad is None  # sg(z): no gradient through the projections
    assert p0.grad.abs().sum() > 0 and p1.grad.abs().sum() > 0
    same = simsiam_loss(z1.detach() * 2, z0.detach() * 3, z0, z1, make("simsiam").criterion)
    assert same.item() == pytest.approx(-1.0, abs=1e-6)


def test_barlow_twins_loss_matches_numpy():
    rng = np.random.default_rng(0)
    a, b, lam = rng.normal(size=(6, 4)), rng.normal(size=(6, 4)), 5e-3

    def standardise(z):  # batch norm without affine: biased variance, eps 1e-5
        return (z - z.mean(0)) / np.sqrt(z.var(0) + 1e-5)

    c = standardise(a).T @ standardise(b) / 6  # (D, D) cross-correlation
    expected = ((1 - np.diag(c)) ** 2).sum() + lam * ((c**2).sum() - (np.diag(c) ** 2).sum())
    loss = make("barlow_twins").criterion(torch.from_numpy(a), torch.from_numpy(b))
    assert loss.item() == pytest.approx(expected, rel=1e-9)
    # Hand case: standardised, uncorrelated columns on both sides -> C = I -> loss ~0.
    z = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]], dtype=torch.float64)
    assert make("barlow_twins").criterion(z, z).item() == pytest.approx(0.0, abs=1e-9)


def test_vicreg_terms_match_numpy():
    rng = np.random.default_rng(1)
    a, b, eps = rng.normal(size=(5, 3)), 0.3 * rng.normal(size=(5, 3)), 1e-4
    inv, var, cov = vicreg_terms(torch.from_numpy(a), torch.from_numpy(b), eps)
    assert inv.item() == pytest.approx(((a - b) ** 2).mean(), rel=1e-9)

    def v(z):
        return np.maximum(0.0, 1 - np.sqrt(z.var(0, ddof=1) + eps)).mean()

    def c(z):
        cz = np.cov(z, rowvar=False)  # unbiased
        return ((cz**2).sum() - (np.diag(cz) ** 2).sum()) / z.shape[1]

    assert var.item() == pytest.approx(0.5 * (v(a) + v(b)), rel=1e-9)
    assert cov.item() == pytest.approx(c(a) + c(b), rel=1e-9)
    # Hand case: two identical views of standardised, uncorrelated columns: every term ~0.
    z = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]], dtype=torch.float64)
    inv, var, cov = vicreg_terms(z * 2, z * 2, eps)  # std 2.31 > 1: no variance hinge
    assert (inv.item(), var.item(), cov.item()) == pytest.approx((0.0, 0.0, 0.0), abs=1e-12)
    m = make("vicreg")
    loss, logs = m.training_step(two_views())
    c_ = m.config
    total = c_.invariance_weight * logs["invariance"] + c_.variance_weight * logs["variance"]
    total = total + c_.covariance_weight * logs["covariance"]
    assert loss.item() == pytest.approx(total.item(), rel=1e-5)


def test_densecl_dense_loss_matches_naive_loop():
    g = torch.Generator().manual_seed(0)
    n, s_, d, c, k = 2, 4, 6, 5, 7
    q = F.normalize(torch.randn(n, s_, d, generator=g), dim=2)
    kd = F.normalize(torch.randn(n, s_, d, generator=g), dim=2)
    qf, kf = torch.randn(n, s_, c, generator=g), torch.randn(n, s_, c, generator=g)
    queue = F.normalize(torch.randn(k, d, generator=g), dim=1)
    t, total = 0.2, 0.0
    for i in range(n):
        for a in range(s_):
            sims = [float(F.cosine_similarity(qf[i, a], kf[i, j], dim=0)) for j in range(s_)]
            pos = kd[i, int(np.argmax(sims))]  # the most similar key position of image i
            logits = [float(q[i, a] @ pos) / t] + [float(q[i, a] @ queue[j]) / t for j in range(k)]
            total += -logits[0] + math.log(sum(math.exp(v) for v in logits))
    assert dense_loss(q, kd, qf, kf, queue, t).item() == pytest.approx(total / (n * s_), rel=1e-5)


def test_densecl_queues_change_only_after_the_optimizer_step():
    m = make("densecl")  # queue_size 10
    x = two_views(n=4, size=64)  # 64 px: a 2 x 2 map, four dense positions per image
    before = (m.queue.clone(), m.dense_queue.clone())
    loss, logs = m.training_step(x)
    assert torch.isfinite(loss) and {"global_loss", "dense_loss"} <= set(logs)
    assert torch.equal(m.queue, before[0]) and torch.equal(m.dense_queue, before[1])
    keys, dense_keys = (k.clone() for k in m._pending_keys)
    assert keys.shape == dense_keys.shape == (4, 128)
    m.after_optimizer_step(1, 10)
    assert torch.equal(m.queue[:4], keys) and torch.equal(m.dense_queue[:4], dense_keys)
    assert torch.equal(m.queue[4:], before[0][4:]) and int(m.queue_ptr) == 4
    assert torch.allclose(m.dense_queue.norm(dim=1), torch.ones(10), atol=1e-5)


def test_moco_queue_bound_and_momentum_schedule():
    """queue_fraction bounds the queue by the pretraining set (whole batches, at least one);
    momentum_end raises the EMA momentum on a cosine (constant by default, MoCo v2)."""
    from medssl.ssl import build_method, method_config
    from medssl.ssl.moco import MoCo

    cfg = method_config("moco", {"queue_fraction": 0.25})
    assert MoCo.fit_to_data(cfg, n_train=1000, batch_size=64).queue_size == 192  # 250 -> 3 x 64
    assert MoCo.fit_to_data(cfg, n_train=100, batch_size=64).queue_size == 64  # at least one
    assert MoCo.fit_to_data(method_config("moco"), n_train=100, batch_size=64).queue_size == 16384
    moco = build_method("moco", build_encoder(), {"momentum": 0.99, "momentum_end": 1.0})
    assert moco.momentum_at(1, 100) == pytest.approx(0.99)
    assert moco.momentum_at(100, 100) == pytest.approx(1.0, abs=1e-6)
    assert 0.99 < moco.momentum_at(50, 100) < 1.0
    constant = build_method("moco", build_encoder(), {"momentum": 0.999})
    assert constant.momentum_at(50, 100) == 0.999
    assert build_method("moco", build_encoder(), {"batch_norm": True}).projection_head is not None
