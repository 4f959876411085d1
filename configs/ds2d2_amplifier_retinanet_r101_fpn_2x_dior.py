# Stage 2 of DS2D2: the high-frequency amplifier. The teacher's architecture,
# initialised from its checkpoint; backbone and neck frozen, the head trained
# 24 epochs on the high-frequency view HF(F) of the FPN features.
#   python tools/train.py configs/ds2d2_amplifier_retinanet_r101_fpn_2x_dior.py
# writes work_dirs/ds2d2_amplifier_retinanet_r101_fpn_2x_dior/epoch_24.pth.
# Another teacher checkpoint:
#   --cfg-options model.teacher_ckpt=PATH
_base_ = './retinanet_r101_fpn_2x_dior.py'
model = dict(
    _delete_=True,
    type='HighFrequencyAmplifier',
    detector=_base_.model,
    teacher_ckpt='work_dirs/retinanet_r101_fpn_2x_dior/epoch_24.pth',
    wavelet='haar')
