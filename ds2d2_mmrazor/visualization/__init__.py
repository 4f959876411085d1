"""Pictures of DS2D2: wavelet bands, DISW maps, detections, loss curves.

Pure drawing functions (matplotlib without pyplot, MMDetection's
``DetLocalVisualizer``); each returns what it plotted and can write a PNG.
The command-line tools ``tools/visualize.py`` and ``tools/plot_losses.py``
wrap them.
"""
from .detections import draw_detections_side_by_side, title_bar
from .disw_map import draw_disw
from .loss_curves import loss_curves, plot_losses, read_scalars
from .wavelet_bands import BAND_NAMES, draw_wavelet_bands, wavelet_band_maps

__all__ = [
    'BAND_NAMES', 'draw_detections_side_by_side', 'draw_disw',
    'draw_wavelet_bands', 'loss_curves', 'plot_losses', 'read_scalars',
    'title_bar', 'wavelet_band_maps'
]
