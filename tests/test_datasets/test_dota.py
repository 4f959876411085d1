"""DOTAPatchDataset reads DOTA split patches (MMRotate's img_split) strictly;
the DOTA base config trains on train and evaluates on val.

DOTAPatchDataset is MMRotate's DOTADataset: the module imports it in the
tests, so that it is collected (and skipped) on a stack without MMRotate.
"""
import os
import os.path as osp
import re

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope

from ..conftest import make_dota_split, requires_mmrotate

pytestmark = requires_mmrotate

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SIZE = 64
# known patches (64x64), as img_split writes them: x1 y1 ... x4 y4 class
# difficulty (2: truncated by the patch border)
PATCHES = {
    'P0001__64__0___0': ['10 10 30 10 30 20 10 20 plane 0',
                         '40.5 40 60 40 60 70 40.5 70 small-vehicle 2'],
    'P0000__64__0___0': ['5.0 5.0 15.0 5.0 15.0 9.0 5.0 9.0 ship 1', ''],
    'P0002__64__0___0': [],  # a patch without objects
}


@pytest.fixture
def dota(tmp_path):
    root = str(tmp_path / 'split_ss_dota')
    make_dota_split(root, PATCHES, 'train', SIZE)
    make_dota_split(root, PATCHES, 'val', SIZE)
    return root


def build(root, split='train', **kwargs):
    from ds2d2_mmrazor.datasets import DOTAPatchDataset
    kwargs.setdefault('ann_file', f'{split}/annfiles/')
    kwargs.setdefault('img_shape', (SIZE, SIZE))
    return DOTAPatchDataset(
        data_root=root, data_prefix=dict(img_path=f'{split}/images/'),
        pipeline=[], test_mode=True, **kwargs)


def test_registered_in_mmrotate_with_its_classes():
    from mmrotate.registry import DATASETS

    from ds2d2_mmrazor.datasets import DOTA_CLASSES, DOTAPatchDataset
    assert DATASETS.get('DOTAPatchDataset') is DOTAPatchDataset
    assert len(DOTA_CLASSES) == 15 and DOTA_CLASSES[0] == 'plane'
    # written out (the COCO conversion needs no MMRotate), in its order
    assert DOTA_CLASSES == tuple(DOTAPatchDataset.METAINFO['classes'])


def test_reads_patches_in_order_with_corners_as_written(dota):
    dataset = build(dota)
    assert [dataset.get_data_info(i)['img_id'] for i in range(3)] == \
        sorted(PATCHES)
    info = dataset.get_data_info(1)
    assert info['img_path'] == osp.join(dota, 'train', 'images',
                                        'P0001__64__0___0.png')
    assert (info['height'], info['width']) == (SIZE, SIZE)
    assert info['instances'] == [
        dict(bbox=[10, 10, 30, 10, 30, 20, 10, 20], bbox_label=0,
             ignore_flag=0),
        # corners past the patch border are kept; no difficulty ignored
        dict(bbox=[40.5, 40, 60, 40, 60, 70, 40.5, 70], bbox_label=4,
             ignore_flag=0),
    ]
    assert dataset.get_data_info(0)['instances'] == [
        dict(bbox=[5, 5, 15, 5, 15, 9, 5, 9], bbox_label=6, ignore_flag=0)
    ]
    assert dataset.get_data_info(2)['instances'] == []


def test_difficulty_above_diff_thr_is_ignored(dota):
    dataset = build(dota, diff_thr=1)
    assert [i['ignore_flag'] for i in
            dataset.get_data_info(1)['instances']] == [0, 1]
    assert dataset.get_data_info(0)['instances'][0]['ignore_flag'] == 0


@pytest.mark.parametrize('line, problem', [
    ('1 1 9 1 9 9 1 9 ship', 'has 9 fields, expected 10: x1 y1 x2 y2 x3 y3 '
     'x4 y4 class difficulty'),
    ('1 1 9 1 9 9 1 x9 ship 0', "has non-numeric coordinates ['1', '1', "
     "'9', '1', '9', '9', '1', 'x9']"),
    ('1 1 9 1 9 9 1 9 Ship 0', "has class 'Ship', which is not one of the "
     "dataset classes ('plane', "),
    ('1 1 9 1 9 9 1 9 ship -1', "has difficulty '-1': expected a "
     'non-negative integer'),
    ('1 1 9 1 9 1 1 1 ship 0', r'has a degenerate (zero-area) quadrilateral '
     '[1.0, 1.0, 9.0, 1.0, 9.0, 1.0, 1.0, 1.0]'),
    ('-9 1 -1 1 -1 9 -9 9 ship 0', 'has quadrilateral [-9.0, 1.0, -1.0, '
     '1.0, -1.0, 9.0, -9.0, 9.0] outside the 64x64 image'),
])
def test_bad_line_is_an_error_naming_file_and_line(tmp_path, line, problem):
    root = make_dota_split(str(tmp_path), {
        'P0000__64__0___0': ['1 1 9 1 9 9 1 9 ship 0', '', line]}, size=SIZE)
    path = osp.join(root, 'train', 'annfiles', 'P0000__64__0___0.txt')
    with pytest.raises(ValueError, match='^' + re.escape(
            f'{path}: line 3 {problem}')):
        build(root)


@pytest.mark.parametrize('header, first', [
    (['imagesource:GoogleEarth', 'gsd:0.146343590398'],
     "line 1 'imagesource:GoogleEarth'"),
    (['', 'gsd:null'], "line 2 'gsd:null'"),
])
def test_raw_label_file_is_an_error_giving_the_split_command(
        tmp_path, header, first):
    from ds2d2_mmrazor.datasets.dota_patches import SPLIT_COMMAND
    root = make_dota_split(str(tmp_path), {  # a scene's labelTxt file
        'P0000': header + ['10 10 30 10 30 20 10 20 plane 0']}, size=SIZE)
    path = osp.join(root, 'train', 'annfiles', 'P0000.txt')
    with pytest.raises(ValueError, match='^' + re.escape(
            f'{path}: {first} is the header of a raw DOTA label file '
            '(labelTxt/): the scenes are not split into patches. Split '
            "them first with MMRotate's img_split.py")) as error:
        build(root)
    assert f'\n{SPLIT_COMMAND}\nthen set ann_file to' in str(error.value)
    # the command the docs give
    with open(osp.join(REPO, 'docs', 'datasets.md')) as f:
        assert SPLIT_COMMAND in f.read()


def test_border_patch_loads_at_its_own_size(dota):
    """img_split --no-padding leaves a scene's border patches smaller than
    the split size: each keeps its size, and its boxes are checked against
    it."""
    import mmcv
    import numpy as np
    images = osp.join(dota, 'train', 'images')
    mmcv.imwrite(np.zeros((48, 40, 3), np.uint8),
                 osp.join(images, 'P0002__64__0___0.png'))
    mmcv.imwrite(np.zeros((48, SIZE, 3), np.uint8),  # box 2: y 40..70
                 osp.join(images, 'P0001__64__0___0.png'))
    for ann_file in ('train/annfiles/', ''):  # unannotated patches too
        dataset = build(dota, ann_file=ann_file)
        assert [(info['img_id'], info['height'], info['width'])
                for info in map(dataset.get_data_info, range(3))] == [
                    ('P0000__64__0___0', SIZE, SIZE),
                    ('P0001__64__0___0', 48, SIZE),
                    ('P0002__64__0___0', 48, 40)]
    assert dataset.img_shape == (SIZE, SIZE)
    # a box entirely outside its (smaller) patch is refused, naming it
    mmcv.imwrite(np.zeros((32, SIZE, 3), np.uint8),
                 osp.join(images, 'P0001__64__0___0.png'))
    txt = osp.join(dota, 'train', 'annfiles', 'P0001__64__0___0.txt')
    with pytest.raises(ValueError, match='^' + re.escape(
            f'{txt}: line 2 has quadrilateral [40.5, 40.0, 60.0, 40.0, 60.0, '
            '70.0, 40.5, 70.0] outside the')):
        build(dota)


@pytest.mark.parametrize('img_shape', [(64, ), (64, 0), (64.0, 64)])
def test_bad_img_shape_is_an_error(dota, img_shape):
    with pytest.raises(ValueError, match=re.escape(
            "DOTAPatchDataset: img_shape must be the split's patch (height, "
            f'width), two positive integers, got {img_shape!r}')):
        build(dota, img_shape=img_shape)


def test_larger_patch_or_non_image_is_an_error_naming_it(dota):
    import mmcv
    import numpy as np
    images = osp.join(dota, 'train', 'images')
    large = osp.join(images, 'P0001__64__0___0.png')
    mmcv.imwrite(np.zeros((80, SIZE, 3), np.uint8), large)  # 80 high
    broken = osp.join(images, 'P0002__64__0___0.png')
    with open(broken, 'wb') as f:
        f.write(b'not a png')
    with pytest.raises(ValueError, match='^' + re.escape(
            '2 of 3 DOTA patch images are larger than img_shape (64, 64) '
            f'(height, width), or not images:\n  {large} is (80, 64)\n  '
            f'{broken} is not an image (cannot identify image file')) \
            as error:
        build(dota)
    assert str(error.value).endswith(
        "set img_shape to the patch size the split was cut with "
        "(img_split.py's --sizes); raw DOTA scenes must be split first "
        '(docs/datasets.md, "DOTA v1.0")')
    # unannotated test patches too
    with pytest.raises(ValueError, match=re.escape(f'{large} is (80, 64)')):
        build(dota, ann_file='')


def test_missing_images_are_an_error_naming_them(dota):
    images = osp.join(dota, 'train', 'images')
    missing = osp.join(images, 'P0001__64__0___0.png')
    os.remove(missing)
    with pytest.raises(FileNotFoundError, match='^' + re.escape(
            f'1 of 3 DOTA patch images not found:\n  {missing}\neach '
            'annfiles/<patch id>.txt needs images/<patch id>.png: set '
            "data_prefix['img_path'] to the images/ folder of the same "
            "split, or re-run MMRotate's img_split.py for this split "
            '(--save-ext .png; docs/datasets.md, "DOTA v1.0")') + '$'):
        build(dota)


def test_errors_list_the_first_problem_files_and_count_all(tmp_path):
    from ds2d2_mmrazor.datasets.dota_patches import MAX_LISTED
    ids = [f'P{i:04d}__64__0___0' for i in range(MAX_LISTED + 2)]
    root = make_dota_split(str(tmp_path), dict.fromkeys(ids, []), size=SIZE)
    for patch_id in ids:
        os.remove(osp.join(root, 'train', 'images', f'{patch_id}.png'))
    with pytest.raises(FileNotFoundError) as error:
        build(root)
    lines = str(error.value).splitlines()
    assert lines[0] == f'{len(ids)} of {len(ids)} DOTA patch images not ' \
        'found:'
    assert lines[1:MAX_LISTED + 2] == [
        '  ' + osp.join(root, 'train', 'images', f'{patch_id}.png')
        for patch_id in ids[:MAX_LISTED]] + ['  ... and 2 more']


def test_missing_or_empty_folders_are_clear_errors(dota):
    from ds2d2_mmrazor.datasets import DOTAPatchDataset
    with pytest.raises(FileNotFoundError,
                       match=r"^DOTA annotation folder '.*test/annfiles/' "
                       r'not found: split DOTA with MMRotate'):
        DOTAPatchDataset(
            data_root=dota, ann_file='test/annfiles/',
            data_prefix=dict(img_path='val/images/'), pipeline=[])
    with pytest.raises(FileNotFoundError,
                       match=r"^DOTAPatchDataset: image folder '.*test/"
                       r"images/' \(data_prefix\['img_path'\]\) not found"):
        build(dota, 'test')
    for name in os.listdir(osp.join(dota, 'val', 'annfiles')):
        os.remove(osp.join(dota, 'val', 'annfiles', name))
    with pytest.raises(ValueError, match='has no .txt file'):
        build(dota, 'val')


def test_unannotated_test_patches_are_listed_as_mmrotate_does(dota):
    from ds2d2_mmrazor.datasets import DOTAPatchDataset
    dataset = DOTAPatchDataset(
        data_root=dota, ann_file='', data_prefix=dict(img_path='val/images/'),
        img_shape=(SIZE, SIZE), pipeline=[], test_mode=True)
    infos = [dataset.get_data_info(i) for i in range(3)]
    assert [info['img_id'] for info in infos] == sorted(PATCHES)
    assert infos[0]['instances'] == [  # MMRotate's placeholder
        dict(bbox=[], bbox_label=[], ignore_flag=0)]
    assert infos[0]['img_path'] == osp.join(dota, 'val', 'images',
                                            'P0000__64__0___0.png')


def test_config_trains_on_train_and_evaluates_on_val(dota):
    from mmrotate.registry import DATASETS
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', '_base_', 'datasets', 'dota.py'))
    assert cfg.val_evaluator.type == 'DOTAMetric'
    assert cfg.train_dataloader.dataset.img_shape == (1024, 1024)
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.dataset.update(data_root=dota, img_shape=(SIZE, SIZE))
    with DefaultScope.overwrite_default_scope('mmrotate'):
        train = DATASETS.build(cfg.train_dataloader.dataset)
        val = DATASETS.build(cfg.val_dataloader.dataset)
    assert train.ann_file == osp.join(dota, 'train/annfiles/')
    assert val.ann_file == osp.join(dota, 'val/annfiles/')
    assert len(train) == 2  # the patch without objects is filtered out
    assert len(val) == 3
    boxes = val[0]['data_samples'].gt_instances.bboxes
    assert type(boxes).__name__ == 'RotatedBoxes'
    cx, cy, w, h, _ = boxes.tensor[0].tolist()  # (5, 5) .. (15, 9)
    assert (cx, cy, w * h) == pytest.approx((10, 7, 40))
