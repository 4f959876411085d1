# Oriented R-CNN (le90 angles) on DOTA v1.0 split patches: MMRotate's own
# model, with the data of ./datasets/dota.py (DOTAPatchDataset, trained on
# train, evaluated on val) and the DS2D2 paper's recipe of
# ./rotated_schedule_2x.py, at the paper's two-stage lr.
_base_ = [
    './datasets/dota.py',
    './rotated_schedule_2x.py',
    'mmrotate::_base_/default_runtime.py',
    './stop_on_invalid_loss.py',
]

from mmengine.hub import get_config  # noqa: E402  (filtered out)

# MMRotate's config holds its model beside MMRotate's DOTA data and 1x
# schedule, which the bases above replace: only its model is taken, in
# MMRotate's scope (see ./rotated-retinanet_fpn_2x_dota.py).
model = dict(
    get_config('mmrotate::oriented_rcnn/'
               'oriented-rcnn-le90_r50_fpn_1x_dota.py').model,
    _scope_='mmrotate')
# lr 0.02 at 8 images per batch: the paper's Faster R-CNN lr, and MMRotate's
# Oriented R-CNN lr (0.005 at 2 images, 1 GPU x 2) scaled linearly.
optim_wrapper = dict(optimizer=dict(lr=0.02))
