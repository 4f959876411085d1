"""One-level 2-D discrete wavelet transform as a strided convolution.

The spectral decomposition of DS2D2 (arXiv 2512.04413, method doc section 1):
``dwt2d`` equals ``pywt.dwt2(x, wavelet, mode='zero', axes=(-2, -1))`` for
every discrete wavelet PyWavelets knows, runs on any float dtype and device
and is differentiable; ``high_frequency`` is the high-frequency view of a map
fed to the high-frequency amplifier.
"""
from functools import lru_cache
from typing import Tuple

import pywt
import torch
import torch.nn.functional as F
from torch import Tensor


@lru_cache(maxsize=None)
def _decomposition_filters(wavelet: str) -> Tuple[Tuple[float, ...],
                                                  Tuple[float, ...]]:
    """Look up the decomposition filters of a discrete wavelet.

    Only the PyWavelets look-up is cached (plain Python floats, immutable);
    the tensors are built per call in the input's dtype on its device.

    Args:
        wavelet (str): A discrete wavelet name, e.g. ``'haar'``, ``'db2'``.

    Returns:
        tuple[tuple[float, ...], tuple[float, ...]]: ``(dec_lo, dec_hi)``,
        each of even length L.
    """
    try:
        w = pywt.Wavelet(wavelet)
    except ValueError as e:
        raise ValueError(
            f'wavelet {wavelet!r} is not a discrete wavelet known to '
            f'PyWavelets ({e}); choose a name from '
            f"pywt.wavelist(kind='discrete')") from None
    return tuple(w.dec_lo), tuple(w.dec_hi)


def _filter_bank(wavelet: str, dtype: torch.dtype,
                 device: torch.device) -> Tensor:
    """Build the four 2-D analysis filters for ``F.conv2d``.

    ``F.conv2d`` is a cross-correlation while PyWavelets convolves, so the
    1-D filters are reversed before taking outer products. The first factor
    of each product runs along H, the second along W.

    Args:
        wavelet (str): A discrete wavelet name.
        dtype (torch.dtype): Dtype of the filters.
        device (torch.device): Device of the filters.

    Returns:
        Tensor: Filters of shape [4, 1, L, L], ordered (cA, cH, cV, cD):
        lo⊗lo, hi⊗lo, lo⊗hi, hi⊗hi.
    """
    if not isinstance(wavelet, str):
        raise TypeError(
            f'wavelet must be a wavelet name (str), got {type(wavelet)}')
    dec_lo, dec_hi = _decomposition_filters(wavelet)
    lo = torch.tensor(dec_lo[::-1], dtype=dtype, device=device)
    hi = torch.tensor(dec_hi[::-1], dtype=dtype, device=device)
    bank = torch.stack([
        torch.outer(lo, lo),  # cA: approximation along H and W
        torch.outer(hi, lo),  # cH: detail along H, approximation along W
        torch.outer(lo, hi),  # cV: approximation along H, detail along W
        torch.outer(hi, hi),  # cD: detail along H and W
    ])
    return bank.unsqueeze(1)


def dwt2d(x: Tensor, wavelet: str = 'haar') -> Tuple[Tensor, Tensor]:
    """One-level 2-D discrete wavelet transform, zero boundary mode.

    DS2D2's spectral decomposition (`arXiv 2512.04413
    <https://arxiv.org/abs/2512.04413>`_). Per channel this equals
    ``pywt.dwt2(x, wavelet, mode='zero', axes=(-2, -1))`` →
    ``cA, (cH, cV, cD)``. Each spatial axis of length n gives
    ``floor((n + L - 1) / 2)`` coefficients for a filter of length L (Haar:
    ``ceil(n / 2)``; an odd map is zero-padded at the bottom / right).

    Implemented as one stride-2 ``conv2d`` of the zero-padded input, with
    the N*C channels as a batch of single-channel maps, so it works on any
    float dtype and device and is differentiable.

    Args:
        x (Tensor): Maps of shape [N, C, H, W], floating point.
        wavelet (str): Any discrete wavelet of PyWavelets, see
            ``pywt.wavelist(kind='discrete')``. Defaults to ``'haar'``.

    Returns:
        tuple[Tensor, Tensor]: ``(low, high)``; ``low`` is cA of shape
        [N, C, h, w] and ``high`` is ``stack(cH, cV, cD)`` of shape
        [N, C, 3, h, w], in x's dtype on x's device.
    """
    if x.dim() != 4:
        raise ValueError(
            f'dwt2d expects maps of shape [N, C, H, W], got shape '
            f'{tuple(x.shape)}')
    filters = _filter_bank(wavelet, x.dtype, x.device)
    n, c, height, width = x.shape
    length = filters.shape[-1]
    # PyWavelets' zero mode: output i reads input samples 2i + 2 - L ..
    # 2i + 1, i.e. L - 2 zeros before the map and up to L - 1 after it.
    padded = F.pad(x.reshape(n * c, 1, height, width),
                   (length - 2, length - 1, length - 2, length - 1))
    coeffs = F.conv2d(padded, filters, stride=2)
    coeffs = coeffs.reshape(n, c, 4, *coeffs.shape[-2:])
    return coeffs[:, :, 0], coeffs[:, :, 1:]


def high_frequency(x: Tensor, wavelet: str = 'haar') -> Tensor:
    """High-frequency view of a map: the summed detail bands, resized back.

    ``HF(x) = bilinear_resize(cH + cV + cD, (H, W), align_corners=False)``,
    the input of DS2D2's high-frequency amplifier (`arXiv 2512.04413
    <https://arxiv.org/abs/2512.04413>`_).

    Args:
        x (Tensor): Maps of shape [N, C, H, W], floating point.
        wavelet (str): Any discrete wavelet of PyWavelets. Defaults to
            ``'haar'``.

    Returns:
        Tensor: The high-frequency view, shape [N, C, H, W].
    """
    _, high = dwt2d(x, wavelet)
    return F.interpolate(
        high.sum(dim=2), size=x.shape[-2:], mode='bilinear',
        align_corners=False)
