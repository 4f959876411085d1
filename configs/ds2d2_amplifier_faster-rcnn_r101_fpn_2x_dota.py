# Stage 2 of DS2D2 on DOTA: the high-frequency amplifier of the faster-rcnn
# R-101 teacher (backbone and neck frozen, heads retrained on HF(F)).
_base_ = './faster-rcnn_r101_fpn_2x_dota.py'
model = dict(
    _delete_=True,
    type='HighFrequencyAmplifier',
    detector=_base_.model,
    teacher_ckpt='work_dirs/faster-rcnn_r101_fpn_2x_dota/epoch_24.pth',
    wavelet='haar')
