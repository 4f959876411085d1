"""Student and teacher FPN maps in the four wavelet bands of DS2D2."""
from typing import Optional, Tuple

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

from ..ops import dwt2d

# pywt's cA, cH, cV, cD in the usual subband names (first letter: filter
# along the rows (H), second: along the columns (W)).
BAND_NAMES = ('LL (cA)', 'LH (cH)', 'HL (cV)', 'HH (cD)')


def wavelet_band_maps(level: Tensor, wavelet: str = 'haar') -> np.ndarray:
    """The four one-level DWT bands of a feature map, averaged over channels.

    Each band is ``mean over channels of |coefficient|``: the absolute value
    first, so that channels of opposite sign do not cancel.

    Args:
        level (Tensor): One image's FPN level, shape [C, H, W].
        wavelet (str): Any discrete PyWavelets wavelet. Defaults to
            ``'haar'``.

    Returns:
        np.ndarray: float32, shape [4, h, w], the bands in the order of
        ``BAND_NAMES`` (LL, LH, HL, HH), h and w as ``dwt2d`` gives them.
    """
    if not isinstance(level, Tensor) or level.dim() != 3:
        found = tuple(level.shape) if isinstance(level, Tensor) else \
            type(level)
        raise ValueError(
            f'level must be one image\'s feature map [C, H, W], got {found}; '
            'for a batch, pass feats[level][i]')
    with torch.no_grad():
        low, high = dwt2d(level.detach().float()[None], wavelet)
        bands = torch.cat([low.unsqueeze(2), high], dim=2)[0]  # [C, 4, h, w]
        return bands.abs().mean(dim=0).cpu().numpy()


def draw_wavelet_bands(student_level: Tensor,
                       teacher_level: Tensor,
                       out_file: Optional[str] = None,
                       wavelet: str = 'haar',
                       title: Optional[str] = None,
                       cmap: str = 'viridis') -> Tuple[Figure, np.ndarray]:
    """Draw teacher and student FPN maps in the four wavelet bands.

    A 2x4 grid: rows teacher, student; columns LL, LH, HL, HH of the
    one-level DWT (``ds2d2_mmrazor.ops.dwt2d``, the decomposition of DS2D2's
    explicit stream, `arXiv 2512.04413 <https://arxiv.org/abs/2512.04413>`_).
    Each panel shows ``mean over channels of |band|`` (see
    :func:`wavelet_band_maps`) with its own colour bar: student and teacher
    maps have different magnitudes (the student is compared after the
    adapter in training, here before it), so a shared scale would hide one.

    Args:
        student_level (Tensor): Student FPN level of one image, [C, H, W].
        teacher_level (Tensor): Teacher FPN level of the same image,
            [C', H', W'] (usually the same shape).
        out_file (str, optional): Where to write the PNG. Defaults to None
            (no file).
        wavelet (str): Any discrete PyWavelets wavelet. Defaults to
            ``'haar'``.
        title (str, optional): Figure title. Defaults to None.
        cmap (str): Matplotlib colour map. Defaults to ``'viridis'``.

    Returns:
        tuple[Figure, np.ndarray]: The figure and the plotted maps, shape
        [2, 4, h, w] (rows teacher, student; columns LL, LH, HL, HH).
    """
    rows = {'teacher': wavelet_band_maps(teacher_level, wavelet),
            'student': wavelet_band_maps(student_level, wavelet)}
    if rows['teacher'].shape != rows['student'].shape:
        raise ValueError(
            f'student and teacher bands differ in size: '
            f'{rows["student"].shape[1:]} vs {rows["teacher"].shape[1:]} '
            f'(levels {tuple(student_level.shape)} and '
            f'{tuple(teacher_level.shape)}); pass the same FPN level of the '
            'same preprocessed image')
    maps = np.stack(list(rows.values()))
    fig = Figure(figsize=(13, 6), layout='constrained')
    axes = fig.subplots(2, 4)
    for r, name in enumerate(rows):
        for c, band in enumerate(BAND_NAMES):
            ax = axes[r, c]
            image = ax.imshow(maps[r, c], cmap=cmap, interpolation='nearest')
            fig.colorbar(image, ax=ax, shrink=0.8)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(band)
            if c == 0:
                ax.set_ylabel(name, fontsize='large')
    fig.suptitle(title or f'mean |{wavelet} DWT coefficient| over channels')
    if out_file is not None:
        fig.savefig(out_file, dpi=100)
    return fig, maps
