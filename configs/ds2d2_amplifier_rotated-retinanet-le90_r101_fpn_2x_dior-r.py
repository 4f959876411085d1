# Stage 2 of DS2D2 with oriented boxes on DIOR-R: the high-frequency amplifier
# of the rotated RetinaNet R-101 teacher, initialised from its checkpoint;
# backbone and neck frozen, the head trained 24 epochs on HF(F).
#   python tools/train.py \
#       configs/ds2d2_amplifier_rotated-retinanet-le90_r101_fpn_2x_dior-r.py
# Another teacher checkpoint: --cfg-options model.teacher_ckpt=PATH
_base_ = './rotated-retinanet-le90_r101_fpn_2x_dior-r.py'
model = dict(
    _delete_=True,
    # registered in MMDetection's registry; MMRotate's default scope
    # needs the prefix
    type='mmdet.HighFrequencyAmplifier',
    detector=_base_.model,
    teacher_ckpt='work_dirs/rotated-retinanet-le90_r101_fpn_2x_dior-r/'
    'epoch_24.pth',
    wavelet='haar')
