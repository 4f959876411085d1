# Stage 3 of DS2D2 with a two-stage oriented detector on DOTA v1.0: distil
# Oriented R-CNN R-18 (student) from Oriented R-CNN R-101 (teacher)
# (MMRotate, le90).
#   python tools/train.py configs/ds2d2_oriented-rcnn-le90_r18_r101_dota.py
# Needs the checkpoints of stage 1 and 2; other paths:
#   --cfg-options model.teacher_ckpt=PATH model.amplifier_ckpt=PATH
# The distiller is Faster R-CNN's with a rotated box term,
# ./_base_/ds2d2_rotated-roi-head.py: Oriented R-CNN's RoI head is
# MMDetection's StandardRoIHead, so the same recorder takes the student's
# sampled RoIs, here rotated (cx, cy, w, h, angle), and the RoI amplifiers
# pool them with the heads' own rotated RoI extractor; the reg term decodes
# both heads' deltas against those RoIs and compares the rotated boxes with
# a Gaussian KLD. DISW takes the rotated ground-truth boxes as they are.
_base_ = [
    './oriented-rcnn-le90_r18_fpn_2x_dota.py',  # student, data, schedule
    './_base_/ds2d2_rotated-roi-head.py',
]

import mmengine  # noqa: E402  (filtered out of the config)

losses = _base_.ds2d2_losses
model = dict(
    _delete_=True,
    _scope_='mmrazor',
    type='DS2D2Distill',
    architecture=_base_.model,
    teacher=mmengine.Config.fromfile(
        '{{fileDirname}}/oriented-rcnn-le90_r101_fpn_2x_dota.py').model,
    teacher_ckpt='work_dirs/oriented-rcnn-le90_r101_fpn_2x_dota/'
    'epoch_24.pth',
    amplifier=dict(
        mmengine.Config.fromfile(
            '{{fileDirname}}/'
            'ds2d2_amplifier_oriented-rcnn-le90_r101_fpn_2x_dota.py'
        ).model, **_base_.ds2d2_amplifier),
    amplifier_ckpt='work_dirs/'
    'ds2d2_amplifier_oriented-rcnn-le90_r101_fpn_2x_dota/epoch_24.pth',
    distiller=dict(
        _base_.ds2d2_distiller,
        # The release has no Oriented R-CNN recipe: these are its Faster
        # R-CNN DOTA weights (method doc, section 4; as in
        # ./ds2d2_faster-rcnn_r18_r101_dota.py, the KL weight 0.5 x R of
        # the skeleton included: Oriented R-CNN samples 512 RoIs an image
        # too), carried over untuned. The reg term inside each amplifier
        # weight is the decoded-box KLD here, not the release's delta L1,
        # so its relative weight is untuned too.
        distill_losses=dict(
            loss_spectral=dict(
                losses.loss_spectral, low_weight=0.12, high_weight=1.2),
            loss_amp_full=dict(losses.loss_amp_full, loss_weight=1.5e-3),
            loss_amp_high=dict(losses.loss_amp_high, loss_weight=3e-3))))
