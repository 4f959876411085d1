"""The DS2D2 RetinaNet config with tiny student, teacher and amplifier."""
import copy
import os.path as osp

import pytest
from mmdet.utils import register_all_modules
from mmengine.config import Config

import ds2d2_mmrazor  # noqa: F401  (registers the modules)
from ds2d2_mmrazor.models.algorithms import DS2D2Distill
from mmrazor.registry import MODELS

CONFIG = osp.join(osp.dirname(__file__), '..', '..', '..', 'configs',
                  'ds2d2_retina_r18_r101_dior.py')


def tiny(model: dict, base: int) -> dict:
    """ResNet-18 with ``base`` channels, a 16-channel FPN, a one-conv head
    for 3 classes, no pretrained weights (other settings as configured:
    frozen_stages=1, norm_eval=True)."""
    model.backbone.update(depth=18, base_channels=base, init_cfg=None)
    model.neck.update(in_channels=[base, 2 * base, 4 * base, 8 * base],
                      out_channels=16)
    model.bbox_head.update(num_classes=3, in_channels=16, feat_channels=16,
                           stacked_convs=1)
    return model


@pytest.fixture(scope='module')
def algo_cfg():
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(CONFIG).model
    tiny(cfg.architecture, 8)
    tiny(cfg.teacher, 16)
    tiny(cfg.amplifier.detector, 16)
    cfg.teacher_ckpt = None
    cfg.amplifier_ckpt = None
    cfg.distiller.connectors.student_bands.update(in_channels=16,
                                                  out_channels=16)
    return cfg


def build(cfg, **changes) -> DS2D2Distill:
    cfg = copy.deepcopy(cfg)
    cfg.update(changes)
    return MODELS.build(cfg)


