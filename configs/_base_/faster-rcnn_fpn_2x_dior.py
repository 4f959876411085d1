# Faster R-CNN on DIOR with the recipe of the DS2D2 paper: 2x schedule
# (24 epochs, lr x0.1 at 16 and 22, 500-iter linear warm-up), SGD momentum
# 0.9, weight decay 1e-4, lr 0.02 at 8 images per batch (2 per GPU x 4).
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py',
    './datasets/dior.py',
    'mmdet::_base_/schedules/schedule_2x.py',
    'mmdet::_base_/default_runtime.py',
    './stop_on_invalid_loss.py',
]
model = dict(roi_head=dict(bbox_head=dict(num_classes=20)))
optim_wrapper = dict(optimizer=dict(lr=0.02))
# The lr above is for 8 images per batch; with --auto-scale-lr it follows
# your total batch size.
auto_scale_lr = dict(enable=False, base_batch_size=8)
