"""SSL methods: known-answer losses and contract tests over every registered method."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from medssl.engine.monitor import check_collapse, collapse_score
from medssl.errors import ConfigError, TrainingError
from medssl.models.encoder import build_encoder
from medssl.ssl import METHODS, build_method, method_names
from medssl.ssl.byol import byol_loss
from medssl.ssl.moco import info_nce

SMALL = {"moco": {"queue_size": 10}}  # everything else at its paper default


def two_views(n=4, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, size, size, generator=g), torch.randn(n, 1, size, size, generator=g)


def make(name, seed=0, encoder=None):
    torch.manual_seed(seed)
    return build_method(name, encoder or build_encoder(), SMALL.get(name))


def test_registry_lists_the_three_methods():
    assert {"simclr", "moco", "byol"} <= set(method_names())
    assert METHODS.get("byol").__name__ == "BYOL"
    with pytest.raises(ConfigError, match="byol, moco, simclr"):
        build_method("swav", build_encoder())
    with pytest.raises(ConfigError, match="unknown key"):
        build_method("simclr", build_encoder(), {"temprature": 0.1})


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
    m = make(name)
    frozen = {k: p.detach().clone() for k, p in m.named_parameters() if not p.requires_grad}
    opt = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.1)
    loss, logs = m.training_step(two_views())
    assert loss.dim() == 0 and torch.isfinite(loss) and isinstance(logs, dict)
    opt.zero_grad()
    loss.backward()
    assert m.encoder.conv1.weight.grad is not None and m.encoder.conv1.weight.grad.abs().sum() > 0
    opt.step()
    for k, p in m.named_parameters():
        if k in frozen:  # momentum encoders: untouched by forward, backward and optimizer
            assert torch.equal(p, frozen[k]), k
    m.after_optimizer_step(1, 10)
    if frozen:
        assert any(not torch.equal(p, frozen[k]) for k, p in m.named_parameters() if k in frozen)
    with torch.no_grad():
        assert m.embed(two_views()[0]).shape == (4, 512)


@pytest.mark.parametrize("name", method_names())
def test_validation_step_has_no_side_effects(name):
    m = make(name).eval()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    logs = m.validation_step(two_views())
    assert torch.isfinite(torch.as_tensor(logs["loss"]))
    m.after_optimizer_step(1, 10)  # nothing pending from validation: only the EMA may move
    after = m.state_dict()
    for k in ("queue", "queue_ptr"):
        if k in before:
            assert torch.equal(before[k], after[k])


class Constant(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(512))

    def forward(self, x):
        return self.w.expand(x.shape[0], -1) + 0 * x.mean()


@pytest.mark.parametrize("name", method_names())
def test_collapse_guard_fires_on_constant_encoder(name):
    m = make(name, encoder=Constant())
    with torch.no_grad():
        z = m.embed(two_views(n=8)[0])
    with pytest.raises(TrainingError, match="collapsed at epoch 3"):
        check_collapse(collapse_score(z), 0.01, epoch=3)
    check_collapse(collapse_score(torch.randn(64, 512)), 0.01, epoch=0)  # spread-out: passes


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
