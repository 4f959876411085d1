"""Several detectors' predictions on one image, side by side."""
import warnings
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import mmcv
import numpy as np
from mmdet.structures import DetDataSample
from mmdet.visualization import DetLocalVisualizer


def title_bar(text: str, width: int,
              height: Optional[int] = None) -> np.ndarray:
    """A white RGB bar with ``text`` centred in black, shrunk to fit.

    Args:
        text (str): The title.
        width (int): Bar width in pixels.
        height (int, optional): Bar height. Defaults to a height that suits
            the panel width (about 1/16 of it, 16 to 48 pixels).

    Returns:
        np.ndarray: uint8, shape [height, width, 3].
    """
    height = height or int(np.clip(width // 16, 16, 48))
    bar = np.full((height, width, 3), 255, dtype=np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    scale = height / 40
    (w, h), _ = cv2.getTextSize(text, font, scale, 1)
    if w > width - 4:  # shrink to fit
        scale *= (width - 4) / w
        (w, h), _ = cv2.getTextSize(text, font, scale, 1)
    cv2.putText(bar, text, ((width - w) // 2, (height + h) // 2), font,
                scale, (0, 0, 0), 1, cv2.LINE_AA)
    return bar


def draw_detections_side_by_side(
        image: np.ndarray,
        predictions: Dict[str, DetDataSample],
        out_file: Optional[str] = None,
        score_thr: float = 0.3,
        class_names: Optional[Sequence[str]] = None,
        palette: Optional[Union[str, List[Tuple[int, int, int]]]] = None,
        min_width: int = 320) -> np.ndarray:
    """Draw each model's predicted boxes on the image, panels side by side.

    Each panel is drawn by MMDetection's ``DetLocalVisualizer``
    (``add_datasample`` with ``draw_gt=False``, boxes scoring above
    ``score_thr``, labelled with class name and score), then gets a title
    bar with its model's name; panels are concatenated left to right in the
    order of ``predictions``. An image narrower than ``min_width`` is first
    enlarged by an integer factor (nearest neighbour, boxes scaled alike),
    so that boxes and labels stay legible.

    Args:
        image (np.ndarray): RGB uint8 image, [H, W, 3], in the coordinates
            of the predictions (the original image for ``rescale=True``).
        predictions (dict[str, DetDataSample]): Per model name, its
            prediction with ``pred_instances`` (bboxes, scores, labels).
        out_file (str, optional): Where to write the PNG. Defaults to None.
        score_thr (float): Draw boxes scoring above this. Defaults to 0.3.
        class_names (Sequence[str], optional): Names of the labels, e.g.
            ``model.dataset_meta['classes']``. Defaults to None (labels
            shown as ``class <i>``).
        palette (str | list[tuple], optional): Box colours per class, as in
            ``dataset_meta['palette']``. Defaults to None (MMDetection's
            fixed random palette).
        min_width (int): Enlarge images narrower than this. Defaults to 320.

    Returns:
        np.ndarray: The RGB picture, uint8, shape [s * H + bar, n * s * W, 3]
        with the enlargement factor s = ``ceil(min_width / W)`` (1 for
        images at least ``min_width`` wide), panel ``i`` in columns
        ``i * s * W .. (i + 1) * s * W``.
    """
    if not predictions:
        raise ValueError('predictions is empty: give at least one '
                         '{name: DetDataSample}')
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f'image must be RGB uint8 [H, W, 3], got '
                         f'{image.dtype} {image.shape}')
    scale = max(1, -(-min_width // image.shape[1]))
    if scale > 1:
        image = image.repeat(scale, axis=0).repeat(scale, axis=1)
    visualizer = DetLocalVisualizer(name='ds2d2_side_by_side')
    meta = dict(palette=palette)
    if class_names is not None:
        meta['classes'] = tuple(class_names)
    visualizer.dataset_meta = meta
    panels = []
    for name, sample in predictions.items():
        if 'pred_instances' not in sample:
            raise ValueError(f'predictions[{name!r}] has no pred_instances: '
                             "pass a detector's prediction (the output "
                             'of model.predict or test_step)')
        if scale > 1:  # clone() is shallow: replace the instances
            instances = sample.pred_instances.clone()
            instances.bboxes = instances.bboxes * scale
            sample = sample.clone()
            sample.pred_instances = instances
        # numpy boxes: DetLocalVisualizer np.clip-s their areas, which for
        # tensors is deprecated in numpy 2 (mmdet 3.1); the drawing is equal
        with warnings.catch_warnings():
            # MMEngine calls a box ending on the image border (x2 == width,
            # as predictions clipped to the image do) "out of bounds"
            warnings.filterwarnings(
                'ignore', 'Warning: The (bbox|polygon) is out of bounds',
                UserWarning)
            visualizer.add_datasample(
                name, image, sample.cpu().numpy(), draw_gt=False,
                draw_pred=True, show=False, pred_score_thr=score_thr)
        panel = visualizer.get_image()
        panels.append(np.concatenate([title_bar(name, panel.shape[1]),
                                      panel]))
    picture = np.concatenate(panels, axis=1)
    if out_file is not None:
        mmcv.imwrite(mmcv.rgb2bgr(picture), out_file)
    return picture
