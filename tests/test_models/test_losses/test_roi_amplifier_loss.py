"""RoIAmplifierLoss running a tiny Faster R-CNN's RoI head, on the RoIs the
student's RoI head really sampled (recorded as DS2D2Distill records them),
against explicit per-RoI loops of its KL term and its confidence-weighted L1
term."""
from types import SimpleNamespace

import pytest
import torch
from mmdet.registry import MODELS as DET_MODELS
from mmdet.structures.bbox import bbox2roi
from mmdet.testing import demo_mm_inputs
from mmdet.utils import register_all_modules
from mmrazor.models.task_modules import MethodInputsRecorder
from mmrazor.registry import MODELS

from ds2d2_mmrazor.models.losses import (Amplifier, RoIAmplifierLoss,
                                         same_features)
from ds2d2_mmrazor.ops import high_frequency

from ...conftest import upstream_config

FASTER_RCNN = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
NUM_CLASSES = 3
# what DS2D2Distill's student recorder is configured with
BBOX_LOSS = 'mmdet.models.roi_heads.StandardRoIHead.bbox_loss'


def tiny_faster_rcnn_cfg(**bbox_head):
    register_all_modules(init_default_scope=False)
    cfg = upstream_config(FASTER_RCNN).model
    cfg.backbone.update(depth=18, base_channels=8, init_cfg=None)
    cfg.neck.update(in_channels=[8, 16, 32, 64], out_channels=16)
    cfg.rpn_head.update(in_channels=16, feat_channels=16)
    cfg.roi_head.bbox_roi_extractor.out_channels = 16
    cfg.roi_head.bbox_head.update(in_channels=16, fc_out_channels=32,
                                  num_classes=NUM_CLASSES, **bbox_head)
    cfg['_scope_'] = 'mmdet'  # whatever the default scope of the session
    return cfg


def build_detector(seed, **bbox_head):
    torch.manual_seed(seed)
    model = DET_MODELS.build(tiny_faster_rcnn_cfg(**bbox_head))
    model.init_weights()
    return model


def build(**kwargs) -> RoIAmplifierLoss:
    kwargs.setdefault('amplifier', 'teacher')
    return MODELS.build(
        dict(type='RoIAmplifierLoss', _scope_='mmrazor', **kwargs))


def kl(tau=3.0, weight=0.5) -> dict:
    """The cls term: T² x mean over RoIs of the KL (the defaults')."""
    return dict(type='mmrazor.KLDivergence', tau=tau, reduction='batchmean',
                loss_weight=weight)


def l1(weight=1.0) -> dict:
    """The reg term (the default's type)."""
    return dict(type='mmdet.L1Loss', loss_weight=weight)


@pytest.fixture(scope='module')
def setup():
    """A frozen tiny teacher, teacher and student features of a batch of 2
    images, and the sampling results of the student's own training step."""
    teacher = build_detector(0)
    with torch.no_grad():  # livelier RoI head outputs than the prior init
        for p in teacher.roi_head.bbox_head.parameters():
            p.normal_(0, 0.1)
    teacher.eval()
    teacher.requires_grad_(False)  # frozen, as DS2D2Distill does
    student = build_detector(1)
    student.train()

    data = demo_mm_inputs(batch_size=2, image_shapes=(3, 64, 64),
                          num_items=[3, 1], num_classes=NUM_CLASSES)
    data = student.data_preprocessor(data, True)
    recorder = MethodInputsRecorder(BBOX_LOSS)
    recorder.initialize()
    with recorder:
        student.loss(data['inputs'], data['data_samples'])
    sampling_results = recorder.get_record_data(record_idx=0, data_idx=1)
    assert len(sampling_results) == 2
    assert all(len(r.pos_priors) > 0 for r in sampling_results)

    with torch.no_grad():
        t_feats = teacher.extract_feat(data['inputs'])
        s_feats = student.extract_feat(data['inputs'])
    return dict(model=teacher, roi_head=teacher.roi_head, t_feats=t_feats,
                s_feats=s_feats, sampling_results=sampling_results)


def amplifier(model, transform=same_features) -> Amplifier:
    """The frozen roi_head and feature view, as DS2D2Distiller passes them
    (after checking the detector)."""
    loss = build()
    loss.check_head(model)
    return Amplifier(getattr(model, loss.head_part), transform)


def run(loss, setup, s_feats=None, t_feats=None, sampling_results=None,
        transform=same_features, model=None):
    return loss(
        setup['s_feats'] if s_feats is None else s_feats,
        setup['t_feats'] if t_feats is None else t_feats,
        setup['sampling_results']
        if sampling_results is None else sampling_results,
        amplifier=amplifier(setup['model'] if model is None else model,
                            transform))


def leaves(feats):
    return tuple(f.detach().clone().requires_grad_(True) for f in feats)


def head_outputs(setup):
    """Logits and deltas of the teacher's head, in float64, for the RoIs."""
    rois = bbox2roi([r.priors for r in setup['sampling_results']])
    with torch.no_grad():
        s = setup['roi_head']._bbox_forward(setup['s_feats'], rois)
        t = setup['roi_head']._bbox_forward(setup['t_feats'], rois)
    return (s['cls_score'].double(), t['cls_score'].double(),
            s['bbox_pred'].double(), t['bbox_pred'].double())


# ----------------------------------------------------------------------------
# values


def test_zero_when_student_equals_teacher(setup):
    same = tuple(f.clone() for f in setup['t_feats'])
    value = run(build(), setup, s_feats=same)
    assert value.shape == () and value.dtype == torch.float32
    assert abs(value.item()) < 1e-6


def test_positive_when_features_differ(setup):
    value = run(build(), setup)
    assert torch.isfinite(value) and value.item() > 0
    cls_only = run(build(reg_loss=l1(0)), setup)
    reg_only = run(build(cls_loss=kl(weight=0)), setup)
    assert cls_only.item() > 0 and reg_only.item() > 0
    torch.testing.assert_close(value, cls_only + reg_only)


def test_weights_scale(setup):
    one = run(build(cls_loss=kl(weight=1), reg_loss=l1(0)), setup)
    torch.testing.assert_close(
        run(build(cls_loss=kl(weight=0.5), reg_loss=l1(0), loss_weight=3),
            setup), 1.5 * one)
    assert run(build(loss_weight=0), setup).item() == 0.0


def test_cls_term_equals_per_roi_loop(setup):
    temperature = 3.0
    value = run(build(cls_loss=kl(tau=temperature, weight=0.5),
                      reg_loss=l1(0)), setup)
    z_s, z_t, _, _ = head_outputs(setup)
    assert z_s.shape == (z_s.shape[0], NUM_CLASSES + 1)
    total = 0.0
    for r in range(z_s.shape[0]):
        q_s = torch.exp(z_s[r] / temperature)
        q_s = q_s / q_s.sum()
        q_t = torch.exp(z_t[r] / temperature)
        q_t = q_t / q_t.sum()
        total += sum(q_t[c] * torch.log(q_t[c] / q_s[c])
                     for c in range(NUM_CLASSES + 1))
    expected = 0.5 * temperature**2 * total / z_s.shape[0]
    assert expected.item() > 0
    torch.testing.assert_close(value.double(), expected, rtol=1e-5,
                               atol=1e-8)


def test_reg_term_equals_per_roi_loop(setup):
    value = run(build(cls_loss=kl(weight=0), reg_loss=l1(2.0)), setup)
    _, z_t, d_s, d_t = head_outputs(setup)
    assert d_s.shape[1] == 4 * NUM_CLASSES  # class-specific deltas
    numerator, weights = 0.0, 0.0
    for r in range(z_t.shape[0]):
        p = torch.exp(z_t[r]) / torch.exp(z_t[r]).sum()
        best = max(range(NUM_CLASSES), key=lambda c: p[c].item())  # no bg
        w = p[best]
        cols = slice(4 * best, 4 * best + 4)
        numerator += w * (d_s[r, cols] - d_t[r, cols]).abs().sum()
        weights += w
    expected = 2.0 * numerator / (4 * weights)
    assert expected.item() > 0
    torch.testing.assert_close(value.double(), expected, rtol=1e-5,
                               atol=1e-8)


def test_mean_over_rois(setup):
    """Each RoI twice: a mean is unchanged (a sum would double)."""
    doubled = [SimpleNamespace(priors=torch.cat([r.priors, r.priors]))
               for r in setup['sampling_results']]
    loss = build()
    torch.testing.assert_close(run(loss, setup, sampling_results=doubled),
                               run(loss, setup), rtol=1e-5, atol=1e-7)


def test_feature_transform_is_applied_to_both_sides(setup):
    s_feats, t_feats = setup['s_feats'], setup['t_feats']
    plain = build()
    scaled = run(build(), setup,
                 transform=lambda feats: tuple(f * 2 for f in feats))
    expected = run(plain, setup, s_feats=tuple(f * 2 for f in s_feats),
                   t_feats=tuple(f * 2 for f in t_feats))
    torch.testing.assert_close(scaled, expected)
    one_sided = run(plain, setup, s_feats=tuple(f * 2 for f in s_feats))
    assert not torch.isclose(scaled, one_sided, rtol=1e-3)

    hf = lambda feats: tuple(high_frequency(f) for f in feats)  # noqa: E731
    high = run(build(amplifier='high_frequency'), setup, transform=hf)
    torch.testing.assert_close(
        high, run(plain, setup, s_feats=hf(s_feats), t_feats=hf(t_feats)))
    assert not torch.isclose(high, run(plain, setup), rtol=1e-3)


# ----------------------------------------------------------------------------
# gradients and parameters


def test_gradient_reaches_student_features_only(setup):
    loss = build()
    s_feats, t_feats = leaves(setup['s_feats']), leaves(setup['t_feats'])
    run(loss, setup, s_feats=s_feats, t_feats=t_feats).backward()
    # the RoI extractor reads the first num_inputs levels (4 of the 5);
    # at 64 px the RoIs are small, mapped to the finest level
    used = setup['roi_head'].bbox_roi_extractor.num_inputs
    assert used == 4
    assert all(f.grad is not None for f in s_feats[:used])
    assert s_feats[0].grad.abs().sum() > 0
    assert all(f.grad is None for f in t_feats)  # teacher side: no graph
    assert all(p.grad is None for p in setup['model'].parameters())
    assert list(loss.parameters()) == [] and loss.state_dict() == {}
    # its only submodules are the two parameter-free sub-losses
    assert [type(m).__name__ for m in loss.children()] == [
        'KLDivergence', 'L1Loss']
    assert all(value is not setup['roi_head']
               and value is not setup['model']
               for value in vars(loss).values())


def test_teacher_side_has_no_graph(setup, monkeypatch):
    roi_head = setup['roi_head']
    forward = type(roi_head)._bbox_forward
    outputs = []

    def spy(self, x, rois):
        out = forward(self, x, rois)
        outputs.append((x[0].requires_grad, out['cls_score'].requires_grad,
                        out['bbox_pred'].requires_grad))
        return out

    monkeypatch.setattr(type(roi_head), '_bbox_forward', spy)
    run(build(), setup, s_feats=leaves(setup['s_feats']),
        t_feats=leaves(setup['t_feats']))
    assert len(outputs) == 2
    # teacher first, on leaves requiring grad yet without a graph
    assert outputs[0] == (True, False, False)
    assert outputs[1] == (True, True, True)


def test_zero_rois_give_a_finite_connected_zero(setup):
    empty = [SimpleNamespace(priors=torch.zeros(0, 4))
             for _ in setup['sampling_results']]
    s_feats = leaves(setup['s_feats'])
    value = run(build(), setup, s_feats=s_feats, sampling_results=empty)
    assert value.shape == () and value.item() == 0.0
    value.backward()
    assert all(f.grad is not None and torch.isfinite(f.grad).all()
               and (f.grad == 0).all() for f in s_feats)


# ----------------------------------------------------------------------------
# errors


def test_use_without_a_head_raises(setup):
    with pytest.raises(TypeError, match='amplifier'):
        build()(setup['s_feats'], setup['t_feats'],
                setup['sampling_results'])


def test_check_head_accepts_the_detector_or_its_part(setup):
    loss = build()
    assert loss.head_part == 'roi_head'
    loss.check_head(setup['model'])
    loss.check_head(SimpleNamespace(roi_head=setup['roi_head']))


def test_class_agnostic_head_uses_its_one_delta_set(setup):
    model = build_detector(2, reg_class_agnostic=True)
    model.eval()
    model.requires_grad_(False)
    value = run(build(cls_loss=kl(weight=0)), setup, model=model)
    rois = bbox2roi([r.priors for r in setup['sampling_results']])
    with torch.no_grad():
        s = model.roi_head._bbox_forward(setup['s_feats'], rois)
        t = model.roi_head._bbox_forward(setup['t_feats'], rois)
    d_s, d_t = s['bbox_pred'].double(), t['bbox_pred'].double()
    z_t = t['cls_score'].double()
    assert d_s.shape[1] == 4
    numerator, weights = 0.0, 0.0
    for r in range(z_t.shape[0]):
        w = torch.softmax(z_t[r], dim=0)[:NUM_CLASSES].max()
        numerator += w * (d_s[r] - d_t[r]).abs().sum()
        weights += w
    expected = numerator / (4 * weights)
    assert expected.item() > 0
    torch.testing.assert_close(value.double(), expected, rtol=1e-5,
                               atol=1e-8)


def test_sigmoid_head_is_rejected():
    model = build_detector(0, loss_cls=dict(
        type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0))
    with pytest.raises(TypeError, match='softmax'):
        build().check_head(model)


def test_model_without_roi_head_is_rejected():
    with pytest.raises(TypeError, match='roi_head'):
        build().check_head(torch.nn.Linear(1, 1))


@pytest.mark.parametrize('kwargs, match', [
    (dict(amplifier='student'), 'amplifier'),
    (dict(cls_loss=kl(tau=0)), r'RoIAmplifierLoss\.cls_loss\.tau'),
    (dict(cls_loss=kl(tau=-1.0)), r'RoIAmplifierLoss\.cls_loss\.tau'),
    (dict(cls_loss=kl(tau=float('nan'))),
     r'RoIAmplifierLoss\.cls_loss\.tau'),
    (dict(cls_loss=kl(weight=-0.5)),
     r'RoIAmplifierLoss\.cls_loss\.loss_weight'),
    (dict(reg_loss=l1(float('nan'))),
     r'RoIAmplifierLoss\.reg_loss\.loss_weight'),
    (dict(loss_weight='1'), 'loss_weight'),
    (dict(loss_weight=True), 'loss_weight'),
])
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build(**kwargs)
