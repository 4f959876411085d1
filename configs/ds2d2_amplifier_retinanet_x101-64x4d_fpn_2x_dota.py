# Stage 2 of DS2D2 on DOTA with the strong teacher: the high-frequency
# amplifier of RetinaNet X-101 64x4d (backbone and neck frozen, head
# retrained on HF(F)). Writes
# work_dirs/ds2d2_amplifier_retinanet_x101-64x4d_fpn_2x_dota/epoch_24.pth.
_base_ = './retinanet_x101-64x4d_fpn_2x_dota.py'
model = dict(
    _delete_=True,
    type='HighFrequencyAmplifier',
    detector=_base_.model,
    teacher_ckpt='work_dirs/retinanet_x101-64x4d_fpn_2x_dota/epoch_24.pth',
    wavelet='haar')
