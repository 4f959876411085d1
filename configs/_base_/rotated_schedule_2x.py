# The DS2D2 paper's schedule for the rotated detectors, on MMRotate's
# optimiser: 2x (24 epochs, lr x0.1 at 16 and 22, 500-iter linear warm-up
# from 0.001 x lr, as MMDetection's schedule_2x; MMRotate's own 1x warms up
# from lr / 3), lr 0.005 at 8 images per batch (2 per GPU x 4).
_base_ = 'mmrotate::_base_/schedules/schedule_1x.py'

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
