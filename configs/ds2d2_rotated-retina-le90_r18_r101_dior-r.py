# Stage 3 of DS2D2 with oriented boxes (MMRotate, le90, rbox): distil rotated
# RetinaNet R-18 (student) from rotated RetinaNet R-101 (teacher) on DIOR-R.
#   python tools/train.py configs/ds2d2_rotated-retina-le90_r18_r101_dior-r.py
# Needs the checkpoints of stage 1 and 2; other paths:
#   --cfg-options model.teacher_ckpt=PATH model.amplifier_ckpt=PATH
# The distiller is that of ./ds2d2_retina_r18_r101_dior.py (FPN and
# AnchorHead.get_targets recorders, adapter + DWT connectors, DISW spectral
# loss, the two dense amplifier losses); for oriented boxes DISW takes the
# rotated ground-truth boxes and the amplifiers compare rotated boxes with
# MMRotate's Gaussian KLD instead of GIoU.
_base_ = './rotated-retinanet-le90_r18_fpn_2x_dior-r.py'

import mmengine  # noqa: E402  (filtered out of the config)

model = mmengine.Config.fromfile(
    '{{fileDirname}}/ds2d2_retina_r18_r101_dior.py').model
model.update(
    _delete_=True,
    architecture=_base_.model,
    teacher=mmengine.Config.fromfile(
        '{{fileDirname}}/rotated-retinanet-le90_r101_fpn_2x_dior-r.py').model,
    teacher_ckpt='work_dirs/rotated-retinanet-le90_r101_fpn_2x_dior-r/'
    'epoch_24.pth',
    amplifier=dict(
        mmengine.Config.fromfile(
            '{{fileDirname}}/'
            'ds2d2_amplifier_rotated-retinanet-le90_r101_fpn_2x_dior-r.py'
        ).model,
        teacher_ckpt=None),  # all of it comes from amplifier_ckpt
    amplifier_ckpt='work_dirs/'
    'ds2d2_amplifier_rotated-retinanet-le90_r101_fpn_2x_dior-r/epoch_24.pth')

losses = model.distiller.distill_losses
# The release has no oriented recipe: these are its horizontal DIOR weights
# (method doc, section 4), carried over untuned.
losses.loss_spectral.update(low_weight=1e-5, high_weight=1e-5)
losses.loss_amp_full.loss_weight = 1.0
losses.loss_amp_high.loss_weight = 1.0
# The amplifiers' box distance between the student's and the teacher's
# decoded rotated boxes: KLD of their Gaussians (CPU-friendly, rotation-
# aware), weighted by the teacher's confidence as GIoU is for horizontal
# boxes. sqrt=False keeps the distance exactly 0 when the boxes are equal
# and smooth around it; sqrt=True (MMRotate's default) floors it at
# sqrt(1e-7), a non-zero loss and a steep gradient at equality.
for loss in (losses.loss_amp_full, losses.loss_amp_high):
    loss.reg_loss = dict(
        type='mmrotate.GDLoss', loss_type='kld', fun='log1p', tau=1.0,
        sqrt=False, reduction='mean', loss_weight=1.0)
del losses, loss
