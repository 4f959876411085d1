# DOTA v1.0 split patches for MMRotate (default_scope 'mmrotate'): MMRotate's
# own recipe (1024x1024, flips, DOTAMetric), read by the strict
# DOTAPatchDataset, trained on train and evaluated on val (MMRotate's config
# uses trainval for both). Split train and val into 1024x1024 patches with a
# gap of 200 with MMRotate's tools/data/dota/split/img_split.py (its ss_*
# split configs), into data/split_ss_dota/{train,val}/{images,annfiles}/.
_base_ = 'mmrotate::_base_/datasets/dota.py'
custom_imports = dict(imports=['ds2d2_mmrazor'], allow_failed_imports=False)

dataset_type = 'DOTAPatchDataset'
# the split's patch size (img_split.py --sizes); smaller border patches
# (--no-padding) keep their own. Stated here: MMRotate 1.2's base config
# (the OneDL stack) no longer passes it.
img_shape = (1024, 1024)
# MMRotate's train pipeline, dropping zero-size boxes (e.g. from collinear
# polygons) before packing: they would give infinite box targets (log 0).
train_pipeline = _base_.train_pipeline[:-1] + [
    dict(type='mmdet.FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2),
         keep_empty=False),
    _base_.train_pipeline[-1],
]

train_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        img_shape=img_shape,
        pipeline=train_pipeline,
        ann_file='train/annfiles/',
        data_prefix=dict(img_path='train/images/')))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        img_shape=img_shape,
        ann_file='val/annfiles/',
        data_prefix=dict(img_path='val/images/')))
test_dataloader = val_dataloader
