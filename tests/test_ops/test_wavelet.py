"""dwt2d / high_frequency against PyWavelets (the independent reference)."""
from typing import Tuple

import numpy as np
import pytest
import pywt
import torch
import torch.nn.functional as F

from ds2d2_mmrazor.ops import dwt2d, high_frequency

# Orthogonal (haar, db, sym, coif) and biorthogonal (bior, rbio) families,
# filter lengths 2 to 8.
WAVELETS = ['haar', 'db2', 'sym4', 'bior2.2', 'coif1', 'rbio3.1', 'db3']
# even/even, odd/odd, odd/even, even/odd, 1x1, 1xN, Nx1, and a map smaller
# than the longer filters.
SIZES = [(8, 6), (7, 9), (7, 6), (4, 5), (1, 1), (1, 9), (6, 1), (3, 2)]


def pywt_bands(x: torch.Tensor, wavelet: str) -> Tuple[np.ndarray,
                                                       np.ndarray]:
    """(cA, stack(cH, cV, cD) on axis 2) from PyWavelets."""
    ca, (ch, cv, cd) = pywt.dwt2(
        x.detach().numpy(), wavelet, mode='zero', axes=(-2, -1))
    return ca, np.stack([ch, cv, cd], axis=2)


def out_size(n: int, wavelet: str) -> int:
    return (n + len(pywt.Wavelet(wavelet).dec_lo) - 1) // 2


@pytest.mark.parametrize('size', SIZES, ids=lambda s: f'{s[0]}x{s[1]}')
@pytest.mark.parametrize('wavelet', WAVELETS)
def test_dwt2d_matches_pywt_float64(wavelet, size):
    torch.manual_seed(0)
    x = torch.randn(2, 3, *size, dtype=torch.float64)
    low, high = dwt2d(x, wavelet)
    ca, bands = pywt_bands(x, wavelet)
    h, w = out_size(size[0], wavelet), out_size(size[1], wavelet)
    assert low.shape == (2, 3, h, w) and high.shape == (2, 3, 3, h, w)
    assert low.dtype == high.dtype == torch.float64
    np.testing.assert_allclose(low.numpy(), ca, rtol=0, atol=1e-10)
    np.testing.assert_allclose(high.numpy(), bands, rtol=0, atol=1e-10)


def test_dwt2d_every_short_discrete_wavelet():
    """Every discrete wavelet of PyWavelets with a filter of length <= 12
    (the long ones are the same code path, just slower in float64)."""
    names = [n for n in pywt.wavelist(kind='discrete')
             if len(pywt.Wavelet(n).dec_lo) <= 12]
    assert len(names) > 20
    torch.manual_seed(0)
    x = torch.randn(1, 2, 5, 6, dtype=torch.float64)
    for name in names:
        low, high = dwt2d(x, name)
        ca, bands = pywt_bands(x, name)
        np.testing.assert_allclose(low.numpy(), ca, atol=1e-10, err_msg=name)
        np.testing.assert_allclose(
            high.numpy(), bands, atol=1e-10, err_msg=name)


def test_dwt2d_haar_by_hand():
    """Haar on a 2x2 block [[a, b], [c, d]]: cA = (a+b+c+d)/2,
    cH = (a+b-c-d)/2 (detail along H), cV = (a+c-b-d)/2 (detail along W),
    cD = (a+d-b-c)/2; PyWavelets' Haar detail is (first - second)/sqrt(2)."""
    x = torch.tensor([[[[1., 2.], [3., 5.]]]], dtype=torch.float64)
    low, high = dwt2d(x)
    assert low.item() == pytest.approx(11 / 2)
    assert high.flatten().tolist() == pytest.approx([-5 / 2, -3 / 2, 1 / 2])


@pytest.mark.parametrize('wavelet', ['haar', 'db2', 'bior2.2'])
def test_dwt2d_float32(wavelet):
    torch.manual_seed(0)
    x = torch.randn(2, 4, 9, 8)
    low, high = dwt2d(x, wavelet)
    assert low.dtype == high.dtype == torch.float32
    ca, bands = pywt_bands(x.double(), wavelet)
    np.testing.assert_allclose(low.numpy(), ca, rtol=0, atol=1e-5)
    np.testing.assert_allclose(high.numpy(), bands, rtol=0, atol=1e-5)


def test_dwt2d_keeps_dtype_and_device():
    """Filters are built in x's dtype on x's device: the meta device would
    fail on any round trip through the CPU."""
    low, high = dwt2d(torch.empty(2, 3, 7, 6, device='meta'), 'db2')
    assert low.device.type == high.device.type == 'meta'
    assert low.shape == (2, 3, 5, 4) and high.shape == (2, 3, 3, 5, 4)
    x = torch.randn(1, 2, 5, 5)
    for dtype in (torch.float16, torch.bfloat16):
        low, high = dwt2d(x.to(dtype), 'db2')
        assert low.dtype == high.dtype == dtype
        ref, _ = dwt2d(x.double(), 'db2')
        torch.testing.assert_close(
            low.double(), ref, rtol=0.02, atol=0.05)


@pytest.mark.parametrize('wavelet', ['haar', 'db2'])
def test_dwt2d_gradcheck(wavelet):
    torch.manual_seed(0)
    x = torch.randn(1, 2, 5, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda t: dwt2d(t, wavelet), (x, ), fast_mode=True)


def test_dwt2d_gradient_reaches_input():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 7, 6, requires_grad=True)
    low, high = dwt2d(x, 'sym4')
    (low.square().sum() + high.square().sum()).backward()
    assert x.grad is not None and x.grad.shape == x.shape
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    # Haar is orthogonal and the map is even-sized: the energy is kept, so
    # d/dx of the total energy is 2x.
    x = torch.randn(1, 2, 6, 4, dtype=torch.float64, requires_grad=True)
    low, high = dwt2d(x)
    (low.square().sum() + high.square().sum()).backward()
    torch.testing.assert_close(x.grad, 2 * x.detach())


@pytest.mark.parametrize('wavelet,size', [('haar', (8, 6)), ('haar', (7, 5)),
                                          ('db2', (6, 9)), ('sym4', (3, 4))])
def test_high_frequency_matches_pywt(wavelet, size):
    torch.manual_seed(0)
    x = torch.randn(2, 3, *size, dtype=torch.float64)
    hf = high_frequency(x, wavelet)
    assert hf.shape == x.shape and hf.dtype == x.dtype
    _, bands = pywt_bands(x, wavelet)
    ref = F.interpolate(
        torch.from_numpy(bands.sum(axis=2)), size=size, mode='bilinear',
        align_corners=False)
    torch.testing.assert_close(hf, ref, rtol=0, atol=1e-10)


def test_high_frequency_of_constant_is_zero_inside():
    """Haar detail bands vanish on a constant even-sized map."""
    hf = high_frequency(torch.full((1, 2, 6, 8), 3.0))
    assert hf.shape == (1, 2, 6, 8)
    assert hf.abs().max() < 1e-6


def test_high_frequency_gradient():
    x = torch.randn(1, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda t: high_frequency(t, 'db2'), (x, ), fast_mode=True)


@pytest.mark.parametrize('name', ['foo', 'morl'])
def test_dwt2d_unknown_or_continuous_wavelet(name):
    with pytest.raises(ValueError, match=rf"'{name}'.*"
                       r"pywt\.wavelist\(kind='discrete'\)"):
        dwt2d(torch.zeros(1, 1, 4, 4), name)


def test_dwt2d_wrong_ndim():
    with pytest.raises(ValueError, match=r'\[N, C, H, W\].*\(3, 4, 4\)'):
        dwt2d(torch.zeros(3, 4, 4))
    with pytest.raises(ValueError, match=r'\(1, 1, 1, 4, 4\)'):
        high_frequency(torch.zeros(1, 1, 1, 4, 4))
