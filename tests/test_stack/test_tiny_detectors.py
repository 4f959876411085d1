"""A tiny mmdet RetinaNet and a tiny mmrotate rotated RetinaNet, built from
the upstream configs, train one step and predict on the CPU."""
import pytest
import torch
from mmengine.optim import build_optim_wrapper

from ..conftest import (requires_mmrotate, shrink_dense_detector,
                        upstream_config)

CASES = {
    'mmdet-retinanet': (
        'mmdet', 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py', 4),
    'mmrotate-rotated-retinanet': (
        'mmrotate', 'mmrotate::rotated_retinanet/'
        'rotated-retinanet-rbox-le90_r50_fpn_1x_dota.py', 5),
}


def build(scope):
    if scope == 'mmdet':
        from mmdet.registry import MODELS
        from mmdet.testing import demo_mm_inputs
        from mmdet.utils import register_all_modules
        kwargs = {}
    else:
        from mmrotate.registry import MODELS
        from mmrotate.testing import demo_mm_inputs
        from mmrotate.utils import register_all_modules
        kwargs = dict(use_box_type=True)
    register_all_modules()
    return MODELS, demo_mm_inputs, kwargs


@pytest.mark.parametrize('case', [
    pytest.param(c, marks=[requires_mmrotate] if c.startswith('mmrotate')
                 else []) for c in sorted(CASES)])
def test_train_one_step_and_predict(case):
    scope, base, box_dim = CASES[case]
    MODELS, demo_mm_inputs, kwargs = build(scope)
    torch.manual_seed(0)
    cfg = upstream_config(base)
    model = MODELS.build(shrink_dense_detector(cfg.model, num_classes=3))
    model.init_weights()
    data = demo_mm_inputs(batch_size=2, image_shapes=(3, 64, 64),
                          num_items=[3, 2], num_classes=3, **kwargs)

    optim = build_optim_wrapper(model, dict(
        optimizer=dict(type='SGD', lr=0.01, momentum=0.9)))
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    model.train()
    log_vars = model.train_step(data, optim)
    assert {'loss', 'loss_cls', 'loss_bbox'} <= set(log_vars)
    assert all(torch.isfinite(v) and v > 0 for v in log_vars.values())
    changed = [k for k, v in model.named_parameters()
               if not torch.equal(v, before[k])]
    # The SGD step reaches the backbone, the neck and the head.
    for part in ('backbone.', 'neck.', 'bbox_head.'):
        assert any(k.startswith(part) for k in changed), part

    model.eval()
    model.bbox_head.test_cfg.score_thr = 0.0  # keep predictions to check
    results = model.test_step(data)
    assert len(results) == 2
    for result in results:
        pred = result.pred_instances
        bboxes = pred.bboxes.tensor if hasattr(pred.bboxes, 'tensor') \
            else pred.bboxes
        assert bboxes.ndim == 2 and bboxes.shape[1] == box_dim
        assert bboxes.shape[0] == pred.scores.shape[0] > 0
        assert ((pred.scores >= 0) & (pred.scores <= 1)).all()
        assert ((pred.labels >= 0) & (pred.labels < 3)).all()
