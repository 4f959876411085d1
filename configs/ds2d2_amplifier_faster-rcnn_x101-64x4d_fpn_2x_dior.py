# Stage 2 of DS2D2 for Faster R-CNN with the strong teacher: the
# high-frequency amplifier of Faster R-CNN X-101 64x4d on DIOR (backbone and
# neck frozen, RPN and RoI head retrained on HF(F)). Writes
# work_dirs/ds2d2_amplifier_faster-rcnn_x101-64x4d_fpn_2x_dior/epoch_24.pth.
_base_ = './faster-rcnn_x101-64x4d_fpn_2x_dior.py'
model = dict(
    _delete_=True,
    type='HighFrequencyAmplifier',
    detector=_base_.model,
    teacher_ckpt='work_dirs/faster-rcnn_x101-64x4d_fpn_2x_dior/epoch_24.pth',
    wavelet='haar')
