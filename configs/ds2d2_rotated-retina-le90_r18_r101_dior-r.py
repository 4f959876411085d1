# Stage 3 of DS2D2 with oriented boxes (MMRotate, le90, rbox): distil rotated
# RetinaNet R-18 (student) from rotated RetinaNet R-101 (teacher) on DIOR-R.
#   python tools/train.py configs/ds2d2_rotated-retina-le90_r18_r101_dior-r.py
# Needs the checkpoints of stage 1 and 2; other paths:
#   --cfg-options model.teacher_ckpt=PATH model.amplifier_ckpt=PATH
# The distiller is ./_base_/ds2d2_rotated-dense-head.py: that of
# ./ds2d2_retina_r18_r101_dior.py (FPN and AnchorHead.get_targets recorders,
# adapter + DWT connectors, DISW spectral loss, the two dense amplifier
# losses); for oriented boxes DISW takes the rotated ground-truth boxes and
# the amplifiers compare rotated boxes with MMRotate's Gaussian KLD instead
# of GIoU.
_base_ = [
    './rotated-retinanet-le90_r18_fpn_2x_dior-r.py',  # student, data, schedule
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
        '{{fileDirname}}/rotated-retinanet-le90_r101_fpn_2x_dior-r.py').model,
    teacher_ckpt='work_dirs/rotated-retinanet-le90_r101_fpn_2x_dior-r/'
    'epoch_24.pth',
    amplifier=dict(
        mmengine.Config.fromfile(
            '{{fileDirname}}/'
            'ds2d2_amplifier_rotated-retinanet-le90_r101_fpn_2x_dior-r.py'
        ).model, **_base_.ds2d2_amplifier),
    amplifier_ckpt='work_dirs/'
    'ds2d2_amplifier_rotated-retinanet-le90_r101_fpn_2x_dior-r/epoch_24.pth',
    distiller=dict(
        _base_.ds2d2_distiller,
        # The release has no oriented recipe: these are its horizontal DIOR
        # weights (method doc, section 4), carried over untuned.
        distill_losses=dict(
            loss_spectral=dict(
                losses.loss_spectral, low_weight=1e-5, high_weight=1e-5),
            loss_amp_full=dict(losses.loss_amp_full, loss_weight=1.0),
            loss_amp_high=dict(losses.loss_amp_high, loss_weight=1.0))))
