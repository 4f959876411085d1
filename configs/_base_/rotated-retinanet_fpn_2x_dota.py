# Rotated RetinaNet (le90 angles, `rbox` regression) on DOTA v1.0 split
# patches: MMRotate's own config with the data of ./datasets/dota.py and the
# DS2D2 paper's recipe: 2x schedule (24 epochs, lr x0.1 at 16 and 22,
# 500-iter linear warm-up), SGD momentum 0.9, weight decay 1e-4, lr 0.005 at
# 8 images per batch (2 per GPU x 4).
_base_ = [
    'mmrotate::rotated_retinanet/rotated-retinanet-rbox-le90_r50_fpn_1x_dota.py',
    './stop_on_invalid_loss.py',
]

import mmengine  # noqa: E402  (filtered out of the config)

# MMRotate's config above already holds MMRotate's DOTA data; take ours
# whole instead (DOTAPatchDataset, trained on train, evaluated on val).
data = mmengine.Config.fromfile('{{fileDirname}}/datasets/dota.py')
dataset_type = data.dataset_type
custom_imports = data.custom_imports
train_dataloader = dict(data.train_dataloader, _delete_=True)
val_dataloader = dict(data.val_dataloader, _delete_=True)
test_dataloader = val_dataloader
val_evaluator = dict(data.val_evaluator, _delete_=True)
test_evaluator = val_evaluator
del data

# The release's schedule (MMDetection's schedule_2x: warm-up from 0.001 x
# lr; MMRotate's own 1x warms up from lr / 3).
train_cfg = dict(max_epochs=24)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', begin=0, end=24, by_epoch=True,
         milestones=[16, 22], gamma=0.1)
]
# SGD momentum 0.9, wd 1e-4 and gradient clipping (max_norm 35, L2) come
# from MMRotate's schedule: every MMRotate rotated recipe clips, the
# horizontal DS2D2 recipes do not.
optim_wrapper = dict(optimizer=dict(lr=0.005))
# The lr above is for 8 images per batch; with --auto-scale-lr it follows
# your total batch size.
auto_scale_lr = dict(enable=False, base_batch_size=8)
