# Stage 3 of DS2D2 on DOTA v1.0 (horizontal boxes): RetinaNet R-18 from
# RetinaNet R-101, with the release's DOTA weights (method doc, section 4).
# The recipe of ./ds2d2_retina_r18_r101_dior.py on DOTA's student, teacher
# and amplifier.
#   python tools/train.py configs/ds2d2_retina_r18_r101_dota.py
_base_ = [
    './retinanet_r18_fpn_2x_dota.py',  # the student, its data and schedule
    './_base_/ds2d2_dense-head.py',
]

import mmengine  # noqa: E402  (filtered out of the config)

losses = _base_.ds2d2_losses
model = dict(
    _delete_=True,
    _scope_='mmrazor',
    type='DS2D2Distill',
    architecture=_base_.model,
    teacher=mmengine.Config.fromfile(
        '{{fileDirname}}/retinanet_r101_fpn_2x_dota.py').model,
    teacher_ckpt='work_dirs/retinanet_r101_fpn_2x_dota/epoch_24.pth',
    amplifier=dict(
        mmengine.Config.fromfile(
            '{{fileDirname}}/ds2d2_amplifier_retinanet_r101_fpn_2x_dota.py'
        ).model, **_base_.ds2d2_amplifier),
    amplifier_ckpt='work_dirs/ds2d2_amplifier_retinanet_r101_fpn_2x_dota/'
    'epoch_24.pth',
    distiller=dict(
        _base_.ds2d2_distiller,
        # the release's DOTA weights
        distill_losses=dict(
            loss_spectral=dict(
                losses.loss_spectral, low_weight=7e-5, high_weight=5e-5),
            loss_amp_full=dict(losses.loss_amp_full, loss_weight=0.7),
            loss_amp_high=dict(losses.loss_amp_high, loss_weight=0.5))))
