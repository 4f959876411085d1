# Stage 3 of DS2D2 for Faster R-CNN on DIOR: R-50 from R-101.
# ./ds2d2_faster-rcnn_r18_r101_dior.py (teacher, amplifier, the release's
# DIOR weights) with the student of ./faster-rcnn_r50_fpn_2x_dior.py.
#   python tools/train.py configs/ds2d2_faster-rcnn_r50_r101_dior.py
_base_ = './ds2d2_faster-rcnn_r18_r101_dior.py'

import mmengine  # noqa: E402  (filtered out of the config)

model = dict(
    architecture=dict(
        mmengine.Config.fromfile(
            '{{fileDirname}}/faster-rcnn_r50_fpn_2x_dior.py').model,
        _delete_=True))
