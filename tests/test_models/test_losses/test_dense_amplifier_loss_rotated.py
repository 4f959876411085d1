"""DenseAmplifierLoss running the head of a tiny MMRotate rotated RetinaNet
(le90): the reg term against a hand-written Gaussian KL divergence of the
decoded rotated boxes, zero at equality, finite on empty images and on the
extreme boxes an untrained head decodes, gradients to the student only."""
import numpy as np
import pytest
import torch
from mmrazor.registry import MODELS

from ds2d2_mmrazor.models.losses import Amplifier

from ...conftest import (MMROTATE_MISSING, shrink_dense_detector,
                         upstream_config)
from .test_dense_amplifier_loss import targets

pytest.importorskip('mmrotate', reason=MMROTATE_MISSING)

from mmrotate.registry import MODELS as ROT_MODELS  # noqa: E402
from mmrotate.testing import demo_mm_inputs  # noqa: E402
from mmrotate.utils import register_all_modules  # noqa: E402

ROTATED_RETINANET = ('mmrotate::rotated_retinanet/'
                     'rotated-retinanet-rbox-le90_r50_fpn_1x_dota.py')
# The box distance of the rotated DS2D2 configs.
KLD = dict(type='mmrotate.GDLoss', loss_type='kld', fun='log1p', tau=1.0,
           sqrt=False, reduction='mean', loss_weight=1.0)
NO_CLS = dict(type='KDQualityFocalLoss', beta=1.0, loss_weight=0.0)


def build(**kwargs):
    kwargs.setdefault('amplifier', 'teacher')
    kwargs.setdefault('reg_loss', KLD)
    return MODELS.build(
        dict(type='DenseAmplifierLoss', _scope_='mmrazor', **kwargs))


def batch(model, num_items):
    data = demo_mm_inputs(batch_size=len(num_items), image_shapes=(3, 64, 64),
                          num_items=num_items, num_classes=3,
                          use_box_type=True)
    return model.data_preprocessor(data, False)


@pytest.fixture(scope='module')
def setup():
    register_all_modules(init_default_scope=False)
    cfg = shrink_dense_detector(upstream_config(ROTATED_RETINANET).model)
    cfg['_scope_'] = 'mmrotate'
    torch.manual_seed(0)
    model = ROT_MODELS.build(cfg)
    model.init_weights()
    with torch.no_grad():
        for p in model.bbox_head.parameters():
            p.normal_(0, 0.1)
    model.eval()
    model.requires_grad_(False)
    data = batch(model, [3, 2])
    with torch.no_grad():
        t_feats = model.extract_feat(data['inputs'])
    g = torch.Generator().manual_seed(1)
    s_feats = tuple(f + 0.5 * torch.randn(f.shape, generator=g)
                    for f in t_feats)
    label_weights, avg_factor = targets(model.bbox_head, t_feats,
                                        data['data_samples'])
    assert avg_factor > 0
    return dict(model=model, head=model.bbox_head, t_feats=t_feats,
                s_feats=s_feats, label_weights=label_weights,
                avg_factor=avg_factor)


def amplifier(setup) -> Amplifier:
    """The frozen bbox_head, as DS2D2Distiller passes it (checked)."""
    build().check_head(setup['model'])
    return Amplifier(setup['model'].bbox_head)


def run(loss, setup, s_feats=None, t_feats=None):
    return loss(setup['s_feats'] if s_feats is None else s_feats,
                setup['t_feats'] if t_feats is None else t_feats,
                setup['label_weights'], setup['avg_factor'],
                amplifier(setup))


def gaussian(box):
    """Mean and covariance of a rotated box (cx, cy, w, h, theta): the
    uniform box's second moments up to MMRotate's scale, R diag(w/2, h/2)^2
    R^T."""
    cx, cy, w, h, t = box
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    return np.array([cx, cy]), rot @ np.diag([w * w / 4, h * h / 4]) @ rot.T


def kld_loss(pred, target):
    """1 - 1 / (1 + log1p(KL(N_target || N_pred))), per box pair."""
    mu_p, sig_p = gaussian(pred)
    mu_t, sig_t = gaussian(target)
    inv = np.linalg.inv(sig_p)
    d = mu_p - mu_t
    kl = 0.5 * (np.trace(inv @ sig_t) + d @ inv @ d - 2 +
                np.log(np.linalg.det(sig_p) / np.linalg.det(sig_t)))
    return 1 - 1 / (1 + np.log1p(kl))


def test_reg_term_is_the_confidence_weighted_gaussian_kl(setup):
    head = setup['head']
    value = run(build(cls_loss=NO_CLS), setup)
    with torch.no_grad():
        _, s_reg = head(setup['s_feats'])
        t_cls, t_reg = head(setup['t_feats'])
    anchors = head.prior_generator.grid_priors(
        [f.shape[-2:] for f in setup['s_feats']], device='cpu')
    total = 0.0
    for n in range(2):
        for level, level_anchors in enumerate(anchors):
            assert level_anchors.tensor.shape[1] == 5  # rotated anchors
            deltas_s = s_reg[level][n].permute(1, 2, 0).reshape(-1, 5)
            deltas_t = t_reg[level][n].permute(1, 2, 0).reshape(-1, 5)
            boxes_s = head.bbox_coder.decode(level_anchors, deltas_s).tensor
            boxes_t = head.bbox_coder.decode(level_anchors, deltas_t).tensor
            confidence = torch.sigmoid(t_cls[level][n].permute(
                1, 2, 0).reshape(-1, head.cls_out_channels).max(1).values)
            for b_s, b_t, c in zip(boxes_s.double().numpy(),
                                   boxes_t.double().numpy(),
                                   confidence.double().numpy()):
                total += c * kld_loss(b_s, b_t)
    expected = total / setup['avg_factor']
    assert expected > 0
    assert value.item() == pytest.approx(expected, rel=1e-4)


def test_zero_when_student_equals_teacher(setup):
    same = tuple(f.clone() for f in setup['t_feats'])
    assert abs(run(build(), setup, s_feats=same).item()) < 1e-6
    value = run(build(), setup)
    assert torch.isfinite(value) and value.item() > 0


def test_empty_images_give_a_finite_loss(setup):
    model = setup['model']
    data = batch(model, [1, 1])
    for sample in data['data_samples']:  # images without objects
        sample.gt_instances = sample.gt_instances[:0]
    with torch.no_grad():
        t_feats = model.extract_feat(data['inputs'])
    s_feats = tuple(f + 0.3 for f in t_feats)
    label_weights, avg_factor = targets(model.bbox_head, t_feats,
                                        data['data_samples'])
    # all anchors negative (weight 1); mmdet counts >= 1 positive an image
    assert all((w == 1).all() for w in label_weights) and avg_factor == 2
    value = build()(s_feats, t_feats, label_weights, avg_factor,
                    amplifier(setup))
    assert torch.isfinite(value) and value.item() > 0


def test_extreme_boxes_stay_finite(setup):
    # a head whose regression saturates the coder's clamp decodes boxes of
    # aspect ratio ~e^8: MMRotate's KLD in float32 gives NaN on them, the
    # loss (float64 distance) stays finite, and so does its gradient
    head = setup['head']
    saved = {k: v.clone() for k, v in head.state_dict().items()}
    try:
        with torch.no_grad():
            head.retina_reg.weight.normal_(0, 5.0)
        s_feats = tuple(f.detach().clone().requires_grad_(True)
                        for f in setup['s_feats'])
        value = run(build(), setup, s_feats=s_feats)
        value.backward()
        assert torch.isfinite(value)
        assert all(torch.isfinite(f.grad).all() for f in s_feats)

        with torch.no_grad():
            _, reg = head(setup['s_feats'])
            anchors = head.prior_generator.grid_priors(
                [f.shape[-2:] for f in setup['s_feats']], device='cpu')
            boxes = torch.cat([
                head.bbox_coder.decode(
                    a, r[0].permute(1, 2, 0).reshape(-1, 5)).tensor
                for a, r in zip(anchors, reg)])
        ratio = boxes[:, 2:4].max(1).values / boxes[:, 2:4].min(1).values
        assert ratio.max() > 1000
        gd = MODELS.build(KLD)
        shifted = boxes + torch.tensor([1., 1., 0., 0., 0.1])
        assert not torch.isfinite(gd(boxes, shifted,
                                     reduction_override='none')).all()
        assert torch.isfinite(gd(boxes.double(), shifted.double(),
                                 reduction_override='none')).all()
    finally:
        head.load_state_dict(saved)


def test_gradient_reaches_student_features_only(setup):
    s_feats = tuple(f.detach().clone().requires_grad_(True)
                    for f in setup['s_feats'])
    t_feats = tuple(f.detach().clone().requires_grad_(True)
                    for f in setup['t_feats'])
    run(build(), setup, s_feats=s_feats, t_feats=t_feats).backward()
    assert all(f.grad is not None and torch.isfinite(f.grad).all()
               for f in s_feats)
    assert sum(f.grad.abs().sum() for f in s_feats) > 0
    assert all(f.grad is None for f in t_feats)
    assert all(p.grad is None for p in setup['head'].parameters())
