# Stage 1 of DS2D2 with a strong teacher: RetinaNet ResNeXt-101 64x4d FPN on
# DIOR (the backbone of MMDetection's retinanet_x101-64x4d_fpn_2x_coco.py).
#   python tools/train.py configs/retinanet_x101-64x4d_fpn_2x_dior.py
# writes work_dirs/retinanet_x101-64x4d_fpn_2x_dior/epoch_24.pth.
_base_ = './_base_/retinanet_fpn_2x_dior.py'
model = dict(
    backbone=dict(
        type='ResNeXt',
        depth=101,
        groups=64,
        base_width=4,
        init_cfg=dict(type='Pretrained',
                      checkpoint='open-mmlab://resnext101_64x4d')))
