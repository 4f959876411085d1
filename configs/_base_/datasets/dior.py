# DIOR as released (VOC-style XML), horizontal boxes. Train on trainval
# (train.txt + val.txt, 11,725 images), test on test (11,738 images).
# Expected layout under data_root:
#   JPEGImages-trainval/*.jpg   JPEGImages-test/*.jpg
#   Annotations/Horizontal Bounding Boxes/*.xml
#   ImageSets/Main/{train,val,test}.txt
custom_imports = dict(imports=['ds2d2_mmrazor'], allow_failed_imports=False)

dataset_type = 'DIORDataset'
data_root = 'data/DIOR/'
ann_subdir = 'Annotations/Horizontal Bounding Boxes'
backend_args = None

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(800, 800), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    # zero-size boxes would give infinite box targets (log 0): drop them
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2),
         keep_empty=False),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=(800, 800), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    # also packs the annotations ('instances'), from which CocoMetric builds
    # its ground truth (no json needed); plain images pack without them
    dict(
        type='PackDetInputsWithGT',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]


def _split(split, img_subdir, pipeline, test_mode=False):
    return dict(
        type=dataset_type,
        data_root=data_root,
        ann_file=f'ImageSets/Main/{split}.txt',
        img_subdir=img_subdir,
        ann_subdir=ann_subdir,
        data_prefix=dict(sub_data_root=''),
        filter_cfg=None if test_mode else dict(
            filter_empty_gt=True, min_size=32),
        test_mode=test_mode,
        pipeline=pipeline,
        backend_args=backend_args)


train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type='ConcatDataset',
        datasets=[
            _split('train', 'JPEGImages-trainval', train_pipeline),
            _split('val', 'JPEGImages-trainval', train_pipeline),
        ]))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=_split('test', 'JPEGImages-test', test_pipeline, test_mode=True))
test_dataloader = val_dataloader

# COCO-style bbox AP: the paper reports AP50 (bbox_mAP_50) beside mAP. The
# ground truth is converted from the dataset on the fly (no json needed).
val_evaluator = dict(type='CocoMetric', metric='bbox', backend_args=None)
test_evaluator = val_evaluator
