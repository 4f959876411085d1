"""ScaleFreeDS2D2Distill: each term's gradient on the student's FPN is its
share of the task's, checked against hand computations and against the
plain DS2D2Distill's own terms."""
import math
import os.path as osp

import pytest
import torch
from mmdet.testing import demo_mm_inputs
from mmengine.config import Config

from ds2d2_mmrazor.engine import gradient_norms, split_terms
from ds2d2_mmrazor.models.algorithms import (ScaleFreeDS2D2Distill,
                                             share_scaled)

from .conftest import build

TERMS = ('loss_low', 'loss_high', 'loss_amp_full', 'loss_amp_high')
REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))


# ----------------------------------------------------------------------------
# share_scaled, by hand


def test_share_scaled_matches_hand_computation():
    a = torch.tensor([[1.0, -2.0, 3.0], [0.5, 0.0, -1.0]], requires_grad=True)
    b = torch.tensor([2.0, -1.0, 4.0, 0.0], requires_grad=True)
    t = torch.tensor([[0.0, 1.0, 1.0], [1.0, 1.0, 1.0]])
    task = (3 * a).sum() + (b**2).sum()        # d/da = 3, d/db = 2b
    terms = dict(
        mse=((a - t)**2).mean(),               # d/da = 2 (a - t) / 6
        linear=5 * b.sum(),                    # d/db = 5
        unrelated=torch.tensor(2.0, requires_grad=True) * 3,
        off=0.0 * (a**2).sum())                # weight 0: gradient 0
    shares = dict(mse=0.5, linear=2.0, unrelated=1.0, off=1.0)
    scaled, factors = share_scaled(terms, task, [a, b], shares)

    task_norm = math.sqrt(9 * 6 + 4 * (4 + 1 + 16 + 0))
    mse_norm = math.sqrt(sum(((2 * (x - y) / 6)**2) for x, y in zip(
        a.detach().flatten().tolist(), t.flatten().tolist())))
    assert factors['mse'].item() == pytest.approx(0.5 * task_norm /
                                                  mse_norm, rel=1e-6)
    assert factors['linear'].item() == pytest.approx(2.0 * task_norm / 10,
                                                     rel=1e-6)
    assert factors['unrelated'].item() == 0 and factors['off'].item() == 0
    assert scaled['unrelated'].item() == 0 and scaled['off'].item() == 0
    assert not any(f.requires_grad for f in factors.values())
    # the rescaled term's gradient: the factor times the term's
    grad_a, = torch.autograd.grad(scaled['mse'], [a], retain_graph=True)
    assert torch.allclose(grad_a, factors['mse'] * 2 * (a - t) / 6)
    norms = gradient_norms(scaled, [a, b])
    assert norms['mse'] == pytest.approx(0.5 * task_norm, rel=1e-6)
    assert norms['linear'] == pytest.approx(2.0 * task_norm, rel=1e-6)


@pytest.mark.parametrize('side,magnitude', [(8, 1.0), (32, 1.0), (8, 10.0)])
def test_share_does_not_depend_on_map_size_or_magnitude(side, magnitude):
    """A mean-squared term's own gradient norm falls as 1 / side and grows
    with the features; rescaled, it is the share of the task's."""
    torch.manual_seed(0)
    feat = (magnitude * torch.randn(2, 4, side, side)).requires_grad_()
    target = magnitude * torch.randn(2, 4, side, side)
    task = (feat * torch.randn_like(feat)).sum()
    term = 1e-5 * ((feat - target)**2).mean()
    raw = gradient_norms(dict(task=task, term=term), [feat])
    expected_raw = 1e-5 * 2 * (feat - target).norm().item() / feat.numel()
    assert raw['term'] == pytest.approx(expected_raw, rel=1e-5)
    scaled, _ = share_scaled(dict(term=term), task, [feat], dict(term=0.3))
    norms = gradient_norms(dict(task=task, **scaled), [feat])
    assert norms['term'] / norms['task'] == pytest.approx(0.3, rel=1e-5)


# ----------------------------------------------------------------------------
# the algorithm, on the tiny RetinaNet DS2D2


def batch(algo):
    data = demo_mm_inputs(batch_size=2, image_shapes=(3, 64, 64),
                          num_items=[3, 2], num_classes=3)
    return algo.data_preprocessor(data, True)


def losses_and_norms(algo):
    """The training losses and every term's gradient norm on the student's
    FPN (the task's as ``task``)."""
    algo.train()
    losses = algo(**batch(algo), mode='loss')
    feats = list(algo.distiller.get_record('fpn', from_student=True))
    return losses, gradient_norms(split_terms(losses), feats)


def scale_free(algo_cfg, **changes):
    torch.manual_seed(0)
    algo = build(algo_cfg, type='ScaleFreeDS2D2Distill', **changes)
    algo.init_weights()
    return algo


def test_each_term_has_its_share_and_the_factor_of_the_plain_terms(
        algo_cfg):
    torch.manual_seed(0)
    plain = build(algo_cfg)
    plain.init_weights()
    plain_losses, plain_norms = losses_and_norms(plain)

    algo = scale_free(algo_cfg, share=0.5, shares=dict(loss_high=2.0))
    assert isinstance(algo, ScaleFreeDS2D2Distill)
    losses, norms = losses_and_norms(algo)
    shares = dict(loss_low=0.5, loss_high=2.0, loss_amp_full=0.5,
                  loss_amp_high=0.5)
    # same weights, same batch: the same task loss as plain DS2D2
    assert norms['task'] == pytest.approx(plain_norms['task'], rel=1e-5)
    for term, share in shares.items():
        factor = share * plain_norms['task'] / plain_norms[term]
        scale = losses['distill.' + term.replace('loss', 'scale')]
        assert scale.item() == pytest.approx(factor, rel=1e-4), term
        assert losses['distill.' + term].item() == pytest.approx(
            factor * plain_losses['distill.' + term].item(), rel=1e-4)
        assert norms[term] / norms['task'] == pytest.approx(share, rel=1e-4)
    # the factors are logged, not summed into the loss
    total, log = algo.parse_losses(losses)
    assert 'distill.scale_low' in log
    assert total.item() == pytest.approx(sum(
        (sum(v) if isinstance(v, list) else v).item()
        for k, v in losses.items() if 'loss' in k), rel=1e-6)


def test_loss_weights_cancel_and_zero_switches_a_term_off(algo_cfg):
    reference, _ = losses_and_norms(scale_free(algo_cfg))
    cfg = algo_cfg.copy()
    distiller = cfg.distiller.copy()
    losses_cfg = distiller.distill_losses.copy()
    losses_cfg.loss_spectral = dict(losses_cfg.loss_spectral, low_weight=7.0,
                                    high_weight=1e3)
    losses_cfg.loss_amp_high = dict(losses_cfg.loss_amp_high,
                                    loss_weight=0.0)
    distiller.distill_losses = losses_cfg
    losses, norms = losses_and_norms(scale_free(algo_cfg,
                                                distiller=distiller))
    for term in ('loss_low', 'loss_high', 'loss_amp_full'):
        assert losses['distill.' + term].item() == pytest.approx(
            reference['distill.' + term].item(), rel=1e-4), term
    assert losses['distill.loss_amp_high'].item() == 0
    assert losses['distill.scale_amp_high'].item() == 0
    assert norms['loss_amp_high'] == 0


def test_gradients_reach_the_student_only(algo_cfg):
    algo = scale_free(algo_cfg)
    algo.train()
    losses = algo(**batch(algo), mode='loss')
    sum(losses['distill.' + t] for t in TERMS).backward()
    assert algo.student.neck.fpn_convs[0].conv.weight.grad.abs().sum() > 0
    adapter = algo.distiller.connectors['student_bands'].adapters[0]
    assert adapter.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in algo.teacher.parameters())


@pytest.mark.parametrize('changes,error,match', [
    (dict(share=-1.0), ValueError, r'share must be a finite number >= 0'),
    (dict(share=float('nan')), ValueError, 'share must be a finite'),
    (dict(share=True), ValueError, 'got True'),
    (dict(shares=dict(loss_low=-0.1)), ValueError,
     r"shares\['loss_low'\] must be"),
    (dict(features='neck'), ValueError,
     r"features='neck' is not a student recorder \(there are \['batch', "),
])
def test_bad_arguments_are_clear_errors(algo_cfg, changes, error, match):
    with pytest.raises(error, match=match):
        build(algo_cfg, type='ScaleFreeDS2D2Distill', **changes)


def test_a_share_for_no_term_is_an_error(algo_cfg):
    algo = scale_free(algo_cfg, shares=dict(loss_spectral=1.0))
    algo.train()
    with pytest.raises(KeyError, match=r"names \['loss_spectral'\], but the "
                       r"distillation terms are \['loss_amp_full'"):
        algo(**batch(algo), mode='loss')


@pytest.mark.parametrize('detector', ['retina', 'faster-rcnn'])
def test_configs_state_the_variant_over_the_authors_config(detector):
    cfg = Config.fromfile(osp.join(
        REPO, 'configs', f'ds2d2_scale-free_{detector}_r18_r101_dior.py'))
    authors = Config.fromfile(osp.join(
        REPO, 'configs', f'ds2d2_{detector}_r18_r101_dior.py'))
    assert cfg.model.type == 'ScaleFreeDS2D2Distill'
    assert cfg.model.share == 1.0
    losses = cfg.model.distiller.distill_losses
    assert losses.loss_spectral.low_weight == 1.0
    assert losses.loss_amp_high.loss_weight == 1.0
    # everything else is the authors' config
    for key in ('architecture', 'teacher', 'amplifier', 'teacher_ckpt'):
        assert cfg.model[key] == authors.model[key], key
    assert cfg.model.distiller.connectors == \
        authors.model.distiller.connectors
