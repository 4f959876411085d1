# DIOR as COCO json, for MMDetection's CocoDataset and CocoMetric: the
# recipe of ./dior.py (train on trainval, test on test, 800x800, flip 0.5),
# read from json files written by tools/convert_to_coco.py:
#   python tools/convert_to_coco.py dior data/DIOR --split train val \
#       --out data/DIOR/coco/trainval.json
#   python tools/convert_to_coco.py dior data/DIOR --split test \
#       --out data/DIOR/coco/test.json
_base_ = './dior.py'

data_root = 'data/DIOR/'
# DIOR_CLASSES, in label order (category ids 1..20 in the json)
metainfo = dict(
    classes=('airplane', 'airport', 'baseballfield', 'basketballcourt',
             'bridge', 'chimney', 'dam', 'Expressway-Service-area',
             'Expressway-toll-station', 'golffield', 'groundtrackfield',
             'harbor', 'overpass', 'ship', 'stadium', 'storagetank',
             'tenniscourt', 'trainstation', 'vehicle', 'windmill'))

train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='CocoDataset',
        data_root=data_root,
        metainfo=metainfo,
        ann_file='coco/trainval.json',
        data_prefix=dict(img='JPEGImages-trainval/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
        pipeline=_base_.train_pipeline,
        backend_args=_base_.backend_args))
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='CocoDataset',
        data_root=data_root,
        metainfo=metainfo,
        ann_file='coco/test.json',
        data_prefix=dict(img='JPEGImages-test/'),
        test_mode=True,
        pipeline=_base_.test_pipeline,
        backend_args=_base_.backend_args))
test_dataloader = val_dataloader

val_evaluator = dict(ann_file=data_root + 'coco/test.json')
test_evaluator = val_evaluator
