"""make_synthetic_dior writes a learnable, deterministic DIOR look-alike."""
import glob
import hashlib
import importlib.util
import math
import os
import os.path as osp
import time
import xml.etree.ElementTree as ET

import cv2
import numpy as np
import pytest

from ds2d2_mmrazor.datasets.dior import DIOR_CLASSES, DIORDataset
from synthetic.data import SYNTHETIC_CLASSES, make_synthetic_dior

from ..conftest import requires_mmrotate

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
HBB = osp.join('Annotations', 'Horizontal Bounding Boxes')
OBB = osp.join('Annotations', 'Oriented Bounding Boxes')
CORNERS = ('left_top', 'right_top', 'right_bottom', 'left_bottom')


@pytest.fixture(scope='module')
def default(tmp_path_factory):
    """The default dataset, its summary and how long it took."""
    root = str(tmp_path_factory.mktemp('synthetic') / 'DIOR')
    start = time.perf_counter()
    summary = make_synthetic_dior(root)
    return root, summary, time.perf_counter() - start


def read_split(root, split):
    with open(osp.join(root, 'ImageSets', 'Main', f'{split}.txt')) as f:
        return f.read().split()


def read_annotations(root):
    """{id: (split, image, hbb objects, obb objects)} of every image."""
    annotations = {}
    for split in ('train', 'val', 'test'):
        folder = 'JPEGImages-test' if split == 'test' else \
            'JPEGImages-trainval'
        for img_id in read_split(root, split):
            image = cv2.imread(osp.join(root, folder, f'{img_id}.jpg'))
            hbb = ET.parse(osp.join(root, HBB, f'{img_id}.xml')).getroot()
            obb = ET.parse(osp.join(root, OBB, f'{img_id}.xml')).getroot()
            for ann in (hbb, obb):
                assert ann.findtext('filename') == f'{img_id}.jpg'
                assert [int(ann.find('size').findtext(k)) for k in
                        ('height', 'width', 'depth')] == list(image.shape)
            hboxes = [(o.findtext('name'),
                       [int(o.find('bndbox').findtext(k))
                        for k in ('xmin', 'ymin', 'xmax', 'ymax')])
                      for o in hbb.findall('object')]
            oboxes = [(o.findtext('name'),
                       np.array([[float(o.find('robndbox').findtext(
                           f'{axis}_{corner}')) for axis in 'xy']
                           for corner in CORNERS]),
                       float(o.findtext('angle')))
                      for o in obb.findall('object')]
            annotations[img_id] = (split, image, hboxes, oboxes)
    return annotations


def file_hashes(root):
    hashes = {}
    for path in sorted(glob.glob(osp.join(root, '**', '*'), recursive=True)):
        if osp.isfile(path):
            with open(path, 'rb') as f:
                hashes[osp.relpath(path, root)] = hashlib.sha256(
                    f.read()).hexdigest()
    return hashes


def test_writes_dior_release_layout(default):
    root, summary, _ = default
    assert sorted(os.listdir(root)) == [
        'Annotations', 'ImageSets', 'JPEGImages-test', 'JPEGImages-trainval']
    ids = {split: read_split(root, split) for split in ('train', 'val',
                                                        'test')}
    assert {k: len(v) for k, v in ids.items()} == summary['images'] == dict(
        train=32, val=32, test=16)
    trainval = sorted(ids['train'] + ids['val'])
    # DIOR's numbering: trainval first, then test; 5 digits, unique
    assert trainval == [f'{i:05d}' for i in range(1, 65)]
    assert ids['test'] == [f'{i:05d}' for i in range(65, 81)]
    listing = {
        'JPEGImages-trainval': [f'{i}.jpg' for i in trainval],
        'JPEGImages-test': [f'{i}.jpg' for i in ids['test']],
        HBB: [f'{i}.xml' for i in trainval + ids['test']],
        OBB: [f'{i}.xml' for i in trainval + ids['test']],
    }
    for folder, names in listing.items():
        assert sorted(os.listdir(osp.join(root, folder))) == names
    assert sorted(os.listdir(osp.join(root, 'ImageSets', 'Main'))) == [
        'test.txt', 'train.txt', 'val.txt']
    assert all(osp.exists(p) for p in summary['paths'].values())
    # no partial folder left beside it
    assert os.listdir(osp.dirname(root)) == ['DIOR']


def test_boxes_are_valid_and_hbb_is_the_hull_of_the_obb(default):
    root, summary, _ = default
    annotations = read_annotations(root)
    num_objects = 0
    for img_id, (_, image, hboxes, oboxes) in annotations.items():
        height, width = image.shape[:2]
        assert [n for n, _ in hboxes] == [n for n, _, _ in oboxes]
        for (name, (x1, y1, x2, y2)), (_, corners, angle) in zip(hboxes,
                                                                oboxes):
            assert name in SYNTHETIC_CLASSES
            # 1-based, inside the image, at least 2 px each way
            assert 1 <= x1 < x2 <= width and 1 <= y1 < y2 <= height
            assert 0 <= corners.min() and corners[:, 0].max() <= width
            assert corners[:, 1].max() <= height
            # HBB [x1 - 1, x2] (continuous) is the corners' hull, to 1 px
            lo, hi = corners.min(axis=0), corners.max(axis=0)
            assert np.all(np.array([x1 - 1, y1 - 1]) <= lo + 1e-6)
            assert np.all(lo < np.array([x1 - 1, y1 - 1]) + 1)
            assert np.all(hi <= np.array([x2, y2]) + 1e-6)
            assert np.all(np.array([x2, y2]) - 1 < hi)
            # a rectangle whose top edge points along the angle
            top, side = corners[1] - corners[0], corners[3] - corners[0]
            assert np.allclose(corners[2], corners[1] + side, atol=0.15)
            assert abs(top @ side) <= 0.15 * (np.linalg.norm(top) +
                                              np.linalg.norm(side))
            assert 0 <= angle < 180
            direction = math.degrees(math.atan2(top[1], top[0])) % 180
            assert min(abs(direction - angle),
                       180 - abs(direction - angle)) < 1
            num_objects += 1
    assert num_objects == sum(summary['objects'].values()) == sum(
        summary['objects_per_class'].values())


def test_dense_small_objects_of_every_class(default):
    root, summary, _ = default
    annotations = read_annotations(root)
    counts = [len(h) for _, _, h, _ in annotations.values()]
    assert summary['objects_per_image'] == dict(
        min=min(counts), mean=pytest.approx(np.mean(counts)),
        max=max(counts))
    assert max(counts) >= 15 and np.mean(counts) >= 6
    assert summary['empty_images'] == counts.count(0)
    assert 1 <= counts.count(0) <= 0.1 * len(counts)
    assert any(not h for split, _, h, _ in annotations.values()
               if split == 'test')
    for split in ('train', 'val', 'test'):
        names = {n for s, _, h, _ in annotations.values() if s == split
                 for n, _ in h}
        assert names == set(SYNTHETIC_CLASSES), split
    per_class = {c: 0 for c in SYNTHETIC_CLASSES}
    for _, _, h, _ in annotations.values():
        for name, _ in h:
            per_class[name] += 1
    assert summary['objects_per_class'] == per_class
    assert min(per_class.values()) >= 20
    # sizes: the OBB's short side from ~3-4 px (vehicles), long side to 40
    sides = np.array([sorted(np.linalg.norm(c[[1, 3]] - c[0], axis=1))
                      for _, _, _, o in annotations.values()
                      for _, c, _ in o])
    assert 3 <= sides[:, 0].min() <= 4.5
    assert 36 <= sides[:, 1].max() <= 41


def test_some_objects_are_rotated(default):
    angles = np.array([a for _, _, _, o in read_annotations(
        default[0]).values() for _, _, a in o])
    rotated = np.min(np.abs(angles[:, None] - [0, 90, 180]), axis=1) > 5
    assert 0.2 < rotated.mean() < 0.9


def test_objects_barely_overlap(default):
    for _, image, _, oboxes in read_annotations(default[0]).values():
        masks = []
        for _, corners, _ in oboxes:
            mask = np.zeros(image.shape[:2], np.uint8)
            cv2.fillPoly(mask, [np.round((corners - 0.5) * 16).astype(
                np.int32)], 1, cv2.LINE_8, 4)
            masks.append(mask.astype(bool))
        for i in range(len(masks)):
            for j in range(i):
                shared = np.sum(masks[i] & masks[j])
                assert shared <= 0.15 * min(masks[i].sum(),
                                            masks[j].sum()) + 1


def test_objects_stand_out_from_their_surroundings(default):
    """Mean absolute difference between a box's pixels and the mean colour
    of the 2-px ring around it: objects against random boxes of the same
    images' ground (the images without objects)."""

    def contrast(image, x1, y1, x2, y2):
        image = image.astype(np.float64)
        h, w = image.shape[:2]
        inner = image[y1:y2, x1:x2]
        outer = image[max(0, y1 - 2):y2 + 2, max(0, x1 - 2):x2 + 2]
        ring = (outer.sum((0, 1)) - inner.sum((0, 1))) / (
            outer.shape[0] * outer.shape[1] - inner.shape[0] *
            inner.shape[1])
        return np.abs(inner - ring).mean()

    annotations = read_annotations(default[0])
    per_class = {}
    ground = []
    rng = np.random.default_rng(0)
    for _, image, hboxes, _ in annotations.values():
        for name, (x1, y1, x2, y2) in hboxes:
            per_class.setdefault(name, []).append(
                contrast(image, x1 - 1, y1 - 1, x2, y2))
        if not hboxes:
            for _ in range(20):
                side = int(rng.integers(4, 30))
                x1, y1 = rng.integers(2, image.shape[0] - side - 2, 2)
                ground.append(contrast(image, x1, y1, x1 + side, y1 + side))
    background = np.median(ground)
    assert background < 12
    for name, values in per_class.items():
        assert np.median(values) > max(25, 3 * background), name
        assert np.percentile(values, 10) > 1.5 * background, name


def test_same_seed_same_bytes_other_seed_other_data(default, tmp_path):
    root, summary, _ = default
    again = make_synthetic_dior(str(tmp_path / 'again'))
    hashes = file_hashes(root)
    assert file_hashes(str(tmp_path / 'again')) == hashes
    assert {k: v for k, v in again.items() if k not in ('out_dir', 'paths')
            } == {k: v for k, v in summary.items()
                  if k not in ('out_dir', 'paths')}
    small = dict(num_trainval=6, num_test=2)
    make_synthetic_dior(str(tmp_path / 'seed0'), seed=0, **small)
    make_synthetic_dior(str(tmp_path / 'seed1'), seed=1, **small)
    hashes, other = (file_hashes(str(tmp_path / f'seed{i}')) for i in (0, 1))
    assert other.keys() == hashes.keys()
    images = [k for k in hashes if k.endswith('.jpg')]
    assert len(images) == 8
    assert all(other[k] != hashes[k] for k in images)


def test_default_generation_takes_seconds(default):
    assert default[2] < 60


def test_diordataset_reads_what_was_written(default):
    root, summary, _ = default
    annotations = read_annotations(root)
    for split, folder in (('train', 'JPEGImages-trainval'),
                          ('test', 'JPEGImages-test')):
        dataset = DIORDataset(
            data_root=root, ann_file=f'ImageSets/Main/{split}.txt',
            img_subdir=folder, ann_subdir=HBB,
            data_prefix=dict(sub_data_root=''), pipeline=[], test_mode=True)
        assert len(dataset) == summary['images'][split]
        for index in range(len(dataset)):
            info = dataset.get_data_info(index)
            _, image, hboxes, _ = annotations[info['img_id']]
            assert osp.isfile(info['img_path'])
            assert (info['height'], info['width']) == image.shape[:2]
            assert [(DIOR_CLASSES[i['bbox_label']], i['bbox'])
                    for i in info['instances']] == [
                        (name, [v - 1 for v in box]) for name, box in hboxes]


@requires_mmrotate
def test_mmrotate_diordataset_reads_the_oriented_boxes(default):
    from mmrotate.datasets import DIORDataset as RotatedDIORDataset
    root = default[0]
    annotations = read_annotations(root)
    dataset = RotatedDIORDataset(
        data_root=root, ann_file='ImageSets/Main/val.txt', ann_subdir=OBB,
        data_prefix=dict(img_path='JPEGImages-trainval'), pipeline=[],
        test_mode=True)
    assert len(dataset) == 32
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        oboxes = annotations[info['img_id']][3]
        assert len(info['instances']) == len(oboxes)
        for instance, (name, corners, _) in zip(info['instances'], oboxes):
            assert dataset.metainfo['classes'][instance['bbox_label']] == name
            assert np.allclose(instance['bbox'], corners.ravel(), atol=1e-4)


def test_classes_and_sizes_are_arguments(tmp_path):
    root = str(tmp_path / 'two')
    summary = make_synthetic_dior(root, num_trainval=6, num_test=3,
                                  image_size=96, classes=('ship', 'vehicle'),
                                  max_objects=5, seed=3)
    assert summary['images'] == dict(train=3, val=3, test=3)
    assert list(summary['objects_per_class']) == ['ship', 'vehicle']
    assert min(summary['objects_per_class'].values()) > 0
    assert summary['objects_per_image']['max'] <= 5
    annotations = read_annotations(root)
    assert {image.shape for _, image, _, _ in annotations.values()} == {
        (96, 96, 3)}
    assert {n for _, _, h, _ in annotations.values() for n, _ in h} == {
        'ship', 'vehicle'}


def test_bad_arguments_are_refused_naming_the_fix(tmp_path):
    (tmp_path / 'full').mkdir()
    (tmp_path / 'full' / 'keep.txt').write_text('x')
    with pytest.raises(FileExistsError, match='not an empty folder'):
        make_synthetic_dior(str(tmp_path / 'full'))
    with pytest.raises(ValueError, match=r"\['bridge'\] have no drawing"):
        make_synthetic_dior(str(tmp_path / 'a'), classes=('ship', 'bridge'))
    with pytest.raises(ValueError, match=r"\['Ship'\] are not DIOR class"):
        make_synthetic_dior(str(tmp_path / 'a'), classes=('Ship',))
    with pytest.raises(ValueError, match='image_size=32: expected >= 64'):
        make_synthetic_dior(str(tmp_path / 'a'), image_size=32)
    assert sorted(os.listdir(tmp_path)) == ['full']


def test_failure_leaves_nothing_behind(tmp_path, monkeypatch):
    from synthetic import data as synthetic
    calls = []

    def failing_encode(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise OSError('disk full')
        return cv2.imencode(*args, **kwargs)

    monkeypatch.setattr(synthetic.cv2, 'imencode', failing_encode)
    with pytest.raises(OSError, match='disk full'):
        make_synthetic_dior(str(tmp_path / 'out'), num_trainval=4,
                            num_test=2)
    assert os.listdir(tmp_path) == []


def test_tool_writes_the_same_files_and_prints_a_table(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location(
        'make_synthetic_dior_tool',
        osp.join(REPO, 'tools', 'make_synthetic_dior.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = str(tmp_path / 'cli')
    summary = tool.main([out, '--num-trainval', '6', '--num-test', '3',
                         '--image-size', '96', '--seed', '5'])
    make_synthetic_dior(str(tmp_path / 'api'), num_trainval=6, num_test=3,
                        image_size=96, seed=5)
    assert file_hashes(out) == file_hashes(str(tmp_path / 'api'))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ['split', 'images', 'objects']
    assert lines[1].split() == ['train', '3', str(summary['objects']['train'])]
    assert lines[3].split() == ['test', '3', str(summary['objects']['test'])]
    assert lines[5].split() == [
        'vehicle', str(summary['objects_per_class']['vehicle'])]
    assert lines[-1] == f'written to {out}'
    with pytest.raises(SystemExit, match='not an empty folder'):
        tool.main([out])
