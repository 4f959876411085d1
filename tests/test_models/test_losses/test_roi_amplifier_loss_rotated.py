"""RoIAmplifierLoss running the RoI head of a tiny MMRotate Oriented R-CNN
(rotated RoIs, rotated deltas, le90), on the RoIs the student's RoI head
sampled: the reg term compares the DECODED rotated boxes with MMRotate's
Gaussian KLD (against a hand decode + hand KLD per RoI, and against GDLoss
on the coder's boxes), class-agnostic and class-specific; zero at equality
and for angle deltas a full period apart; finite on the extreme boxes an
untrained head decodes; gradients to the student only."""
import math

import numpy as np
import pytest
import torch
from mmdet.structures.bbox import bbox2roi, get_box_tensor
from mmrazor.models.task_modules import MethodInputsRecorder
from mmrazor.registry import MODELS

from ds2d2_mmrazor.models.losses import Amplifier, roi_amplifier_loss

from ...conftest import (MMROTATE_MISSING, shrink_dense_detector,
                         upstream_config)

pytest.importorskip('mmrotate', reason=MMROTATE_MISSING)

from mmrotate.registry import MODELS as ROT_MODELS  # noqa: E402
from mmrotate.testing import demo_mm_inputs  # noqa: E402
from mmrotate.utils import register_all_modules  # noqa: E402

from .test_dense_amplifier_loss_rotated import kld_loss  # noqa: E402

ORIENTED_RCNN = 'mmrotate::oriented_rcnn/oriented-rcnn-le90_r50_fpn_1x_dota.py'
BBOX_LOSS = 'mmdet.models.roi_heads.StandardRoIHead.bbox_loss'
NUM_CLASSES = 3
# The box distance of ../../../configs/_base_/ds2d2_rotated-roi-head.py.
KLD = dict(type='mmrotate.GDLoss', loss_type='kld', fun='log1p', tau=1.0,
           sqrt=False, reduction='mean', loss_weight=1.0)
NO_CLS = dict(type='mmrazor.KLDivergence', tau=3.0, reduction='batchmean',
              loss_weight=0.0)


def build_detector(seed, **bbox_head):
    register_all_modules(init_default_scope=False)
    cfg = shrink_dense_detector(upstream_config(ORIENTED_RCNN).model,
                                num_classes=NUM_CLASSES)
    cfg.roi_head.bbox_head.update(bbox_head)
    cfg['_scope_'] = 'mmrotate'
    torch.manual_seed(seed)
    model = ROT_MODELS.build(cfg)
    model.init_weights()
    return model


def frozen_teacher(seed, **bbox_head):
    """A teacher with livelier RoI head outputs than the prior init, frozen
    as DS2D2Distill freezes it."""
    model = build_detector(seed, **bbox_head)
    with torch.no_grad():
        for p in model.roi_head.bbox_head.parameters():
            p.normal_(0, 0.1)
    model.eval()
    model.requires_grad_(False)
    return model


@pytest.fixture(scope='module')
def setup():
    teacher = frozen_teacher(0)
    student = build_detector(1)
    student.train()
    data = demo_mm_inputs(batch_size=2, image_shapes=(3, 64, 64),
                          num_items=[3, 1], num_classes=NUM_CLASSES,
                          use_box_type=True)
    data = student.data_preprocessor(data, True)
    recorder = MethodInputsRecorder(BBOX_LOSS)
    recorder.initialize()
    with recorder:
        student.loss(data['inputs'], data['data_samples'])
    sampling_results = recorder.get_record_data(record_idx=0, data_idx=1)
    assert len(sampling_results) == 2
    with torch.no_grad():
        t_feats = teacher.extract_feat(data['inputs'])
        s_feats = student.extract_feat(data['inputs'])
    return dict(model=teacher, t_feats=t_feats, s_feats=s_feats,
                sampling_results=sampling_results,
                rois=bbox2roi([r.priors for r in sampling_results]))


def build(**kwargs):
    kwargs.setdefault('reg_loss', KLD)
    return MODELS.build(dict(type='RoIAmplifierLoss', _scope_='mmrazor',
                             amplifier='teacher', **kwargs))


def amplifier(model) -> Amplifier:
    """The frozen roi_head, as DS2D2Distiller passes it (checked)."""
    build().check_head(model)
    return Amplifier(model.roi_head)


def run(loss, setup, s_feats=None, t_feats=None, model=None):
    return loss(setup['s_feats'] if s_feats is None else s_feats,
                setup['t_feats'] if t_feats is None else t_feats,
                setup['sampling_results'],
                amplifier(setup['model'] if model is None else model))


def head_outputs(model, setup):
    """The RoI head's float32 logits and deltas on student and teacher
    features, for the sampled RoIs: z_s, d_s, z_t, d_t."""
    with torch.no_grad():
        s = model.roi_head._bbox_forward(setup['s_feats'], setup['rois'])
        t = model.roi_head._bbox_forward(setup['t_feats'], setup['rois'])
    return s['cls_score'], s['bbox_pred'], t['cls_score'], t['bbox_pred']


def le90(angle: float) -> float:
    """An angle in [-pi/2, pi/2): a rectangle turned by pi is itself."""
    return (angle + math.pi / 2) % math.pi - math.pi / 2


def hand_decode(roi, delta, coder) -> np.ndarray:
    """MMRotate's DeltaXYWHTRBBoxCoder.decode of one RoI as Oriented R-CNN
    configures it (le90, proj_xy, edge_swap, no norm_factor), written out:
    the centre moves in the RoI's own frame, w/h scale by exp(clipped
    delta), the angle adds up modulo pi, the longer side becomes w."""
    px, py, pw, ph, pt = roi
    dx, dy, dw, dh, dt = (d * s + m for d, s, m in zip(delta, coder.stds,
                                                       coder.means))
    clip = abs(math.log(16 / 1000))  # the coder's default wh_ratio_clip
    w = pw * math.exp(min(max(dw, -clip), clip))
    h = ph * math.exp(min(max(dh, -clip), clip))
    cx = px + dx * pw * math.cos(pt) - dy * ph * math.sin(pt)
    cy = py + dx * pw * math.sin(pt) + dy * ph * math.cos(pt)
    angle = le90(pt + dt)
    if w > h:
        return np.array([cx, cy, w, h, angle])
    return np.array([cx, cy, h, w, le90(angle + math.pi / 2)])


def hand_reg_term(model, setup) -> float:
    """Σ_r w_r KLD(b_s,r, b_t,r) / Σ_r w_r with b the boxes of the deltas of
    c*_r (the teacher's most probable foreground class, w_r its
    probability), decoded by hand in float64, RoI by RoI."""
    coder = model.roi_head.bbox_head.bbox_coder
    assert (coder.angle_version, coder.proj_xy, coder.edge_swap,
            coder.norm_factor) == ('le90', True, True, None)
    _, d_s, z_t, d_t = (x.double() for x in head_outputs(model, setup))
    agnostic = d_s.shape[1] == 5
    numerator = weights = 0.0
    for r, roi in enumerate(setup['rois'][:, 1:].double().tolist()):
        probs = torch.softmax(z_t[r], dim=0)[:NUM_CLASSES]
        best = int(probs.argmax())
        cols = slice(0, 5) if agnostic else slice(5 * best, 5 * best + 5)
        b_s = hand_decode(roi, d_s[r, cols].tolist(), coder)
        b_t = hand_decode(roi, d_t[r, cols].tolist(), coder)
        numerator += probs[best].item() * kld_loss(b_s, b_t)
        weights += probs[best].item()
    return numerator / weights


def decoder(model, setup):
    """The head's own decoding of [R, 5] deltas against the sampled RoIs."""
    coder = model.roi_head.bbox_head.bbox_coder
    return lambda deltas: get_box_tensor(coder.decode(setup['rois'][:, 1:],
                                                      deltas))


def no_cls(*args, **kwargs) -> torch.Tensor:
    return torch.zeros(())


def test_rois_are_rotated_and_the_reg_term_is_the_kld_of_decoded_boxes(
        setup):
    assert setup['rois'].shape[1] == 6  # batch index + (cx, cy, w, h, a)
    model = setup['model']
    assert model.roi_head.bbox_head.predict_box_type == 'rbox'
    assert head_outputs(model, setup)[1].shape[1] == 5  # class-agnostic
    value = run(build(cls_loss=NO_CLS), setup)
    expected = hand_reg_term(model, setup)
    assert expected > 0
    assert value.dtype == torch.float32
    assert value.item() == pytest.approx(expected, rel=1e-4)


@pytest.fixture(scope='module')
def class_specific():
    """A teacher regressing one delta set per class."""
    return frozen_teacher(2, reg_class_agnostic=False)


def test_class_specific_head_decodes_the_top_class_deltas(setup,
                                                          class_specific):
    model = class_specific
    value = run(build(cls_loss=NO_CLS), setup, model=model)
    _, d_s, z_t, d_t = head_outputs(model, setup)
    num_rois = d_s.shape[0]
    assert d_s.shape == (num_rois, 5 * NUM_CLASSES)
    expected = hand_reg_term(model, setup)
    assert expected > 0
    assert value.item() == pytest.approx(expected, rel=1e-4)
    # the same as MMRotate's GDLoss on the coder's boxes of class c*,
    # weighted by w, averaged over sum(w)
    weight, best = torch.softmax(z_t, dim=1)[:, :NUM_CLASSES].max(dim=1)
    assert len(set(best.tolist())) > 1  # not all RoIs pick one class
    decode = decoder(model, setup)

    def boxes(deltas):
        top = deltas.reshape(num_rois, NUM_CLASSES, 5)[
            torch.arange(num_rois), best]
        return decode(top).double()

    direct = MODELS.build(KLD)(boxes(d_s), boxes(d_t),
                               weight=weight.double(),
                               avg_factor=weight.double().sum())
    torch.testing.assert_close(value.double(), direct, rtol=1e-6, atol=0)


def test_angle_deltas_a_full_period_apart_decode_to_the_same_box(setup):
    model = setup['model']
    coder = model.roi_head.bbox_head.bbox_coder
    # angle = le90(RoI angle + std * delta): delta + pi / std turns the box
    # by pi, the same rectangle (no norm_factor in Oriented R-CNN)
    assert coder.norm_factor is None and coder.means[4] == 0
    period = math.pi / coder.stds[4]
    turn = torch.tensor([0., 0., 0., 0., 1.])
    _, d_s, z_t, d_t = head_outputs(model, setup)
    decode = decoder(model, setup)
    kld = MODELS.build(KLD)

    def reg(student, teacher=d_t, decode=decode, reg_loss=kld):
        return roi_amplifier_loss(z_t, student, z_t, teacher, 5, no_cls,
                                  reg_loss, decode).item()

    a, b = decode(d_t), decode(d_t + period * turn)
    torch.testing.assert_close(b, a, rtol=0, atol=1e-4)
    assert abs(reg(d_t + period * turn)) < 1e-9
    assert reg(d_s + period * turn) == pytest.approx(reg(d_s), rel=1e-5)
    assert reg(d_s, teacher=d_t - period * turn) == pytest.approx(
        reg(d_s), rel=1e-5)
    # half a period is a quarter turn: another box (w > h), a distance
    assert reg(d_t + period / 2 * turn) > 1e-2
    # the release's delta L1 would charge the full period (mean of 5 deltas)
    l1 = MODELS.build(dict(type='mmdet.L1Loss', loss_weight=1.0))
    assert reg(d_t + period * turn, decode=None, reg_loss=l1) == \
        pytest.approx(period / 5, rel=1e-5)


def test_zero_when_equal_and_gradient_to_the_student_only(setup):
    loss, model = build(), setup['model']
    same = tuple(f.clone() for f in setup['t_feats'])
    assert abs(run(loss, setup, s_feats=same).item()) < 1e-6
    s_feats = tuple(f.detach().clone().requires_grad_(True)
                    for f in setup['s_feats'])
    t_feats = tuple(f.detach().clone().requires_grad_(True)
                    for f in setup['t_feats'])
    value = run(loss, setup, s_feats=s_feats, t_feats=t_feats)
    assert torch.isfinite(value) and value.item() > 0
    value.backward()
    assert sum(f.grad.abs().sum() for f in s_feats if f.grad is not None) > 0
    assert all(torch.isfinite(f.grad).all() for f in s_feats
               if f.grad is not None)
    assert all(f.grad is None for f in t_feats)
    assert all(p.grad is None for p in model.parameters())
    # the reg term alone reaches the student too
    s_feats = tuple(f.detach().clone().requires_grad_(True)
                    for f in setup['s_feats'])
    run(build(cls_loss=NO_CLS), setup, s_feats=s_feats).backward()
    assert sum(f.grad.abs().sum() for f in s_feats if f.grad is not None) > 0


def test_extreme_deltas_stay_finite(setup):
    # a RoI head whose regression saturates the coder's w/h clip decodes
    # boxes of aspect ratio > 1000: the loss (float64 distance) and its
    # gradient stay finite
    model = setup['model']
    head = model.roi_head.bbox_head
    saved = {k: v.clone() for k, v in head.state_dict().items()}
    try:
        with torch.no_grad():
            head.fc_reg.weight.normal_(0, 50.0)
        s_feats = tuple(f.detach().clone().requires_grad_(True)
                        for f in setup['s_feats'])
        value = run(build(), setup, s_feats=s_feats)
        value.backward()
        assert torch.isfinite(value) and value.item() > 0
        assert all(torch.isfinite(f.grad).all() for f in s_feats
                   if f.grad is not None)
        _, d_s, _, d_t = head_outputs(model, setup)
        boxes = decoder(model, setup)(d_s)
        ratio = boxes[:, 2] / boxes[:, 3]  # w >= h (edge_swap)
        assert ratio.max() > 1000
        gd = MODELS.build(KLD)
        assert torch.isfinite(gd(boxes.double(),
                                 decoder(model, setup)(d_t).double(),
                                 reduction_override='none')).all()
    finally:
        head.load_state_dict(saved)


def test_other_box_types_are_rejected(setup, monkeypatch):
    head = setup['model'].roi_head.bbox_head
    monkeypatch.setattr(head, 'predict_box_type', 'qbox')
    with pytest.raises(TypeError,
                       match=r"Shared2FCBBoxHead predicts 'qbox' boxes "
                       r"\(predict_box_type\); RoIAmplifierLoss compares "
                       r"\('hbox', 'rbox'\) boxes"):
        build().check_head(setup['model'])


def test_a_rotated_head_refuses_a_delta_reg_loss(setup):
    """RoIAmplifierLoss's default reg_loss (L1) is not rotation-aware."""
    loss = MODELS.build(dict(type='RoIAmplifierLoss', _scope_='mmrazor',
                             amplifier='teacher'))
    with pytest.raises(TypeError, match=r'Shared2FCBBoxHead predicts rotated '
                       r'boxes, .* L1Loss is not rotation-aware; use a '
                       r'Gaussian distance'):
        loss.check_head(setup['model'])


def test_a_coder_not_decoding_rotated_boxes_is_reported(setup,
                                                         monkeypatch):
    coder = setup['model'].roi_head.bbox_head.bbox_coder
    monkeypatch.setattr(coder, 'decode',
                        lambda priors, deltas: deltas[:, :4])
    with pytest.raises(ValueError,
                       match=r'Shared2FCBBoxHead predicts rotated boxes but '
                       r'its DeltaXYWHTRBBoxCoder decodes 4 values a box, '
                       r'expected 5'):
        run(build(), setup)
