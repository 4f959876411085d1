"""tools/convert_to_coco.py and ds2d2_mmrazor.datasets.coco_conversion: DIOR
(HBB, OBB) and DOTA patches to COCO json, read back by CocoDataset with the
loaders' boxes."""
import json
import os
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from ds2d2_mmrazor.datasets import (DIOR_CLASSES, DOTA_CLASSES, DIORDataset,
                                    dior_to_coco, dota_to_coco)

from ..conftest import make_dior, make_dota_split, requires_mmrotate
from ..test_datasets.test_dior import ANN_DIR, logged, write_voc  # noqa: F401
from ..test_datasets.test_dota import PATCHES, SIZE

import convert_to_coco  # tools/convert_to_coco.py, on the path (conftest)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture
def dior(tmp_path):
    return make_dior(str(tmp_path / 'DIOR'), num_trainval=4, num_test=2)


def test_dior_json_has_the_loader_boxes_categories_and_images(dior):
    write_voc(osp.join(dior, ANN_DIR, '00005.xml'), [
        ('airplane', (11, 21, 30, 50)),
        '<object><name>Expressway-Service-area</name><difficult>1'
        '</difficult><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>64</xmax>'
        '<ymax>8.5</ymax></bndbox></object>',
    ])
    coco = dior_to_coco(dior, ['test'])
    assert coco['categories'] == [
        dict(id=i + 1, name=name) for i, name in enumerate(DIOR_CLASSES)
    ]
    assert coco['images'] == [
        dict(id=1, file_name='00005.jpg', width=64, height=64),
        dict(id=2, file_name='00006.jpg', width=64, height=64),
    ]
    # VOC 1-based (11, 21, 30, 50) -> 0-based [10, 20, 29, 49] -> x, y, w, h
    assert coco['annotations'][:2] == [
        dict(id=1, image_id=1, category_id=1, iscrowd=0,
             bbox=[10, 20, 19, 29], area=19 * 29),
        dict(id=2, image_id=1, category_id=8, iscrowd=1,  # <difficult>
             bbox=[0, 0, 63, 7.5], area=63 * 7.5),
    ]
    assert {a['image_id'] for a in coco['annotations'][2:]} == {2}
    assert [a['id'] for a in coco['annotations']] == \
        list(range(1, len(coco['annotations']) + 1))


def test_dior_splits_are_merged_in_order(dior):
    coco = dior_to_coco(dior, ['train', 'val'])
    assert [i['file_name'] for i in coco['images']] == \
        ['00001.jpg', '00003.jpg', '00002.jpg', '00004.jpg']


@requires_mmrotate
def test_dior_obb_json_has_polygon_and_enclosing_bbox(tmp_path):
    from ..test_datasets.test_dior_r import make_dior_r

    root = make_dior_r(str(tmp_path / 'DIOR'))
    coco = dior_to_coco(root, ['train'], oriented=True)
    assert [i['file_name'] for i in coco['images']] == \
        ['00001.jpg', '00003.jpg']
    first, rotated = coco['annotations'][:2]
    assert first == dict(
        id=1, image_id=1, category_id=1, iscrowd=0, bbox=[10, 10, 20, 10],
        area=200, segmentation=[[10, 10, 30, 10, 30, 20, 10, 20]])
    # a 45-degree rectangle of sides 20 sqrt(2) and 10 sqrt(2)
    assert rotated['bbox'] == [22.5, 20, 30, 30]
    assert rotated['area'] == pytest.approx(400)
    assert rotated['segmentation'] == [[32.5, 20, 52.5, 40, 42.5, 50, 22.5,
                                        30]]
    assert (rotated['category_id'], rotated['iscrowd']) == (8, 1)
    # corners past the border: the bbox is clipped, the polygon is not
    test = dior_to_coco(root, ['test'], oriented=True)
    assert test['annotations'][0] == dict(
        id=1, image_id=1, category_id=19, iscrowd=0, bbox=[0, 2, 6, 10],
        area=100, segmentation=[[-4, 2, 6, 2, 6, 12, -4, 12]])


def test_dota_json_has_polygon_bbox_and_difficulty_as_iscrowd(tmp_path):
    root = make_dota_split(str(tmp_path), PATCHES)
    coco = dota_to_coco(osp.join(root, 'train'), (SIZE, SIZE))
    assert coco['categories'] == [
        dict(id=i + 1, name=name) for i, name in enumerate(DOTA_CLASSES)
    ]
    assert coco['images'] == [
        dict(id=i + 1, file_name=f'P000{i}__64__0___0.png', width=SIZE,
             height=SIZE) for i in range(3)
    ]
    assert coco['annotations'] == [
        dict(id=1, image_id=1, category_id=7, iscrowd=0, bbox=[5, 5, 10, 4],
             area=40, segmentation=[[5, 5, 15, 5, 15, 9, 5, 9]]),
        dict(id=2, image_id=2, category_id=1, iscrowd=0,
             bbox=[10, 10, 20, 10], area=200,
             segmentation=[[10, 10, 30, 10, 30, 20, 10, 20]]),
        # past the patch's bottom: bbox clipped to y = 64
        dict(id=3, image_id=2, category_id=5, iscrowd=0,
             bbox=[40.5, 40, 19.5, 24], area=19.5 * 30,
             segmentation=[[40.5, 40, 60, 40, 60, 70, 40.5, 70]]),
    ]
    ignored = dota_to_coco(osp.join(root, 'train'), (SIZE, SIZE), diff_thr=1)
    assert [a['iscrowd'] for a in ignored['annotations']] == [0, 0, 1]


def test_bad_input_is_refused_with_the_loader_error(dior):
    path = osp.join(dior, ANN_DIR, '00003.xml')
    write_voc(path, [('airplane', (3, 3, 9, 9)),
                     ('expressway-service-area', (3, 3, 9, 9))])
    with pytest.raises(ValueError) as loader_error:
        DIORDataset(data_root=dior, ann_file='ImageSets/Main/train.txt',
                    img_subdir='JPEGImages-trainval',
                    data_prefix=dict(sub_data_root=''), pipeline=[])
    with pytest.raises(ValueError) as converter_error:
        dior_to_coco(dior, ['train'])
    assert str(converter_error.value) == str(loader_error.value)
    assert str(loader_error.value).startswith(
        "00003.jpg: object 1 has class 'expressway-service-area'")
    with pytest.raises(FileNotFoundError, match=r"'.*trainval\.txt' not "
                       'found: expected DIOR as released'):
        dior_to_coco(dior, ['trainval'])


def test_clipped_boxes_are_counted_in_one_warning(dior, logged):  # noqa: F811
    write_voc(osp.join(dior, ANN_DIR, '00005.xml'),
              [('airplane', (0, 5, 70, 20)), ('ship', (60, 60, 66, 66))])
    coco = dior_to_coco(dior, ['test'])
    assert [a['bbox'] for a in coco['annotations'][:2]] == \
        [[0, 4, 63, 15], [59, 59, 4, 4]]
    assert [r.getMessage() for r in logged if r.levelname == 'WARNING'] == [
        'dior_to_coco: clipped 2 boxes in 1 annotation files to their image '
        '(they extended beyond it), e.g. object 0 in '
        f'{osp.join(dior, ANN_DIR, "00005.xml")}'
    ]


def test_cli_and_dior_coco_config_round_trip(dior, capsys):
    from mmdet.evaluation import CocoMetric
    from mmdet.registry import DATASETS

    # one box beyond the border: CocoDataset must read it clipped, too
    write_voc(osp.join(dior, ANN_DIR, '00006.xml'),
              [('ship', (50, 50, 70, 60)), ('vehicle', (3, 3, 9, 9))])
    for splits, name in ((['train', 'val'], 'trainval'), (['test'], 'test')):
        convert_to_coco.main(['dior', dior, '--split', *splits, '--out',
                              osp.join(dior, 'coco', f'{name}.json')])
    with open(osp.join(dior, 'coco', 'test.json')) as f:
        num_objects = len(json.load(f)['annotations'])
    assert capsys.readouterr().out.splitlines()[-1] == (
        f'wrote 2 images and {num_objects} objects to '
        f'{osp.join(dior, "coco", "test.json")}')

    datasets = {}
    for config in ('dior.py', 'dior_coco.py'):
        cfg = Config.fromfile(
            osp.join(REPO, 'configs', '_base_', 'datasets', config))
        train = cfg.train_dataloader.dataset
        for dataset in (*train.get('datasets', [train]),
                        cfg.val_dataloader.dataset):
            dataset.update(data_root=dior, pipeline=[])
        with DefaultScope.overwrite_default_scope('mmdet'):
            datasets[config] = [
                DATASETS.build(cfg.train_dataloader.dataset),
                DATASETS.build(cfg.val_dataloader.dataset)
            ]
    assert tuple(cfg.train_dataloader.dataset.metainfo.classes) == \
        DIOR_CLASSES
    assert cfg.val_evaluator.ann_file == 'data/DIOR/coco/test.json'

    def contents(dataset):
        return [(osp.normpath(info['img_path']), info['height'],
                 info['width'], [(i['bbox'], i['bbox_label'],
                                  i['ignore_flag'])
                                 for i in info['instances']])
                for info in (dataset.get_data_info(i)
                             for i in range(len(dataset)))]

    for xml, coco in zip(datasets['dior.py'], datasets['dior_coco.py']):
        assert len(coco) == len(xml) > 0
        assert contents(coco) == contents(xml)
    test_boxes = contents(datasets['dior_coco.py'][1])[1][3]
    assert test_boxes[0] == ([49, 49, 63, 59], 13, 0)

    # CocoMetric on the converted json scores the XML loader's boxes as
    # perfect detections
    metric = CocoMetric(ann_file=osp.join(dior, 'coco', 'test.json'),
                        metric='bbox')
    metric.dataset_meta = dict(classes=DIOR_CLASSES)
    coco_test = datasets['dior_coco.py'][1]
    for index, info in enumerate(contents(datasets['dior.py'][1])):
        boxes = torch.tensor([box for box, _, _ in info[3]], dtype=float)
        metric.process({}, [dict(
            img_id=coco_test.get_data_info(index)['img_id'],
            ori_shape=(64, 64),
            pred_instances=dict(
                bboxes=boxes, scores=torch.ones(len(boxes)),
                labels=torch.tensor([label for _, label, _ in info[3]])))])
    results = metric.compute_metrics(metric.results)
    assert results['bbox_mAP_50'] == pytest.approx(1.0)
    assert results['bbox_mAP'] == pytest.approx(1.0)


def test_dota_border_patch_keeps_its_own_size(tmp_path):
    """img_split --no-padding: a scene's border patch is smaller than the
    split size; a larger one is refused."""
    import mmcv
    import numpy as np
    root = make_dota_split(str(tmp_path), PATCHES)
    split = osp.join(root, 'train')
    image = osp.join(split, 'images', 'P0001__64__0___0.png')
    mmcv.imwrite(np.zeros((48, 50, 3), np.uint8), image)
    coco = dota_to_coco(split, (SIZE, SIZE))
    assert [(i['file_name'], i['height'], i['width'])
            for i in coco['images']] == [
                ('P0000__64__0___0.png', SIZE, SIZE),
                ('P0001__64__0___0.png', 48, 50),
                ('P0002__64__0___0.png', SIZE, SIZE)]
    # clipped to the patch's own border now: x to 50, y to 48
    assert coco['annotations'][2]['bbox'] == [40.5, 40, 9.5, 8]
    mmcv.imwrite(np.zeros((SIZE, 65, 3), np.uint8), image)
    with pytest.raises(ValueError, match=re.escape(
            f'larger than img_shape (64, 64) (height, width), or not '
            f'images:\n  {image} is (64, 65)')):
        dota_to_coco(split, (SIZE, SIZE))


def test_dota_conversion_checks_the_patches_as_the_loader(tmp_path):
    """A missing image and a raw (unsplit) label file are refused as
    DOTAPatchDataset refuses them, naming the file."""
    root = make_dota_split(str(tmp_path), PATCHES)
    split = osp.join(root, 'train')
    missing = osp.join(split, 'images', 'P0001__64__0___0.png')
    os.remove(missing)
    with pytest.raises(FileNotFoundError,
                       match=rf'1 of 3 DOTA patch images not found:\n  '
                       rf'{re.escape(missing)}\n'):
        dota_to_coco(split, (SIZE, SIZE))
    root = make_dota_split(str(tmp_path / 'raw'), PATCHES)
    split = osp.join(root, 'train')
    label = osp.join(split, 'annfiles', 'P0000__64__0___0.txt')
    with open(label) as f:
        lines = f.read()
    with open(label, 'w') as f:
        f.write('imagesource:GoogleEarth\ngsd:0.146343590398\n' + lines)
    with pytest.raises(ValueError, match=rf"{re.escape(label)}: line 1 "
                       r"'imagesource:GoogleEarth' is the header of a raw "
                       r'DOTA label file .*img_split\.py'):
        dota_to_coco(split, (SIZE, SIZE))


@requires_mmrotate
def test_cli_converts_dota_and_dior_obb(tmp_path):
    from ..test_datasets.test_dior_r import make_dior_r

    root = make_dota_split(str(tmp_path / 'split_ss_dota'), PATCHES, 'val')
    out = str(tmp_path / 'val.json')
    convert_to_coco.main(['dota', root, '--split', 'val', '--out', out,
                          '--patch-size', str(SIZE), '--diff-thr', '1'])
    with open(out) as f:
        coco = json.load(f)
    assert coco == dota_to_coco(osp.join(root, 'val'), (SIZE, SIZE), 1)
    assert coco['images'][0]['width'] == SIZE

    dior = make_dior_r(str(tmp_path / 'DIOR'))
    out = str(tmp_path / 'obb.json')
    convert_to_coco.main(['dior-obb', dior, '--out', out])  # --split test
    with open(out) as f:
        coco = json.load(f)
    assert coco['annotations'][0]['segmentation'] == \
        [[-4, 2, 6, 2, 6, 12, -4, 12]]


def test_cli_refuses_several_dota_splits(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        convert_to_coco.main(['dota', str(tmp_path), '--split', 'train',
                              'val', '--out', str(tmp_path / 'x.json')])
    assert exit_.value.code == 2
    assert 'dota: --split takes one split folder' in capsys.readouterr().err
