# Stage 3 of DS2D2 on DOTA v1.0 (horizontal boxes): Faster R-CNN R-18 from
# Faster R-CNN R-101, with the release's DOTA weights (method doc, section
# 4). The recipe of ./ds2d2_faster-rcnn_r18_r101_dior.py (the KL weight
# 0.5 x R included: the release sums the KL term over the R RoIs of a batch)
# on DOTA's student, teacher and amplifier.
#   mim train mmrazor configs/ds2d2_faster-rcnn_r18_r101_dota.py
_base_ = [
    './faster-rcnn_r18_fpn_2x_dota.py',  # the student, its data and schedule
    './_base_/ds2d2_roi-head.py',
]

import mmengine  # noqa: E402  (filtered out of the config)

losses = _base_.ds2d2_losses
model = dict(
    _delete_=True,
    _scope_='mmrazor',
    type='DS2D2Distill',
    architecture=_base_.model,
    teacher=mmengine.Config.fromfile(
        '{{fileDirname}}/faster-rcnn_r101_fpn_2x_dota.py').model,
    teacher_ckpt='work_dirs/faster-rcnn_r101_fpn_2x_dota/epoch_24.pth',
    amplifier=dict(
        mmengine.Config.fromfile(
            '{{fileDirname}}/ds2d2_amplifier_faster-rcnn_r101_fpn_2x_dota.py'
        ).model, **_base_.ds2d2_amplifier),
    amplifier_ckpt='work_dirs/ds2d2_amplifier_faster-rcnn_r101_fpn_2x_dota/'
    'epoch_24.pth',
    distiller=dict(
        _base_.ds2d2_distiller,
        # the release's DOTA weights
        distill_losses=dict(
            loss_spectral=dict(
                losses.loss_spectral, low_weight=0.12, high_weight=1.2),
            loss_amp_full=dict(losses.loss_amp_full, loss_weight=1.5e-3),
            loss_amp_high=dict(losses.loss_amp_high, loss_weight=3e-3))))
