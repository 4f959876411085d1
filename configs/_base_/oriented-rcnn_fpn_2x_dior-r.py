# Oriented R-CNN (le90 angles) on DIOR-R: MMRotate's own model, with the
# data of ./datasets/dior_r.py (DIORRDataset: train on trainval, test on
# test) and the DS2D2 paper's recipe of ./rotated_schedule_2x.py, at the
# paper's two-stage lr.
_base_ = [
    './datasets/dior_r.py',
    './rotated_schedule_2x.py',
    'mmrotate::_base_/default_runtime.py',
    './stop_on_invalid_loss.py',
]

from mmengine.hub import get_config  # noqa: E402  (filtered out)

# MMRotate has no Oriented R-CNN config for DIOR: its DOTA model, in
# MMRotate's scope, with DIOR-R's 20 classes (MMRotate's DIOR configs of
# other detectors differ from their DOTA ones only in the classes). A `__`
# name: MMEngine leaves it out of the config, so that only `model` holds
# the detector.
__oriented_rcnn = get_config(
    'mmrotate::oriented_rcnn/oriented-rcnn-le90_r50_fpn_1x_dota.py').model
model = dict(
    __oriented_rcnn,
    _scope_='mmrotate',
    roi_head=dict(
        __oriented_rcnn.roi_head,
        bbox_head=dict(__oriented_rcnn.roi_head.bbox_head, num_classes=20)))
# lr 0.02 at 8 images per batch: the paper's Faster R-CNN lr, and MMRotate's
# Oriented R-CNN lr (0.005 at 2 images, 1 GPU x 2) scaled linearly.
optim_wrapper = dict(optimizer=dict(lr=0.02))
