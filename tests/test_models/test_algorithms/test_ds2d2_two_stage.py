"""DS2D2Distill with Faster R-CNN (configs/ds2d2_faster-rcnn_r18_r101_dior.py,
made tiny): every term is computed on the student's sampled RoIs, gradients
reach only the student, and identical student and teacher give zero."""
import os.path as osp

import pytest
import torch
from mmdet.testing import demo_mm_inputs
from mmrazor.registry import MODELS

from synthetic.tiny import tiny_config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
CONFIG = osp.join(REPO, 'configs', 'ds2d2_faster-rcnn_r18_r101_dior.py')
TERMS = ('distill.loss_low', 'distill.loss_high', 'distill.loss_amp_full',
         'distill.loss_amp_high')


def build(tmp_path, same_width=False):
    cfg = tiny_config(CONFIG, str(tmp_path), str(tmp_path),
                      classes=('vehicle', 'ship', 'storagetank'),
                      student_width=16 if same_width else 8)
    cfg.model.teacher_ckpt = cfg.model.amplifier_ckpt = None
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def batch(model):
    return model.data_preprocessor(demo_mm_inputs(
        batch_size=2, image_shapes=(3, 64, 64), num_items=[3, 1],
        num_classes=3), True)


def test_terms_and_gradient_routing(tmp_path):
    model = build(tmp_path)
    model.train()
    losses = model(**batch(model), mode='loss')
    assert all(torch.isfinite(losses[k]) and losses[k] > 0 for k in TERMS)
    sum(losses[k] for k in TERMS).backward()
    student = model.student
    assert student.neck.fpn_convs[0].conv.weight.grad.abs().sum() > 0
    assert student.backbone.conv1.weight.grad.abs().sum() > 0
    adapter = model.distiller.connectors['student_bands'].adapters[0]
    assert adapter.weight.grad.abs().sum() > 0
    for part in (model.teacher, model.amplifier):
        assert all(p.grad is None and not p.requires_grad
                   for p in part.parameters())
        assert not any(m.training for m in part.modules())
    # RoI heads are bound, not copied: the distiller holds only the adapter
    assert [n for n, _ in model.distiller.named_parameters()] == \
        ['connectors.student_bands.adapters.0.weight']


def test_identical_student_and_teacher_give_zero_terms(tmp_path):
    model = build(tmp_path, same_width=True)
    model.student.load_state_dict(model.teacher.state_dict())
    # stage 3 keeps only the amplifier's RoI head
    assert [name for name, _ in model.amplifier.named_children()] == \
        ['roi_head']
    model.amplifier.load_state_dict(
        {k: v for k, v in model.teacher.state_dict().items()
         if k.startswith('roi_head.')})
    adapter = model.distiller.connectors['student_bands'].adapters[0]
    with torch.no_grad():
        adapter.weight.copy_(torch.eye(16)[:, :, None, None])
    model.train()
    # the teacher's BN layers use running statistics (eval); so must the
    # student's for the features to be identical
    for module in model.student.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()
    losses = model(**batch(model), mode='loss')
    assert losses['student.loss_cls'] > 0  # the student still trains
    for key in TERMS:
        assert losses[key].item() == pytest.approx(0, abs=1e-6), key
