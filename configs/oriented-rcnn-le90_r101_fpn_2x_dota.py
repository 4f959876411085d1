# Stage 1 of DS2D2 with a two-stage oriented detector: the teacher, Oriented
# R-CNN ResNet-101 FPN (MMRotate, le90) on DOTA v1.0.
#   python tools/train.py configs/oriented-rcnn-le90_r101_fpn_2x_dota.py
# writes work_dirs/oriented-rcnn-le90_r101_fpn_2x_dota/epoch_24.pth.
_base_ = './_base_/oriented-rcnn_fpn_2x_dota.py'
model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet101')))
