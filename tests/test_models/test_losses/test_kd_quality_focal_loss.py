"""KD quality focal loss against the hand formula
BCE(z_s, sigmoid(z_t)) * |sigmoid(z_s) - sigmoid(z_t)| ** beta."""
import pytest
import torch

import ds2d2_mmrazor  # noqa: F401  (registers the modules)
from ds2d2_mmrazor.models.losses import (KDQualityFocalLoss,
                                         kd_quality_focal_loss)
from mmrazor.registry import MODELS


def hand_formula(z_s: torch.Tensor, z_t: torch.Tensor,
                 beta: float) -> torch.Tensor:
    """The element-wise loss written out in float64 with plain torch ops:
    -(p_t log p_s + (1 - p_t) log(1 - p_s)) * |p_s - p_t| ** beta."""
    z_s, z_t = z_s.detach().double(), z_t.detach().double()
    p_s, p_t = torch.sigmoid(z_s), torch.sigmoid(z_t)
    # log p_s = log sigmoid(z_s), log(1 - p_s) = log sigmoid(-z_s)
    bce = -(p_t * torch.log(torch.sigmoid(z_s)) +
            (1 - p_t) * torch.log(torch.sigmoid(-z_s)))
    return bce * (p_s - p_t).abs()**beta


def logits(seed: int, shape=(6, 5)):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g) * 2,
            torch.randn(shape, generator=g) * 2)


def build(**kwargs) -> KDQualityFocalLoss:
    return MODELS.build(
        dict(type='KDQualityFocalLoss', _scope_='mmrazor', **kwargs))


def test_builds_from_registry():
    loss = build(beta=2.0, loss_weight=0.5)
    assert isinstance(loss, KDQualityFocalLoss)
    assert loss.beta == 2.0 and loss.loss_weight == 0.5
    assert list(loss.parameters()) == []


@pytest.mark.parametrize('beta', [1.0, 2.0])
def test_elementwise_equals_hand_formula(beta):
    z_s, z_t = logits(0)
    out = kd_quality_focal_loss(z_s, z_t, beta)
    assert out.shape == z_s.shape
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.double(), hand_formula(z_s, z_t, beta),
                               rtol=1e-5, atol=1e-6)
    # beta = 2 focuses harder than beta = 1 (|p_s - p_t| < 1)
    if beta == 2.0:
        assert (out <= kd_quality_focal_loss(z_s, z_t, 1.0) + 1e-7).all()


def test_half_inputs_are_computed_in_float32():
    z_s, z_t = logits(1)
    out = kd_quality_focal_loss(z_s.half(), z_t.half())
    assert out.dtype == torch.float32
    torch.testing.assert_close(
        out.double(), hand_formula(z_s.half(), z_t.half(), 1.0),
        rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('beta', [1.0, 2.0])
def test_module_default_reduction_is_mean(beta):
    z_s, z_t = logits(2)
    value = build(beta=beta)(z_s, z_t)
    assert value.shape == ()
    expected = hand_formula(z_s, z_t, beta).sum() / z_s.numel()
    torch.testing.assert_close(value.double(), expected, rtol=1e-5,
                               atol=1e-7)


def test_zero_iff_student_equals_teacher():
    z_s, z_t = logits(3)
    same = kd_quality_focal_loss(z_t.clone(), z_t)
    assert torch.equal(same, torch.zeros_like(same))
    assert build()(z_t.clone(), z_t).item() == 0.0

    differ = kd_quality_focal_loss(z_s, z_t)
    assert (differ > 0).all()  # every element differs
    assert build()(z_s, z_t).item() > 0
    # only the differing element contributes
    z_one = z_t.clone()
    z_one[2, 3] += 1.0
    one = kd_quality_focal_loss(z_one, z_t)
    assert one[2, 3] > 0
    one[2, 3] = 0
    assert torch.equal(one, torch.zeros_like(one))


def test_row_weight_and_avg_factor():
    z_s, z_t = logits(4)
    weight = torch.tensor([1.0, 0.0, 2.0, 0.5, 1.0, 0.0])  # [M]
    value = build()(z_s, z_t, weight=weight, avg_factor=7.0)
    expected = (hand_formula(z_s, z_t, 1.0) *
                weight.double()[:, None]).sum() / 7.0
    torch.testing.assert_close(value.double(), expected, rtol=1e-5,
                               atol=1e-7)


def test_element_weight_and_loss_weight():
    z_s, z_t = logits(5)
    g = torch.Generator().manual_seed(9)
    weight = torch.rand(z_s.shape, generator=g)  # [M, C]
    value = build(beta=2.0, loss_weight=3.0)(
        z_s, z_t, weight=weight, avg_factor=4)
    expected = 3.0 * (hand_formula(z_s, z_t, 2.0) *
                      weight.double()).sum() / 4.0
    torch.testing.assert_close(value.double(), expected, rtol=1e-5,
                               atol=1e-7)


def test_avg_factor_none_is_numel_and_zero_is_clamped_to_one():
    z_s, z_t = logits(6)
    weight = torch.tensor([1.0, 1.0, 0.0, 1.0, 1.0, 1.0])
    total = (hand_formula(z_s, z_t, 1.0) * weight.double()[:, None]).sum()
    loss = build()
    torch.testing.assert_close(
        loss(z_s, z_t, weight=weight, avg_factor=None).double(),
        total / z_s.numel(), rtol=1e-5, atol=1e-7)
    zero = loss(z_s, z_t, weight=weight, avg_factor=0)
    assert torch.isfinite(zero)
    torch.testing.assert_close(zero.double(), total, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(
        loss(z_s, z_t, weight=weight, avg_factor=torch.tensor(0.)).double(),
        total, rtol=1e-5, atol=1e-7)


def test_gradient_reaches_student_only():
    z_s, z_t = logits(7)
    z_s.requires_grad_(True)
    z_t.requires_grad_(True)
    value = build()(z_s, z_t, avg_factor=3.0)
    value.backward()
    assert z_t.grad is None
    assert z_s.grad is not None and z_s.grad.abs().sum() > 0
    # the gradient of the hand formula with the teacher as a constant
    z_ref = z_s.detach().double().requires_grad_(True)
    p_t = torch.sigmoid(z_t.detach().double())
    p_s = torch.sigmoid(z_ref)
    ref = (-(p_t * torch.log(p_s) + (1 - p_t) * torch.log(1 - p_s)) *
           (p_s - p_t).abs()).sum() / 3.0
    ref.backward()
    torch.testing.assert_close(z_s.grad.double(), z_ref.grad, rtol=1e-4,
                               atol=1e-6)


def test_shape_mismatch_raises():
    z_s, z_t = logits(8)
    with pytest.raises(ValueError, match='differ in shape'):
        kd_quality_focal_loss(z_s, z_t[:, :4])
    with pytest.raises(ValueError, match=r'\(6, 5\).*\(6, 4\)'):
        build()(z_s, z_t[:, :4])


@pytest.mark.parametrize('beta', [0, 0.0, -1.0, float('nan')])
def test_non_positive_beta_rejected(beta):
    with pytest.raises(ValueError, match='beta must be > 0'):
        build(beta=beta)
