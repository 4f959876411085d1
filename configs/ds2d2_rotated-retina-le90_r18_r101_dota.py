# Stage 3 of DS2D2 with oriented boxes on DOTA v1.0: rotated RetinaNet R-18
# from rotated RetinaNet R-101 (MMRotate, le90, rbox). The recipe of
# ./ds2d2_rotated-retina-le90_r18_r101_dior-r.py on DOTA's student, teacher
# and amplifier, with DOTA's weights.
#   python tools/train.py configs/ds2d2_rotated-retina-le90_r18_r101_dota.py
_base_ = [
    './rotated-retinanet-le90_r18_fpn_2x_dota.py',  # student, data, schedule
    './_base_/ds2d2_rotated-dense-head.py',
]

import mmengine  # noqa: E402  (filtered out of the config)

losses = _base_.ds2d2_losses
model = dict(
    _delete_=True,
    _scope_='mmrazor',
    type='DS2D2Distill',
    architecture=_base_.model,
    teacher=mmengine.Config.fromfile(
        '{{fileDirname}}/rotated-retinanet-le90_r101_fpn_2x_dota.py').model,
    teacher_ckpt='work_dirs/rotated-retinanet-le90_r101_fpn_2x_dota/'
    'epoch_24.pth',
    amplifier=dict(
        mmengine.Config.fromfile(
            '{{fileDirname}}/'
            'ds2d2_amplifier_rotated-retinanet-le90_r101_fpn_2x_dota.py'
        ).model, **_base_.ds2d2_amplifier),
    amplifier_ckpt='work_dirs/'
    'ds2d2_amplifier_rotated-retinanet-le90_r101_fpn_2x_dota/epoch_24.pth',
    distiller=dict(
        _base_.ds2d2_distiller,
        # The release has no oriented recipe: these are its horizontal DOTA
        # weights (method doc, section 4), carried over untuned.
        distill_losses=dict(
            loss_spectral=dict(
                losses.loss_spectral, low_weight=7e-5, high_weight=5e-5),
            loss_amp_full=dict(losses.loss_amp_full, loss_weight=0.7),
            loss_amp_high=dict(losses.loss_amp_high, loss_weight=0.5))))
