"""RoIAmplifierLoss running the RoI head of a tiny MMRotate Oriented R-CNN
(rotated RoIs, class-agnostic rotated deltas), on the RoIs the student's RoI
head sampled: zero at equality, its reg term against a per-RoI loop,
gradients to the student only."""
import pytest
import torch
from mmdet.structures.bbox import bbox2roi
from mmrazor.models.task_modules import MethodInputsRecorder
from mmrazor.registry import MODELS

from ds2d2_mmrazor.models.losses import Amplifier

from ...conftest import (MMROTATE_MISSING, shrink_dense_detector,
                         upstream_config)

pytest.importorskip('mmrotate', reason=MMROTATE_MISSING)

from mmrotate.registry import MODELS as ROT_MODELS  # noqa: E402
from mmrotate.testing import demo_mm_inputs  # noqa: E402
from mmrotate.utils import register_all_modules  # noqa: E402

ORIENTED_RCNN = 'mmrotate::oriented_rcnn/oriented-rcnn-le90_r50_fpn_1x_dota.py'
BBOX_LOSS = 'mmdet.models.roi_heads.StandardRoIHead.bbox_loss'
NUM_CLASSES = 3


def build_detector(seed):
    register_all_modules(init_default_scope=False)
    cfg = shrink_dense_detector(upstream_config(ORIENTED_RCNN).model,
                                num_classes=NUM_CLASSES)
    cfg['_scope_'] = 'mmrotate'
    torch.manual_seed(seed)
    model = ROT_MODELS.build(cfg)
    model.init_weights()
    return model


@pytest.fixture(scope='module')
def setup():
    teacher = build_detector(0)
    with torch.no_grad():
        for p in teacher.roi_head.bbox_head.parameters():
            p.normal_(0, 0.1)
    teacher.eval()
    teacher.requires_grad_(False)
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
                sampling_results=sampling_results)


def build(**kwargs):
    return MODELS.build(dict(type='RoIAmplifierLoss', _scope_='mmrazor',
                             amplifier='teacher', **kwargs))


def amplifier(setup) -> Amplifier:
    """The frozen roi_head, as DS2D2Distiller passes it (checked)."""
    build().check_head(setup['model'])
    return Amplifier(setup['model'].roi_head)


def test_rois_are_rotated_and_the_reg_term_matches_a_loop(setup):
    rois = bbox2roi([r.priors for r in setup['sampling_results']])
    assert rois.shape[1] == 6  # batch index + (cx, cy, w, h, theta)
    no_cls = dict(type='mmrazor.KLDivergence', tau=3.0,
                  reduction='batchmean', loss_weight=0.0)
    value = build(cls_loss=no_cls)(setup['s_feats'], setup['t_feats'],
                                   setup['sampling_results'],
                                   amplifier(setup))
    roi_head = setup['model'].roi_head
    with torch.no_grad():
        s = roi_head._bbox_forward(setup['s_feats'], rois)
        t = roi_head._bbox_forward(setup['t_feats'], rois)
    d_s, d_t = s['bbox_pred'].double(), t['bbox_pred'].double()
    z_t = t['cls_score'].double()
    assert d_s.shape[1] == 5  # class-agnostic rotated deltas
    numerator, weights = 0.0, 0.0
    for r in range(len(rois)):
        w = torch.softmax(z_t[r], dim=0)[:NUM_CLASSES].max()
        numerator += w * (d_s[r] - d_t[r]).abs().sum()
        weights += w
    expected = numerator / (5 * weights)
    assert expected.item() > 0
    torch.testing.assert_close(value.double(), expected, rtol=1e-5,
                               atol=1e-8)


def test_zero_when_equal_and_gradient_to_the_student_only(setup):
    loss, head = build(), amplifier(setup)
    same = tuple(f.clone() for f in setup['t_feats'])
    assert abs(loss(same, setup['t_feats'], setup['sampling_results'],
                    head).item()) < 1e-6
    s_feats = tuple(f.detach().clone().requires_grad_(True)
                    for f in setup['s_feats'])
    t_feats = tuple(f.detach().clone().requires_grad_(True)
                    for f in setup['t_feats'])
    value = loss(s_feats, t_feats, setup['sampling_results'], head)
    assert torch.isfinite(value) and value.item() > 0
    value.backward()
    assert sum(f.grad.abs().sum() for f in s_feats if f.grad is not None) > 0
    assert all(f.grad is None for f in t_feats)
    assert all(p.grad is None for p in setup['model'].parameters())
