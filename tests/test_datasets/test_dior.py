"""DIORDataset reads DIOR's released layout and refuses unknown classes."""
import os.path as osp
import re

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope

from ds2d2_mmrazor.datasets import DIOR_CLASSES, DIORDataset

from ..conftest import make_dior

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_class_names_are_spelled_as_in_the_release():
    assert len(DIOR_CLASSES) == 20
    assert DIOR_CLASSES[7:9] == ('Expressway-Service-area',
                                 'Expressway-toll-station')
    assert len(DIORDataset.METAINFO['palette']) == 20


@pytest.fixture
def dior(tmp_path):
    return make_dior(str(tmp_path / 'DIOR'), num_trainval=4, num_test=2)


def build(root, split='train', img_subdir='JPEGImages-trainval'):
    return DIORDataset(
        data_root=root, ann_file=f'ImageSets/Main/{split}.txt',
        img_subdir=img_subdir,
        ann_subdir='Annotations/Horizontal Bounding Boxes',
        data_prefix=dict(sub_data_root=''), pipeline=[], test_mode=True)


def test_reads_images_and_boxes_as_written(dior):
    dataset = build(dior)
    assert len(dataset) == 2  # images 00001 and 00003 are in train.txt
    info = dataset.get_data_info(0)
    assert info['img_path'] == osp.join(dior, 'JPEGImages-trainval',
                                        '00001.jpg')
    assert (info['height'], info['width']) == (64, 64)
    import xml.etree.ElementTree as ET
    root = ET.parse(osp.join(dior, 'Annotations',
                             'Horizontal Bounding Boxes', '00001.xml'))
    objects = root.findall('object')
    assert len(info['instances']) == len(objects) > 0
    for obj, inst in zip(objects, info['instances']):
        box = [int(obj.find('bndbox').findtext(k)) - 1
               for k in ('xmin', 'ymin', 'xmax', 'ymax')]  # VOC: 1-based
        assert inst['bbox'] == box
        assert DIOR_CLASSES[inst['bbox_label']] == obj.findtext('name')


def test_test_split_reads_its_own_image_folder(dior):
    dataset = build(dior, 'test', 'JPEGImages-test')
    assert len(dataset) == 2
    assert all(osp.isfile(dataset.get_data_info(i)['img_path'])
               for i in range(2))


def test_unknown_class_name_is_an_error_naming_file_and_object(dior):
    path = osp.join(dior, 'Annotations', 'Horizontal Bounding Boxes',
                    '00001.xml')
    with open(path) as f:
        text = f.read()
    # a lower-cased spelling of a capitalised DIOR class
    first = text.split('<name>')[1].split('</name>')[0]
    with open(path, 'w') as f:
        f.write(text.replace(f'<name>{first}</name>',
                             '<name>expressway-service-area</name>', 1))
    with pytest.raises(ValueError, match=r"00001\.jpg: object 0 has class "
                       r"'expressway-service-area'"):
        build(dior)


def test_config_trains_on_train_plus_val_and_tests_on_test(dior):
    from mmdet.registry import DATASETS
    cfg = Config.fromfile(osp.join(REPO, 'configs', '_base_', 'datasets',
                                   'dior.py'))
    for split in cfg.train_dataloader.dataset.datasets:
        split.data_root = dior
    cfg.val_dataloader.dataset.data_root = dior
    with DefaultScope.overwrite_default_scope('mmdet'):
        train = DATASETS.build(cfg.train_dataloader.dataset)
        test = DATASETS.build(cfg.val_dataloader.dataset)
    assert len(train) == 4 and len(test) == 2
    sample = train[0]
    assert sample['inputs'].shape[0] == 3
    assert len(sample['data_samples'].gt_instances) > 0
    # CocoMetric reads the ground truth from the packed 'instances'
    assert 'instances' in test[0]['data_samples'].metainfo


# -- strictness: every problem names the file (and the object) -------------

ANN_DIR = osp.join('Annotations', 'Horizontal Bounding Boxes')


def write_voc(path, objects, size=64, extra=''):
    """Write a DIOR XML file; ``objects`` are (name, (xmin, ymin, xmax,
    ymax)) pairs or raw ``<object>`` XML strings."""
    parts = []
    for obj in objects:
        if isinstance(obj, tuple):
            name, box = obj
            coords = ''.join(f'<{k}>{v}</{k}>' for k, v in zip(
                ('xmin', 'ymin', 'xmax', 'ymax'), box))
            obj = (f'<object><name>{name}</name><difficult>0</difficult>'
                   f'<bndbox>{coords}</bndbox></object>')
        parts.append(obj)
    with open(path, 'w') as f:
        f.write(f'<annotation><filename>{osp.basename(path)[:-4]}.jpg'
                f'</filename><size><width>{size}</width><height>{size}'
                f'</height><depth>3</depth></size>{extra}{"".join(parts)}'
                '</annotation>')


@pytest.fixture
def logged():
    """Messages logged through the current MMLogger while the test runs."""
    import logging

    from mmengine.logging import MMLogger
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def test_boxes_are_exact_zero_based_and_difficult_is_ignored(dior):
    write_voc(osp.join(dior, ANN_DIR, '00001.xml'), [
        ('airplane', (11, 21, 30, 50)),
        '<object><name>Expressway-Service-area</name><difficult>1'
        '</difficult><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>64</xmax>'
        '<ymax>8.5</ymax></bndbox></object>',
    ])
    info = build(dior).get_data_info(0)
    assert info['instances'] == [
        dict(bbox=[10, 20, 29, 49], bbox_label=0, ignore_flag=0),
        dict(bbox=[0, 0, 63, 7.5], bbox_label=7, ignore_flag=1),
    ]


def test_bbox_min_size_marks_small_boxes_ignored(dior):
    write_voc(osp.join(dior, ANN_DIR, '00001.xml'),
              [('airplane', (11, 21, 30, 50)), ('ship', (1, 1, 5, 40))])
    dataset = DIORDataset(
        data_root=dior, ann_file='ImageSets/Main/train.txt',
        img_subdir='JPEGImages-trainval', data_prefix=dict(sub_data_root=''),
        filter_cfg=dict(bbox_min_size=8), pipeline=[])
    flags = [i['ignore_flag'] for i in dataset.get_data_info(0)['instances']]
    assert flags == [0, 1]  # the ship is 4 px wide


def test_box_partly_outside_is_clipped_with_one_warning(dior, logged):
    write_voc(osp.join(dior, ANN_DIR, '00001.xml'),
              [('airplane', (0, 5, 70, 20)), ('ship', (3, 3, 9, 9))])
    write_voc(osp.join(dior, ANN_DIR, '00003.xml'),
              [('ship', (40, 50, 60, 65))])
    dataset = build(dior)
    assert [i['bbox'] for i in dataset.get_data_info(0)['instances']] == \
        [[0, 4, 63, 19], [2, 2, 8, 8]]
    assert dataset.get_data_info(1)['instances'][0]['bbox'] == \
        [39, 49, 59, 63]
    warnings = [r.getMessage() for r in logged if r.levelname == 'WARNING']
    path = osp.join(dior, ANN_DIR, '00001.xml')
    assert warnings == [
        'DIORDataset: clipped 2 boxes in 2 annotation files to their image '
        f'(they extended beyond it), e.g. object 0 in {path}'
    ]


def test_boxes_inside_log_no_warning(dior, logged):
    build(dior)
    assert not [r for r in logged if r.levelname == 'WARNING']


@pytest.mark.parametrize('box, problem', [
    ((65, 10, 80, 20), r'has box \(xmin, ymin, xmax, ymax\) = '
     r'\(65\.0, 10\.0, 80\.0, 20\.0\) outside the 64x64 image'),
    ((10, 10, 10, 20), r'has an empty box \(xmin, ymin, xmax, ymax\) = '
     r'\(10\.0, 10\.0, 10\.0, 20\.0\): expected xmin < xmax and ymin < ymax'),
    ((10, 30, 20, 12), r'has an empty box'),
])
def test_box_outside_or_empty_is_an_error_naming_file_and_object(
        dior, box, problem):
    path = osp.join(dior, ANN_DIR, '00003.xml')
    write_voc(path, [('ship', (3, 3, 9, 9)), ('airplane', box)])
    with pytest.raises(ValueError) as error:
        build(dior)
    assert error.match(r'^00003\.jpg: object 1 ' + problem)
    assert str(error.value).endswith(f'(annotation file: {path})')


@pytest.mark.parametrize('obj, problem', [
    ('<object><difficult>0</difficult><bndbox><xmin>1</xmin><ymin>1</ymin>'
     '<xmax>9</xmax><ymax>9</ymax></bndbox></object>', 'has no <name>'),
    ('<object><name>ship</name></object>', 'has no <bndbox>'),
    ('<object><name>ship</name><bndbox><xmin>1</xmin><ymin>1</ymin>'
     '<xmax>9</xmax></bndbox></object>', 'has no <bndbox>/<ymax>'),
    ('<object><name>ship</name><bndbox><xmin>1O</xmin><ymin>1</ymin>'
     '<xmax>9</xmax><ymax>9</ymax></bndbox></object>',
     "has a non-numeric <bndbox>/<xmin> '1O'"),
    ('<object><name>ship</name><bndbox><xmin>nan</xmin><ymin>1</ymin>'
     '<xmax>9</xmax><ymax>9</ymax></bndbox></object>',
     "has a non-numeric <bndbox>/<xmin> 'nan'"),
    ('<object><name>ship</name><difficult>yes</difficult><bndbox><xmin>1'
     '</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object>',
     "has <difficult> 'yes': expected 0 or 1"),
])
def test_malformed_object_is_an_error_naming_file_and_object(
        dior, obj, problem):
    path = osp.join(dior, ANN_DIR, '00003.xml')
    write_voc(path, [('ship', (3, 3, 9, 9)), obj])
    with pytest.raises(ValueError) as error:
        build(dior)
    assert str(error.value) == \
        f'00003.jpg: object 1 {problem} (annotation file: {path})'


def test_missing_xml_is_an_error_naming_it(dior):
    import os
    path = osp.join(dior, ANN_DIR, '00003.xml')
    os.remove(path)
    with pytest.raises(ValueError, match=f'^{re.escape(path)}: annotation '
                       'file not found$'):
        build(dior)


@pytest.mark.parametrize('text, problem', [
    ('<annotation><size><width>64</width>', r'not well-formed XML \(.*\)'),
    ('<annotation><filename>00003.jpg</filename></annotation>',
     r'has no <size> \(expected <size><width>W</width><height>H</height>'
     r'</size>\)'),
    ('<annotation><size><width>64</width><height>x</height></size>'
     '</annotation>', "has a non-numeric <size>/<height> 'x'"),
    ('<annotation><size><width>0</width><height>64</height></size>'
     '</annotation>', 'has image size 0.0 x 64.0: expected positive '
     'integers'),
])
def test_malformed_xml_is_an_error_naming_it(dior, text, problem):
    path = osp.join(dior, ANN_DIR, '00003.xml')
    with open(path, 'w') as f:
        f.write(text)
    with pytest.raises(ValueError, match=f'^{re.escape(path)}: {problem}$'):
        build(dior)


@pytest.mark.parametrize('kwargs, what', [
    (dict(split='trainval'), r"split file \(ann_file\) '.*trainval\.txt'"),
    (dict(img_subdir='JPEGImages'), r"image folder \(img_subdir\) "
     r"'.*JPEGImages'"),
])
def test_missing_split_file_or_image_folder_is_a_clear_error(
        dior, kwargs, what):
    with pytest.raises(FileNotFoundError,
                       match=f'^DIORDataset: {what} not found. Put the '
                       'dataset as released under data_root'):
        build(dior, **kwargs)


def test_missing_annotation_folder_is_a_clear_error(dior):
    import os
    os.rename(osp.join(dior, ANN_DIR), osp.join(dior, 'Annotations', 'HBB'))
    with pytest.raises(FileNotFoundError,
                       match=r"annotation folder \(ann_subdir\) "
                       r"'.*Horizontal Bounding Boxes' not found"):
        build(dior)
