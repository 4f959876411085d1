# RetinaNet on DOTA v1.0 split patches, horizontal boxes (COCO json of
# ./datasets/dota_coco.py), with the DS2D2 paper's schedule: 2x, SGD
# momentum 0.9, weight decay 1e-4, lr 0.005 at 8 images per batch.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    './datasets/dota_coco.py',
    'mmdet::_base_/schedules/schedule_2x.py',
    'mmdet::_base_/default_runtime.py',
    './stop_on_invalid_loss.py',
]
model = dict(bbox_head=dict(num_classes=15))
optim_wrapper = dict(optimizer=dict(lr=0.005))
auto_scale_lr = dict(enable=False, base_batch_size=8)
