# DOTA v1.0 split patches with horizontal boxes, as COCO json, for
# MMDetection's CocoDataset and CocoMetric: MMDetection's COCO recipe at
# 1024x1024, trained on train and evaluated on val. The patches are those of
# ./dota.py (MMRotate's img_split, 1024, gap 200); the json files are
# written by tools/convert_to_coco.py (bbox: the box enclosing each
# quadrilateral, clipped to the patch; segmentation: the quadrilateral):
#   python tools/convert_to_coco.py dota data/split_ss_dota --split train \
#       --out data/split_ss_dota/train/train.json
#   python tools/convert_to_coco.py dota data/split_ss_dota --split val \
#       --out data/split_ss_dota/val/val.json
_base_ = 'mmdet::_base_/datasets/coco_detection.py'
custom_imports = dict(imports=['ds2d2_mmrazor'], allow_failed_imports=False)

data_root = 'data/split_ss_dota/'
# DOTA_CLASSES (MMRotate's DOTADataset), in label order (category ids 1..15)
metainfo = dict(
    classes=('plane', 'baseball-diamond', 'bridge', 'ground-track-field',
             'small-vehicle', 'large-vehicle', 'ship', 'tennis-court',
             'basketball-court', 'storage-tank', 'soccer-ball-field',
             'roundabout', 'harbor', 'swimming-pool', 'helicopter'))

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=_base_.backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(1024, 1024), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    # zero-size boxes would give infinite box targets (log 0): drop them
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2),
         keep_empty=False),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=_base_.backend_args),
    dict(type='Resize', scale=(1024, 1024), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]

train_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='train/train.json',
        data_prefix=dict(img='train/images/'),
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='val/val.json',
        data_prefix=dict(img='val/images/'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader

val_evaluator = dict(ann_file=data_root + 'val/val.json')
test_evaluator = val_evaluator
