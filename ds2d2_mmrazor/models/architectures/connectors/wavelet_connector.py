"""Adapter + discrete wavelet transform of FPN features."""
from typing import List, Optional, Sequence, Tuple, Union

import torch

from mmrazor.models.architectures.connectors.base_connector import \
    BaseConnector
from mmrazor.registry import MODELS
from torch import Tensor, nn

from ....ops import dwt2d

Bands = Tuple[Tensor, Tensor]


@MODELS.register_module()
class WaveletConnector(BaseConnector):
    """Map FPN levels to their wavelet bands, after an optional 1x1 adapter.

    The explicit stream of DS2D2 (arXiv 2512.04413, Sec. 2) adapts the
    student's FPN maps with one 1x1 convolution without bias, shared by all
    levels, and compares their one-level DWT with the teacher's. Use it with
    ``in_channels`` set on the student side, and without (a pure DWT) on
    the teacher side.

    Args:
        in_channels (int, optional): Student FPN channels. None: no adapter.
        out_channels (int, optional): Teacher FPN channels. Defaults to
            ``in_channels``.
        wavelet (str): Any discrete PyWavelets wavelet. Defaults to 'haar'.
        shared (bool): One adapter for all levels (as in the paper); if
            False, one per level (``num_levels`` required).
        num_levels (int, optional): Number of levels, for per-level adapters.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 in_channels: Optional[int] = None,
                 out_channels: Optional[int] = None,
                 wavelet: str = 'haar',
                 shared: bool = True,
                 num_levels: Optional[int] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        dwt2d(torch.zeros(1, 1, 2, 2), wavelet)  # a bad name fails here
        self.wavelet = wavelet
        self.adapters: Optional[nn.ModuleList] = None
        if in_channels is not None:
            out_channels = out_channels or in_channels
            if not shared and not num_levels:
                raise ValueError('WaveletConnector(shared=False) needs '
                                 'num_levels')
            self.adapters = nn.ModuleList(
                nn.Conv2d(in_channels, out_channels, 1, bias=False)
                for _ in range(1 if shared else num_levels))

    @property
    def in_channels(self) -> Optional[int]:
        """Channels the adapter takes (None: no adapter)."""
        return None if self.adapters is None else \
            self.adapters[0].in_channels

    @property
    def out_channels(self) -> Optional[int]:
        """Channels the adapter gives (None: no adapter)."""
        return None if self.adapters is None else \
            self.adapters[0].out_channels

    def forward_train(
            self, feature: Union[Tensor, Sequence[Tensor]]) -> List[Bands]:
        """Return ``[(low [N,C,h,w], high [N,C,3,h,w]), ...]`` per level.

        Args:
            feature (Tensor | Sequence[Tensor]): One map or FPN levels.
        """
        levels = [feature] if isinstance(feature, Tensor) else list(feature)
        if self.adapters is not None:
            if len(self.adapters) not in (1, len(levels)):
                raise ValueError(f'{len(self.adapters)} per-level adapters '
                                 f'for {len(levels)} levels')
            levels = [
                self.adapters[i if len(self.adapters) > 1 else 0](x)
                for i, x in enumerate(levels)
            ]
        return [dwt2d(x, self.wavelet) for x in levels]
