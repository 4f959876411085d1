"""DIORDataset reads DIOR's released layout and refuses unknown classes."""
import os.path as osp

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
