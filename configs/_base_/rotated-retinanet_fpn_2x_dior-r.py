# Rotated RetinaNet (le90 angles, `rbox` regression) on DIOR-R: MMRotate's
# own config with the data of ./datasets/dior_r.py and the DS2D2 recipe of
# ./rotated-retinanet_fpn_2x_dota.py (2x schedule, SGD momentum 0.9, weight
# decay 1e-4, lr 0.005 at 8 images per batch, MMRotate's gradient clipping).
_base_ = [
    'mmrotate::rotated_retinanet/rotated-retinanet-rbox-le90_r50_fpn_1x_dior.py',
    './stop_on_invalid_loss.py',
]

import mmengine  # noqa: E402  (filtered out of the config)

# MMRotate's config above already holds MMRotate's DIOR data; take ours
# whole instead (DIORRDataset: train on trainval, test on test).
data = mmengine.Config.fromfile('{{fileDirname}}/datasets/dior_r.py')
dataset_type = data.dataset_type
custom_imports = data.custom_imports
train_dataloader = dict(data.train_dataloader, _delete_=True)
val_dataloader = dict(data.val_dataloader, _delete_=True)
test_dataloader = val_dataloader
val_evaluator = dict(data.val_evaluator, _delete_=True)
test_evaluator = val_evaluator
del data

# The same schedule and optimiser as on DOTA.
dota = mmengine.Config.fromfile(
    '{{fileDirname}}/rotated-retinanet_fpn_2x_dota.py')
train_cfg = dota.train_cfg
param_scheduler = dota.param_scheduler
optim_wrapper = dota.optim_wrapper
auto_scale_lr = dota.auto_scale_lr
del dota
