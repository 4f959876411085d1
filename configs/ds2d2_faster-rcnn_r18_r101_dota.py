# Stage 3 of DS2D2 on DOTA v1.0 (horizontal boxes): Faster R-CNN R-18 from
# Faster R-CNN R-101, with the release's DOTA weights (method doc, section
# 4): low 0.12, high 1.2, full amplifier 1.5e-3, HF amplifier 3e-3. The KL
# weight 0.5 x R (the release sums the KL term over the R RoIs of a batch)
# and everything else is the DIOR recipe of
# ./ds2d2_faster-rcnn_r18_r101_dior.py.
_base_ = './faster-rcnn_r18_fpn_2x_dota.py'

import mmengine  # noqa: E402  (filtered out of the config)

model = mmengine.Config.fromfile(
    '{{fileDirname}}/ds2d2_faster-rcnn_r18_r101_dior.py').model
model.update(
    _delete_=True,
    architecture=_base_.model,
    teacher=mmengine.Config.fromfile(
        '{{fileDirname}}/faster-rcnn_r101_fpn_2x_dota.py').model,
    teacher_ckpt='work_dirs/faster-rcnn_r101_fpn_2x_dota/epoch_24.pth',
    amplifier=dict(
        mmengine.Config.fromfile(
            '{{fileDirname}}/ds2d2_amplifier_faster-rcnn_r101_fpn_2x_dota.py'
        ).model,
        type='mmdet.HighFrequencyAmplifier',
        teacher_ckpt=None),
    amplifier_ckpt='work_dirs/ds2d2_amplifier_faster-rcnn_r101_fpn_2x_dota/'
    'epoch_24.pth')
model.distiller.distill_losses.loss_spectral.update(
    low_weight=0.12, high_weight=1.2)
model.distiller.distill_losses.loss_amp_full.loss_weight = 1.5e-3
model.distiller.distill_losses.loss_amp_high.loss_weight = 3e-3
