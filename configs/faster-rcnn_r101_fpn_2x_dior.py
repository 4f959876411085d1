# Stage 1 of DS2D2: the teacher, Faster R-CNN ResNet-101 FPN on DIOR.
#   python tools/train.py configs/faster-rcnn_r101_fpn_2x_dior.py
# writes work_dirs/faster-rcnn_r101_fpn_2x_dior/epoch_24.pth.
_base_ = './_base_/faster-rcnn_fpn_2x_dior.py'
model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet101')))
