# The student on DOTA (horizontal boxes), RetinaNet ResNet-50 FPN, trained
# alone: the baseline the DS2D2 student is compared with. The FPN takes the
# base's [256, 512, 1024, 2048] channels.
_base_ = './_base_/retinanet_fpn_2x_dota.py'
model = dict(
    backbone=dict(
        depth=50,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')))
