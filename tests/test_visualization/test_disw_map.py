"""draw_disw: the DISW map of ops.disw_weights over the image and boxes."""
import mmcv
import numpy as np
import pytest
import torch
from matplotlib.patches import Rectangle

from ds2d2_mmrazor.ops import disw_weights
from ds2d2_mmrazor.visualization import draw_disw


def test_plots_the_disw_weights_over_the_padded_input(tmp_path):
    image = np.random.RandomState(0).randint(0, 255, (56, 60, 3), np.uint8)
    boxes = np.array([[3, 4, 20, 30], [10, 12, 14, 15]], np.float32)
    out = tmp_path / 'disw.png'
    fig, weights = draw_disw(image, boxes, (8, 8), (64, 64), str(out))

    expected = disw_weights([torch.from_numpy(boxes)], (8, 8), (64, 64))
    np.testing.assert_array_equal(weights, expected[0, 0].numpy())
    assert weights.max() > 1  # the boxes weigh
    ax = fig.axes[0]
    shown_image, overlay = ax.images
    np.testing.assert_array_equal(shown_image.get_array(), image)
    assert shown_image.get_extent() == [0, 60, 56, 0]
    np.testing.assert_array_equal(overlay.get_array(), weights)
    assert overlay.get_extent() == [0, 64, 64, 0]  # the whole padded input
    assert ax.get_xlim() == (0, 64) and ax.get_ylim() == (64, 0)
    rects = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert [(r.get_x(), r.get_y(), r.get_width(), r.get_height())
            for r in rects] == [(3, 4, 17, 26), (10, 12, 4, 3)]
    assert len(fig.axes) == 2  # image and colour bar
    assert mmcv.imread(str(out)).ndim == 3


def test_no_boxes_is_background_everywhere():
    image = np.zeros((32, 32, 3), np.uint8)
    _, weights = draw_disw(image, np.zeros((0, 4)), (4, 4), (32, 32))
    np.testing.assert_array_equal(weights, np.ones((4, 4), np.float32))


def test_rejects_an_image_larger_than_the_input():
    with pytest.raises(ValueError, match='larger than input_hw'):
        draw_disw(np.zeros((40, 32, 3), np.uint8), np.zeros((0, 4)),
                  (4, 4), (32, 32))
