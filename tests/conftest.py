"""Shared helpers: tiny detectors built from the upstream configs."""
import os.path as osp
import tempfile

import pytest
from mmengine.config import Config


def upstream_config(base: str) -> Config:
    """Load an upstream config (e.g. 'mmdet::retinanet/...py') by inheriting
    it, exactly as a user's config does."""
    with tempfile.TemporaryDirectory() as tmp:
        path = osp.join(tmp, 'cfg.py')
        with open(path, 'w') as f:
            f.write(f'_base_ = {base!r}\n')
        return Config.fromfile(path)


def shrink_dense_detector(model: dict, num_classes: int = 3,
                          channels: int = 16) -> dict:
    """Make a ResNet-FPN dense detector tiny: ResNet-18 with 8 base
    channels, a narrow FPN and a one-conv head, no pretrained weights."""
    model.backbone.update(
        depth=18, base_channels=8, frozen_stages=-1, norm_eval=False,
        init_cfg=None)
    model.neck.update(in_channels=[8, 16, 32, 64], out_channels=channels)
    model.bbox_head.update(
        num_classes=num_classes, in_channels=channels,
        feat_channels=channels, stacked_convs=1)
    return model


@pytest.fixture
def tmp_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path
