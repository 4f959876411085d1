"""draw_detections_side_by_side: DetLocalVisualizer panels in a row."""
import warnings

import mmcv
import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmdet.visualization import DetLocalVisualizer
from mmengine.structures import InstanceData

from ds2d2_mmrazor.visualization import (draw_detections_side_by_side,
                                         title_bar)

CLASSES = ('airplane', 'ship', 'vehicle')


def prediction(boxes, scores, labels) -> DetDataSample:
    sample = DetDataSample()
    sample.pred_instances = InstanceData(
        bboxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        scores=torch.tensor(scores, dtype=torch.float32),
        labels=torch.tensor(labels, dtype=torch.long))
    return sample


@pytest.fixture
def image():
    return np.random.RandomState(0).randint(60, 120, (48, 64, 3), np.uint8)


@pytest.fixture
def predictions():
    return {
        'teacher': prediction([[5, 5, 30, 30]], [0.9], [0]),
        'baseline': prediction([[20, 10, 60, 40]], [0.8], [2]),
        'DS2D2 student': prediction([[6, 6, 31, 29], [20, 10, 60, 40]],
                                    [0.95, 0.1], [0, 1]),
        'nothing confident': prediction([[6, 6, 31, 29]], [0.2], [1]),
    }


def test_panels_side_by_side(image, predictions, tmp_path):
    out = tmp_path / 'detections.png'
    picture = draw_detections_side_by_side(
        image, predictions, str(out), score_thr=0.3, class_names=CLASSES,
        min_width=0)
    bar = title_bar('teacher', 64).shape[0]
    assert picture.shape == (bar + 48, 4 * 64, 3)
    assert picture.dtype == np.uint8
    panels = [picture[bar:, 64 * i:64 * (i + 1)] for i in range(4)]
    for i in range(3):  # the predictions differ, so do the panels
        for j in range(i + 1, 4):
            assert not np.array_equal(panels[i], panels[j]), (i, j)
    # only boxes above score_thr are drawn
    np.testing.assert_array_equal(panels[3], image)
    # each panel is DetLocalVisualizer's drawing
    visualizer = DetLocalVisualizer(name='reference')
    visualizer.dataset_meta = dict(classes=CLASSES, palette=None)
    with warnings.catch_warnings():  # mmdet np.clip-s tensors (numpy 2)
        warnings.simplefilter('ignore', DeprecationWarning)
        visualizer.add_datasample('baseline', image, predictions['baseline'],
                                  draw_gt=False, pred_score_thr=0.3)
    np.testing.assert_array_equal(panels[1], visualizer.get_image())
    # title bars: white with dark text
    for i in range(4):
        title = picture[:bar, 64 * i:64 * (i + 1)]
        assert title.max() == 255 and title.min() < 128
    np.testing.assert_array_equal(
        mmcv.imread(str(out), channel_order='rgb'), picture)


def test_same_predictions_give_the_same_panel(image):
    sample = prediction([[5, 5, 30, 30]], [0.9], [0])
    picture = draw_detections_side_by_side(
        image, {'a': sample, 'b': sample.clone()}, min_width=0)
    bar = picture.shape[0] - 48
    np.testing.assert_array_equal(picture[bar:, :64], picture[bar:, 64:])


def test_small_images_are_enlarged_with_their_boxes(image, predictions):
    picture = draw_detections_side_by_side(
        image, {'teacher': predictions['teacher']}, min_width=320)
    scale = 5  # ceil(320 / 64)
    bar = title_bar('teacher', 320).shape[0]
    assert picture.shape == (bar + scale * 48, scale * 64, 3)
    big = image.repeat(scale, axis=0).repeat(scale, axis=1)
    changed = np.any(picture[bar:] != big, axis=2)
    rows, cols = np.nonzero(changed)
    # the box (5, 5, 30, 30) is drawn at 5x: around (25, 25, 150, 150)
    assert 15 <= cols.min() <= 30 and 140 <= cols.max() <= 160
    assert 140 <= rows.max() <= 160
    assert predictions['teacher'].pred_instances.bboxes[0, 2] == 30


def test_errors():
    image = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match='predictions is empty'):
        draw_detections_side_by_side(image, {})
    with pytest.raises(ValueError, match='RGB uint8'):
        draw_detections_side_by_side(image.astype(np.float32),
                                     {'a': prediction([], [], [])})
    with pytest.raises(ValueError, match="'a'.* has no pred_instances"):
        draw_detections_side_by_side(image, {'a': DetDataSample()})
