# The student, Faster R-CNN ResNet-34 FPN on DIOR, trained alone: the
# baseline the DS2D2 student is compared with.
_base_ = './_base_/faster-rcnn_fpn_2x_dior.py'
model = dict(
    backbone=dict(
        depth=34,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet34')),
    neck=dict(in_channels=[64, 128, 256, 512]))
