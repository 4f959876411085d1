# Stage 1 of DS2D2 with oriented boxes: the teacher, rotated RetinaNet
# ResNet-101 FPN (MMRotate, le90, rbox) on DIOR-R.
#   python tools/train.py configs/rotated-retinanet-le90_r101_fpn_2x_dior-r.py
# writes work_dirs/rotated-retinanet-le90_r101_fpn_2x_dior-r/epoch_24.pth.
_base_ = './_base_/rotated-retinanet_fpn_2x_dior-r.py'
model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet101')))
