# Stage 2 of DS2D2 on DOTA: the high-frequency amplifier of the retinanet
# R-101 teacher (backbone and neck frozen, heads retrained on HF(F)).
_base_ = './retinanet_r101_fpn_2x_dota.py'
model = dict(
    _delete_=True,
    type='HighFrequencyAmplifier',
    detector=_base_.model,
    teacher_ckpt='work_dirs/retinanet_r101_fpn_2x_dota/epoch_24.pth',
    wavelet='haar')
