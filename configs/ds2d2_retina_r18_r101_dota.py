# Stage 3 of DS2D2 on DOTA v1.0 (horizontal boxes): RetinaNet R-18 from
# RetinaNet R-101, with the release's DOTA weights (method doc, section 4):
# low 7e-5, high 5e-5, full amplifier 0.7, HF amplifier 0.5. Everything else
# is the DIOR recipe of ./ds2d2_retina_r18_r101_dior.py.
_base_ = './retinanet_r18_fpn_2x_dota.py'

import mmengine  # noqa: E402  (filtered out of the config)

model = mmengine.Config.fromfile(
    '{{fileDirname}}/ds2d2_retina_r18_r101_dior.py').model
model.update(
    _delete_=True,
    architecture=_base_.model,
    teacher=mmengine.Config.fromfile(
        '{{fileDirname}}/retinanet_r101_fpn_2x_dota.py').model,
    teacher_ckpt='work_dirs/retinanet_r101_fpn_2x_dota/epoch_24.pth',
    amplifier=dict(
        mmengine.Config.fromfile(
            '{{fileDirname}}/ds2d2_amplifier_retinanet_r101_fpn_2x_dota.py'
        ).model,
        type='mmdet.HighFrequencyAmplifier',
        teacher_ckpt=None),
    amplifier_ckpt='work_dirs/ds2d2_amplifier_retinanet_r101_fpn_2x_dota/'
    'epoch_24.pth')
model.distiller.distill_losses.loss_spectral.update(
    low_weight=7e-5, high_weight=5e-5)
model.distiller.distill_losses.loss_amp_full.loss_weight = 0.7
model.distiller.distill_losses.loss_amp_high.loss_weight = 0.5
