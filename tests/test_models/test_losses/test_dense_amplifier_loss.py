"""DenseAmplifierLoss running a tiny RetinaNet's head, against an explicit
computation of its cls term (KD quality focal loss with label weights) and
its reg term (GIoU of decoded boxes weighted by the teacher's confidence)."""
from types import SimpleNamespace

import pytest
import torch
from mmdet.registry import MODELS as DET_MODELS
from mmdet.structures.bbox import bbox_overlaps, get_box_tensor
from mmdet.testing import demo_mm_inputs
from mmdet.utils import register_all_modules
from torch import nn

from ds2d2_mmrazor.models.losses import (Amplifier, DenseAmplifierLoss,
                                         same_features)
from ds2d2_mmrazor.ops import high_frequency
from mmrazor.registry import MODELS

from ...conftest import shrink_dense_detector, upstream_config

RETINANET = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
NO_REG = dict(type='mmdet.GIoULoss', reduction='mean', loss_weight=0.0)
NO_CLS = dict(type='KDQualityFocalLoss', beta=1.0, loss_weight=0.0)


def tiny_retinanet_cfg(**head):
    register_all_modules(init_default_scope=False)
    cfg = shrink_dense_detector(upstream_config(RETINANET).model)
    for key, value in head.items():
        cfg.bbox_head[key] = value  # replaced, not merged
    cfg['_scope_'] = 'mmdet'  # whatever the default scope of the session
    return cfg


def build(**kwargs) -> DenseAmplifierLoss:
    kwargs.setdefault('amplifier', 'teacher')
    return MODELS.build(
        dict(type='DenseAmplifierLoss', _scope_='mmrazor', **kwargs))


def targets(head, feats, data_samples):
    """Label weights and avg_factor from the head's own get_targets, as in
    its loss_by_feat."""
    metas = [s.metainfo for s in data_samples]
    anchors, valid = head.get_anchors([f.shape[-2:] for f in feats], metas,
                                      device=feats[0].device)
    out = head.get_targets(anchors, valid,
                           [s.gt_instances for s in data_samples], metas)
    return out[1], out[4]


@pytest.fixture(scope='module')
def setup():
    """A frozen tiny RetinaNet, teacher features, differing student features
    and the student-side targets of a batch of 2 images."""
    torch.manual_seed(0)
    model = DET_MODELS.build(tiny_retinanet_cfg())
    model.init_weights()
    with torch.no_grad():  # livelier head outputs than the prior init
        for p in model.bbox_head.parameters():
            p.normal_(0, 0.1)
    model.eval()
    model.requires_grad_(False)  # frozen, as DS2D2Distill does
    data = demo_mm_inputs(batch_size=2, image_shapes=(3, 64, 64),
                          num_items=[3, 2], num_classes=3)
    data = model.data_preprocessor(data, False)
    with torch.no_grad():
        t_feats = model.extract_feat(data['inputs'])
    g = torch.Generator().manual_seed(1)
    s_feats = tuple(f + 0.5 * torch.randn(f.shape, generator=g)
                    for f in t_feats)
    label_weights, avg_factor = targets(model.bbox_head, t_feats,
                                        data['data_samples'])
    assert avg_factor > 0
    assert any((w == 0).any() for w in label_weights)  # some ignored anchors
    return dict(model=model, head=model.bbox_head, t_feats=t_feats,
                s_feats=s_feats, label_weights=label_weights,
                avg_factor=avg_factor, data=data)


def amplifier(setup, transform=same_features) -> Amplifier:
    """The frozen bbox_head and feature view, as DS2D2Distiller passes
    them (after checking the detector)."""
    loss = build()
    loss.check_head(setup['model'])
    return Amplifier(getattr(setup['model'], loss.head_part), transform)


def run(loss, setup, s_feats=None, t_feats=None, avg_factor=None,
        transform=same_features):
    return loss(setup['s_feats'] if s_feats is None else s_feats,
                setup['t_feats'] if t_feats is None else t_feats,
                setup['label_weights'],
                setup['avg_factor'] if avg_factor is None else avg_factor,
                amplifier=amplifier(setup, transform))


def leaves(feats):
    return tuple(f.detach().clone().requires_grad_(True) for f in feats)


def flatten(maps, channels):
    """Per level [N, A*K, H, W] -> [N, H*W*A, K], concatenated over levels
    (mmdet's anchor order: location-major, then the A anchors)."""
    return torch.cat([m.permute(0, 2, 3, 1).reshape(m.shape[0], -1, channels)
                      for m in maps], dim=1)


# ----------------------------------------------------------------------------
# values


def test_zero_when_student_equals_teacher(setup):
    same = tuple(f.clone() for f in setup['t_feats'])
    value = run(build(), setup, s_feats=same)
    assert value.shape == ()
    assert abs(value.item()) < 1e-6


def test_positive_when_features_differ(setup):
    value = run(build(), setup)
    assert torch.isfinite(value) and value.item() > 0
    cls_only = run(build(reg_loss=NO_REG), setup)
    reg_only = run(build(cls_loss=NO_CLS), setup)
    assert cls_only.item() > 0 and reg_only.item() > 0
    torch.testing.assert_close(value, cls_only + reg_only)


def test_loss_weight_scales(setup):
    one = run(build(), setup)
    torch.testing.assert_close(run(build(loss_weight=2.5), setup),
                               2.5 * one)
    assert run(build(loss_weight=0), setup).item() == 0.0


def test_cls_term_equals_explicit_computation(setup):
    head = setup['head']
    value = run(build(reg_loss=NO_REG), setup)
    c = head.cls_out_channels
    with torch.no_grad():
        s_cls, _ = head(setup['s_feats'])
        t_cls, _ = head(setup['t_feats'])
    z_s = flatten(s_cls, c).reshape(-1, c).double()
    z_t = flatten(t_cls, c).reshape(-1, c).double()
    label_weight = torch.cat(setup['label_weights'], dim=1).reshape(-1)
    p_s, p_t = torch.sigmoid(z_s), torch.sigmoid(z_t)
    qfl = (-(p_t * torch.log(p_s) + (1 - p_t) * torch.log(1 - p_s)) *
           (p_s - p_t).abs())
    expected = (qfl * label_weight.double()[:, None]).sum() / \
        setup['avg_factor']
    torch.testing.assert_close(value.double(), expected, rtol=1e-5,
                               atol=1e-7)
    # the label weights matter: ignored anchors (weight 0) are left out
    unweighted = qfl.sum() / setup['avg_factor']
    assert not torch.isclose(unweighted, expected, rtol=1e-4)


def test_reg_term_equals_explicit_computation(setup):
    head = setup['head']
    value = run(build(cls_loss=NO_CLS), setup)
    feats_s, feats_t = setup['s_feats'], setup['t_feats']
    num_images = feats_s[0].shape[0]
    with torch.no_grad():
        _, s_reg = head(feats_s)
        t_cls, t_reg = head(feats_t)
    anchors = head.prior_generator.grid_priors(
        [f.shape[-2:] for f in feats_s], device='cpu')
    total = torch.zeros((), dtype=torch.float64)
    for n in range(num_images):
        for level, level_anchors in enumerate(anchors):
            level_anchors = get_box_tensor(level_anchors)
            deltas_s = s_reg[level][n].permute(1, 2, 0).reshape(-1, 4)
            deltas_t = t_reg[level][n].permute(1, 2, 0).reshape(-1, 4)
            logits_t = t_cls[level][n].permute(1, 2, 0).reshape(
                -1, head.cls_out_channels)
            boxes_s = get_box_tensor(
                head.bbox_coder.decode(level_anchors, deltas_s))
            boxes_t = get_box_tensor(
                head.bbox_coder.decode(level_anchors, deltas_t))
            giou = bbox_overlaps(boxes_s, boxes_t, mode='giou',
                                 is_aligned=True)
            confidence = torch.sigmoid(logits_t.max(dim=1).values)
            total += ((1 - giou) * confidence).double().sum()
    expected = total / setup['avg_factor']
    assert expected.item() > 0
    torch.testing.assert_close(value.double(), expected, rtol=1e-4,
                               atol=1e-7)


def test_feature_transform_is_applied_to_both_sides(setup):
    s_feats, t_feats = setup['s_feats'], setup['t_feats']
    doubled = run(build(), setup,
                  transform=lambda feats: tuple(f * 2 for f in feats))
    plain = build()
    expected = run(plain, setup, s_feats=tuple(f * 2 for f in s_feats),
                   t_feats=tuple(f * 2 for f in t_feats))
    torch.testing.assert_close(doubled, expected)
    # transforming one side only would give a different value
    one_sided = run(plain, setup, s_feats=tuple(f * 2 for f in s_feats))
    assert not torch.isclose(doubled, one_sided, rtol=1e-3)

    hf = lambda feats: tuple(high_frequency(f) for f in feats)  # noqa: E731
    high = run(build(amplifier='high_frequency'), setup, transform=hf)
    expected = run(plain, setup, s_feats=hf(s_feats), t_feats=hf(t_feats))
    torch.testing.assert_close(high, expected)
    assert not torch.isclose(high, run(plain, setup), rtol=1e-3)
    same = run(build(amplifier='high_frequency'), setup,
               s_feats=tuple(f.clone() for f in t_feats), transform=hf)
    assert abs(same.item()) < 1e-6


def test_empty_images_give_a_finite_loss(setup):
    model = setup['model']
    data = demo_mm_inputs(batch_size=2, image_shapes=(3, 64, 64),
                          num_items=[0, 0], num_classes=3)
    data = model.data_preprocessor(data, False)
    with torch.no_grad():
        t_feats = model.extract_feat(data['inputs'])
    s_feats = tuple(f + 0.3 for f in t_feats)
    label_weights, _ = targets(model.bbox_head, t_feats,
                               data['data_samples'])
    loss, head = build(), amplifier(setup)
    value = loss(s_feats, t_feats, label_weights, 0, head)
    assert torch.isfinite(value) and value.item() > 0
    # avg_factor 0 is clamped to 1, never divided by
    torch.testing.assert_close(value,
                               loss(s_feats, t_feats, label_weights, 1, head))


# ----------------------------------------------------------------------------
# gradients and parameters


def test_gradient_reaches_student_features_only(setup):
    head = setup['head']
    s_feats, t_feats = leaves(setup['s_feats']), leaves(setup['t_feats'])
    run(build(), setup, s_feats=s_feats, t_feats=t_feats).backward()
    for f in s_feats:
        assert f.grad is not None and torch.isfinite(f.grad).all()
    assert sum(f.grad.abs().sum() for f in s_feats) > 0
    assert all(f.grad is None for f in t_feats)
    assert all(not p.requires_grad and p.grad is None
               for p in head.parameters())


def test_adds_no_parameters(setup):
    loss = build()
    run(loss, setup)  # the head is an argument: it is not kept
    assert list(loss.parameters()) == []
    assert len(loss.state_dict()) == 0
    head_ids = {id(p) for p in setup['head'].parameters()}
    assert not head_ids & {id(p) for p in loss.parameters()}
    assert all(not isinstance(m, type(setup['head']))
               for m in loss.modules())
    assert all(value is not setup['head'] and value is not setup['model']
               for value in vars(loss).values())


def test_teacher_side_runs_without_graph(setup, monkeypatch):
    head = setup['head']
    forward = head.forward
    calls = []

    def recording_forward(feats):
        outputs = forward(feats)
        calls.append(dict(
            first_input=feats[0], grad_enabled=torch.is_grad_enabled(),
            requires_grad=[o.requires_grad for out in outputs for o in out]))
        return outputs

    monkeypatch.setattr(head, 'forward', recording_forward)
    s_feats, t_feats = leaves(setup['s_feats']), leaves(setup['t_feats'])
    run(build(), setup, s_feats=s_feats, t_feats=t_feats)
    assert len(calls) == 2
    teacher = [c for c in calls if c['first_input'] is t_feats[0]]
    student = [c for c in calls if c['first_input'] is s_feats[0]]
    assert len(teacher) == len(student) == 1
    assert not teacher[0]['grad_enabled']
    assert not any(teacher[0]['requires_grad'])
    assert student[0]['grad_enabled'] and all(student[0]['requires_grad'])


# ----------------------------------------------------------------------------
# errors


def test_use_without_a_head_raises(setup):
    with pytest.raises(TypeError, match='amplifier'):
        build()(setup['s_feats'], setup['t_feats'], setup['label_weights'],
                setup['avg_factor'])


def test_check_head_accepts_the_detector_or_its_part(setup):
    loss = build()
    assert loss.head_part == 'bbox_head'
    loss.check_head(setup['model'])
    loss.check_head(SimpleNamespace(bbox_head=setup['head']))


def test_check_head_rejects_softmax_head():
    cfg = tiny_retinanet_cfg(loss_cls=dict(
        type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0))
    model = DET_MODELS.build(cfg)
    assert model.bbox_head.cls_out_channels == 4  # 3 classes + background
    with pytest.raises(TypeError, match='sigmoid'):
        build().check_head(model)


def test_check_head_rejects_model_without_dense_head():
    with pytest.raises(TypeError, match='anchor-based'):
        build().check_head(nn.Linear(2, 2))


@pytest.mark.parametrize('name', ['student', 'full', 'Teacher', None])
def test_amplifier_name_validated(name):
    with pytest.raises(ValueError, match='amplifier must be one of'):
        build(amplifier=name)


@pytest.mark.parametrize('name', ['teacher', 'high_frequency'])
def test_amplifier_names_accepted(name):
    assert build(amplifier=name).amplifier == name


@pytest.mark.parametrize('weight', [-1.0, -1e-9, float('nan'), '1'])
def test_bad_loss_weight_rejected(weight):
    with pytest.raises(ValueError, match='loss_weight'):
        build(loss_weight=weight)


def test_level_and_anchor_count_mismatch(setup):
    loss, head = build(), amplifier(setup)
    with pytest.raises(ValueError, match='FPN levels'):
        loss(setup['s_feats'][:4], setup['t_feats'], setup['label_weights'],
             setup['avg_factor'], head)
    with pytest.raises(ValueError, match='anchor generator'):
        loss(setup['s_feats'], setup['t_feats'], setup['label_weights'][:4],
             setup['avg_factor'], head)
