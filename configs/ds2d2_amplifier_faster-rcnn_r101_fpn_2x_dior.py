# Stage 2 of DS2D2 for Faster R-CNN: the high-frequency amplifier. The
# teacher's architecture, initialised from its checkpoint; backbone and neck
# frozen, the RPN and RoI head trained 24 epochs on the high-frequency view
# HF(F) of the FPN features.
#   python tools/train.py \
#       configs/ds2d2_amplifier_faster-rcnn_r101_fpn_2x_dior.py
# Another teacher checkpoint: --cfg-options model.teacher_ckpt=PATH
_base_ = './faster-rcnn_r101_fpn_2x_dior.py'
model = dict(
    _delete_=True,
    type='HighFrequencyAmplifier',
    detector=_base_.model,
    teacher_ckpt='work_dirs/faster-rcnn_r101_fpn_2x_dior/epoch_24.pth',
    wavelet='haar')
