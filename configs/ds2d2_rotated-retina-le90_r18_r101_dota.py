# Stage 3 of DS2D2 with oriented boxes on DOTA v1.0: rotated RetinaNet R-18
# from rotated RetinaNet R-101 (MMRotate, le90, rbox). Everything but the
# models and the weights is ./ds2d2_rotated-retina-le90_r18_r101_dior-r.py.
#   python tools/train.py configs/ds2d2_rotated-retina-le90_r18_r101_dota.py
_base_ = './rotated-retinanet-le90_r18_fpn_2x_dota.py'

import mmengine  # noqa: E402  (filtered out of the config)

model = mmengine.Config.fromfile(
    '{{fileDirname}}/ds2d2_rotated-retina-le90_r18_r101_dior-r.py').model
model.update(
    _delete_=True,
    architecture=_base_.model,
    teacher=mmengine.Config.fromfile(
        '{{fileDirname}}/rotated-retinanet-le90_r101_fpn_2x_dota.py').model,
    teacher_ckpt='work_dirs/rotated-retinanet-le90_r101_fpn_2x_dota/'
    'epoch_24.pth',
    amplifier=dict(
        mmengine.Config.fromfile(
            '{{fileDirname}}/'
            'ds2d2_amplifier_rotated-retinanet-le90_r101_fpn_2x_dota.py'
        ).model,
        teacher_ckpt=None),
    amplifier_ckpt='work_dirs/'
    'ds2d2_amplifier_rotated-retinanet-le90_r101_fpn_2x_dota/epoch_24.pth')
# The release has no oriented recipe: these are its horizontal DOTA weights
# (method doc, section 4: low 7e-5, high 5e-5, full amplifier 0.7, HF
# amplifier 0.5), carried over untuned.
model.distiller.distill_losses.loss_spectral.update(
    low_weight=7e-5, high_weight=5e-5)
model.distiller.distill_losses.loss_amp_full.loss_weight = 0.7
model.distiller.distill_losses.loss_amp_high.loss_weight = 0.5
