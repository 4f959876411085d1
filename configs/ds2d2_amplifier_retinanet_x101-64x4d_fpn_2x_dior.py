# Stage 2 of DS2D2 with the strong teacher: the high-frequency amplifier of
# RetinaNet X-101 64x4d on DIOR (backbone and neck frozen, head retrained on
# HF(F)), as ./ds2d2_amplifier_retinanet_r101_fpn_2x_dior.py.
#   python tools/train.py \
#       configs/ds2d2_amplifier_retinanet_x101-64x4d_fpn_2x_dior.py
# writes work_dirs/ds2d2_amplifier_retinanet_x101-64x4d_fpn_2x_dior/
# epoch_24.pth.
_base_ = './retinanet_x101-64x4d_fpn_2x_dior.py'
model = dict(
    _delete_=True,
    type='HighFrequencyAmplifier',
    detector=_base_.model,
    teacher_ckpt='work_dirs/retinanet_x101-64x4d_fpn_2x_dior/epoch_24.pth',
    wavelet='haar')
