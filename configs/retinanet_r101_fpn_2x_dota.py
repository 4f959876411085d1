# Stage 1 of DS2D2 on DOTA (horizontal boxes): the teacher, RetinaNet
# ResNet-101 FPN. Writes work_dirs/retinanet_r101_fpn_2x_dota/epoch_24.pth.
_base_ = './_base_/retinanet_fpn_2x_dota.py'
model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet101')))
