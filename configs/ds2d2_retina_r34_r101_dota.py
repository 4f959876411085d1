# Stage 3 of DS2D2 on DOTA v1.0 (horizontal boxes): RetinaNet R-34 from
# RetinaNet R-101. ./ds2d2_retina_r18_r101_dota.py (teacher, amplifier, the
# release's DOTA weights) with the student of ./retinanet_r34_fpn_2x_dota.py.
#   python tools/train.py configs/ds2d2_retina_r34_r101_dota.py
_base_ = './ds2d2_retina_r18_r101_dota.py'

import mmengine  # noqa: E402  (filtered out of the config)

model = dict(
    architecture=dict(
        mmengine.Config.fromfile(
            '{{fileDirname}}/retinanet_r34_fpn_2x_dota.py').model,
        _delete_=True))
