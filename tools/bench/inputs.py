"""Synthetic inputs of the benchmark: FPN grids, boxes, data samples."""
import math
from typing import List, Sequence, Tuple

import torch
from torch import Tensor

#: FPN strides of the repository's detectors (RetinaNet P3-P7; Faster
#: R-CNN's P2-P6 has as many levels).
STRIDES = (8, 16, 32, 64, 128)


def grid_sizes(size: int) -> List[Tuple[int, int]]:
    """Haar wavelet grid ``ceil(ceil(size / stride) / 2)`` of each FPN
    level of a square padded input."""
    return [(math.ceil(math.ceil(size / s) / 2), ) * 2 for s in STRIDES]


def random_boxes(num: int, size: int, rotated: bool,
                 generator: torch.Generator, min_side: float = 4,
                 max_side: float = 64) -> Tensor:
    """Boxes in a square image: sides log-uniform in ``[min_side,
    max_side]``, centres uniform; rotated ones ``(cx, cy, w, h, theta)``
    with angles uniform in [-pi/2, pi/2) (le90), horizontal ones
    ``(x1, y1, x2, y2)`` clipped to the image.

    Returns:
        Tensor: [num, 5] or [num, 4] float32 boxes.
    """
    f64 = dict(generator=generator, dtype=torch.float64)
    side = torch.empty(num, 2, dtype=torch.float64).uniform_(
        math.log(min_side), math.log(max_side), generator=generator).exp()
    centre = torch.rand(num, 2, **f64) * size
    if rotated:
        theta = (torch.rand(num, 1, **f64) - 0.5) * math.pi
        boxes = torch.cat([centre, side, theta], dim=1)
    else:
        boxes = torch.cat([centre - side / 2, centre + side / 2],
                          dim=1).clamp(0, size)
    return boxes.float()


def data_samples(boxes: Sequence[Tensor], size: int, num_classes: int,
                 generator: torch.Generator, padded: bool = True) -> list:
    """``DetDataSample``s of square ``size`` images with these boxes and
    random labels; with the metainfo the data preprocessor adds
    (``pad_shape``, ``batch_input_shape``) if ``padded``."""
    from mmdet.structures import DetDataSample
    from mmdet.structures.bbox import HorizontalBoxes
    from mmengine.structures import InstanceData
    samples = []
    for i, b in enumerate(boxes):
        if b.shape[1] == 5:
            from mmrotate.structures.bbox import RotatedBoxes
            b = RotatedBoxes(b)
        else:
            b = HorizontalBoxes(b)
        meta = dict(img_id=i, img_shape=(size, size), ori_shape=(size, size),
                    scale_factor=(1.0, 1.0), flip=False, flip_direction=None)
        if padded:
            meta.update(pad_shape=(size, size),
                        batch_input_shape=(size, size))
        sample = DetDataSample(metainfo=meta)
        labels = torch.randint(num_classes, (len(b), ), generator=generator)
        sample.gt_instances = InstanceData(bboxes=b, labels=labels)
        samples.append(sample)
    return samples
