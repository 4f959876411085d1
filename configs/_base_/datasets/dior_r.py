# DIOR-R: DIOR's images with the oriented boxes of
# Annotations/Oriented Bounding Boxes/, for MMRotate (default_scope
# 'mmrotate'). MMRotate's own DIOR recipe (800x800, flips, DOTAMetric); only
# the loader differs: DIORRDataset, strict, with ./dior.py's layout keys.
# Train on trainval (train.txt + val.txt), test on test.
_base_ = 'mmrotate::_base_/datasets/dior.py'
custom_imports = dict(imports=['ds2d2_mmrazor'], allow_failed_imports=False)

dataset_type = 'DIORRDataset'
# MMRotate's train pipeline, dropping zero-size boxes before packing: they
# would give infinite box targets (log 0).
train_pipeline = _base_.train_pipeline[:-1] + [
    dict(type='mmdet.FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2),
         keep_empty=False),
    _base_.train_pipeline[-1],
]
data_root = 'data/DIOR/'


def _split(split, img_subdir, pipeline, test_mode=False):
    return dict(
        type=dataset_type,
        _scope_='mmrotate',  # DIORRDataset is in MMRotate's registry
        data_root=data_root,
        ann_file=f'ImageSets/Main/{split}.txt',
        img_subdir=img_subdir,
        ann_subdir='Annotations/Oriented Bounding Boxes',
        data_prefix=dict(sub_data_root=''),
        filter_cfg=None if test_mode else dict(filter_empty_gt=True),
        test_mode=test_mode,
        pipeline=pipeline)


train_dataloader = dict(
    dataset=dict(datasets=[
        _split('train', 'JPEGImages-trainval', train_pipeline),
        _split('val', 'JPEGImages-trainval', train_pipeline),
    ]))
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        **_split('test', 'JPEGImages-test', _base_.val_pipeline,
                 test_mode=True)))
test_dataloader = val_dataloader
