# Stage 2 of DS2D2 with Oriented R-CNN on DOTA v1.0: the high-frequency
# amplifier of the Oriented R-CNN R-101 teacher, initialised from its
# checkpoint; backbone and neck frozen, the RPN and RoI head trained 24
# epochs on the high-frequency view HF(F) of the FPN features.
#   python tools/train.py \
#       configs/ds2d2_amplifier_oriented-rcnn-le90_r101_fpn_2x_dota.py
# Another teacher checkpoint: --cfg-options model.teacher_ckpt=PATH
_base_ = './oriented-rcnn-le90_r101_fpn_2x_dota.py'
model = dict(
    _delete_=True,
    # registered in MMDetection's registry; MMRotate's default scope
    # needs the prefix
    type='mmdet.HighFrequencyAmplifier',
    detector=_base_.model,
    teacher_ckpt='work_dirs/oriented-rcnn-le90_r101_fpn_2x_dota/'
    'epoch_24.pth',
    wavelet='haar')
