# Stage 3 of DS2D2 for two-stage detectors: distil Faster R-CNN R-18
# (student) from Faster R-CNN R-101 (teacher) on DIOR, with the loss weights
# of the authors' release (../shared/docs/ds2d2_method.md, section 4).
#   mim train mmrazor configs/ds2d2_faster-rcnn_r18_r101_dior.py
# Needs the checkpoints of stage 1 and 2; other paths:
#   --cfg-options model.teacher_ckpt=PATH model.amplifier_ckpt=PATH
# The distiller is ./_base_/ds2d2_roi-head.py (RoI amplifier losses, with
# the KL weight 0.5 x R explained there); teacher and amplifier are the
# models of their own configs (same dataset), read with Config.fromfile
# since they cannot be bases beside the student's (all three define the data
# and the schedule).
_base_ = [
    './faster-rcnn_r18_fpn_2x_dior.py',  # the student, its data and schedule
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
        '{{fileDirname}}/faster-rcnn_r101_fpn_2x_dior.py').model,
    teacher_ckpt='work_dirs/faster-rcnn_r101_fpn_2x_dior/epoch_24.pth',
    amplifier=dict(
        mmengine.Config.fromfile(
            '{{fileDirname}}/ds2d2_amplifier_faster-rcnn_r101_fpn_2x_dior.py'
        ).model, **_base_.ds2d2_amplifier),
    amplifier_ckpt='work_dirs/ds2d2_amplifier_faster-rcnn_r101_fpn_2x_dior/'
    'epoch_24.pth',
    distiller=dict(
        _base_.ds2d2_distiller,
        # the release's DIOR weights: low and high 0.5, amplifiers 1e-5
        distill_losses=dict(
            loss_spectral=dict(
                losses.loss_spectral, low_weight=0.5, high_weight=0.5),
            loss_amp_full=dict(losses.loss_amp_full, loss_weight=1e-5),
            loss_amp_high=dict(losses.loss_amp_high, loss_weight=1e-5))))
