# Rotated RetinaNet (le90 angles, `rbox` regression) on DIOR-R: MMRotate's
# own model, with the data of ./datasets/dior_r.py (DIORRDataset: train on
# trainval, test on test) and the DS2D2 paper's recipe of
# ./rotated_schedule_2x.py.
_base_ = [
    './datasets/dior_r.py',
    './rotated_schedule_2x.py',
    'mmrotate::_base_/default_runtime.py',
    './stop_on_invalid_loss.py',
]

from mmengine.hub import get_config  # noqa: E402  (filtered out)

# MMRotate's config holds its model beside MMRotate's DIOR data and 1x
# schedule, which the bases above replace: only its model is taken, in
# MMRotate's scope (see ./rotated-retinanet_fpn_2x_dota.py).
model = dict(
    get_config('mmrotate::rotated_retinanet/'
               'rotated-retinanet-rbox-le90_r50_fpn_1x_dior.py').model,
    _scope_='mmrotate')
