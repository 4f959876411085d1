# Rotated RetinaNet (le90 angles, `rbox` regression) on DOTA v1.0 split
# patches: MMRotate's own model, with the data of ./datasets/dota.py
# (DOTAPatchDataset, trained on train, evaluated on val) and the DS2D2
# paper's recipe of ./rotated_schedule_2x.py.
_base_ = [
    './datasets/dota.py',
    './rotated_schedule_2x.py',
    'mmrotate::_base_/default_runtime.py',
    './stop_on_invalid_loss.py',
]

from mmengine.hub import get_config  # noqa: E402  (filtered out)

# MMRotate's config holds its model beside MMRotate's DOTA data and 1x
# schedule, which the bases above replace: only its model is taken. The
# scope is the one MMEngine gives a model inherited from MMRotate's
# configs; inside DS2D2Distill (MMRazor's scope) the model is built in it.
model = dict(
    get_config('mmrotate::rotated_retinanet/'
               'rotated-retinanet-rbox-le90_r50_fpn_1x_dota.py').model,
    _scope_='mmrotate')
