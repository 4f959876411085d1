"""The DISW weight map of an image, over the image and its boxes."""
from typing import Optional, Tuple, Union

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from torch import Tensor

from ..ops import disw_weights


def draw_disw(image: np.ndarray,
              boxes: Union[Tensor, np.ndarray],
              grid_hw: Tuple[int, int],
              input_hw: Tuple[int, int],
              out_file: Optional[str] = None,
              alpha: float = 0.5,
              cmap: str = 'jet') -> Tuple[Figure, np.ndarray]:
    """Overlay the DISW map of some boxes on the image they belong to.

    DISW (Density-Independent Scale Weight) of DS2D2
    (`arXiv 2512.04413 <https://arxiv.org/abs/2512.04413>`_) is computed by
    ``ds2d2_mmrazor.ops.disw_weights`` exactly as in training: on the
    wavelet grid ``grid_hw`` of an FPN level, for boxes in padded-input
    pixels. Pass the network input, i.e. the image after the pipeline's
    resize and before padding, with the boxes in its pixels: padding is
    at the bottom / right, so these are padded-input pixels too. Each grid
    cell is drawn as the block of input pixels it covers (no smoothing); the
    axes span the whole padded input, so padding shows as map without image.

    Args:
        image (np.ndarray): RGB uint8 image, shape [H_img, W_img, 3].
        boxes (Tensor | np.ndarray): Boxes (x1, y1, x2, y2) in image pixels,
            shape [K, 4]; K may be 0.
        grid_hw (tuple[int, int]): Wavelet grid size (h, w) of the level.
        input_hw (tuple[int, int]): Padded input size (H, W), at least the
            image size (``batch_input_shape``).
        out_file (str, optional): Where to write the PNG. Defaults to None.
        alpha (float): Opacity of the map over the image. Defaults to 0.5.
        cmap (str): Matplotlib colour map. Defaults to ``'jet'``.

    Returns:
        tuple[Figure, np.ndarray]: The figure and the plotted map, float32,
        shape [h, w] (``disw_weights(...)[0, 0]``).
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f'image must be RGB [H, W, 3], got {image.shape}')
    in_h, in_w = input_hw
    img_h, img_w = image.shape[:2]
    if img_h > in_h or img_w > in_w:
        raise ValueError(
            f'the image ({img_h}x{img_w}) is larger than input_hw '
            f'{tuple(input_hw)}: pass the resized network input and its '
            'padded size (batch_input_shape)')
    boxes = torch.as_tensor(np.asarray(boxes, dtype=np.float32))
    boxes = boxes.reshape(-1, 4)
    weights = disw_weights([boxes], grid_hw, input_hw)[0, 0].numpy()

    fig = Figure(figsize=(7, 6 * in_h / in_w + 0.5), layout='constrained')
    ax = fig.subplots()
    ax.imshow(image, extent=(0, img_w, img_h, 0), interpolation='nearest')
    overlay = ax.imshow(weights, extent=(0, in_w, in_h, 0), alpha=alpha,
                        cmap=cmap, interpolation='nearest')
    for x1, y1, x2, y2 in boxes.tolist():
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False,
                               edgecolor='white', linewidth=1.5))
    ax.set_xlim(0, in_w)
    ax.set_ylim(in_h, 0)
    bar = fig.colorbar(overlay, ax=ax, label='DISW weight  1 + Σ 1/A_k')
    bar.solids.set_alpha(1)  # opaque colours on the bar
    ax.set_title(f'DISW on the {grid_hw[0]}x{grid_hw[1]} wavelet grid, '
                 f'{len(boxes)} box{"es" if len(boxes) != 1 else ""}')
    if out_file is not None:
        fig.savefig(out_file, dpi=100)
    return fig, weights
