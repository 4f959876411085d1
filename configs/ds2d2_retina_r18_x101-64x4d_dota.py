# Stage 3 of DS2D2 on DOTA v1.0 (horizontal boxes) with the strong teacher:
# RetinaNet R-18 from RetinaNet X-101 64x4d. ./ds2d2_retina_r18_r101_dota.py
# (student, the release's DOTA weights) with the teacher of
# ./retinanet_x101-64x4d_fpn_2x_dota.py and its stage-2 amplifier.
#   python tools/train.py configs/ds2d2_retina_r18_x101-64x4d_dota.py
_base_ = './ds2d2_retina_r18_r101_dota.py'

import mmengine  # noqa: E402  (filtered out of the config)

model = dict(
    teacher=dict(
        mmengine.Config.fromfile(
            '{{fileDirname}}/retinanet_x101-64x4d_fpn_2x_dota.py').model,
        _delete_=True),
    teacher_ckpt='work_dirs/retinanet_x101-64x4d_fpn_2x_dota/epoch_24.pth',
    amplifier=dict(
        mmengine.Config.fromfile(
            '{{fileDirname}}/'
            'ds2d2_amplifier_retinanet_x101-64x4d_fpn_2x_dota.py').model,
        _delete_=True,
        **_base_.ds2d2_amplifier),
    amplifier_ckpt='work_dirs/'
    'ds2d2_amplifier_retinanet_x101-64x4d_fpn_2x_dota/epoch_24.pth')
