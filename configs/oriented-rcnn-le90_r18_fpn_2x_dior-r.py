# The student, Oriented R-CNN ResNet-18 FPN (MMRotate, le90) on DIOR-R,
# trained alone: the baseline the DS2D2 student is compared with.
_base_ = './_base_/oriented-rcnn_fpn_2x_dior-r.py'
model = dict(
    backbone=dict(
        depth=18,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet18')),
    neck=dict(in_channels=[64, 128, 256, 512]))
