"""WaveletConnector: the shared 1x1 adapter of the explicit stream, then a
one-level DWT per FPN level."""
import numpy as np
import pytest
import pywt
import torch
import torch.nn.functional as F
from torch import nn

import ds2d2_mmrazor  # noqa: F401  (registers the modules)
from ds2d2_mmrazor.models.architectures.connectors import WaveletConnector
from ds2d2_mmrazor.ops import dwt2d
from mmrazor.registry import MODELS

# Five FPN-like levels, odd and even sizes.
LEVEL_HW = [(9, 8), (5, 4), (3, 2), (2, 1), (1, 1)]


def levels(channels=4, seed=0, batch=2):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, channels, h, w, generator=g)
            for h, w in LEVEL_HW]


def build(**kwargs) -> WaveletConnector:
    return MODELS.build(
        dict(type='WaveletConnector', _scope_='mmrazor', **kwargs))


def convs(module: nn.Module):
    return [m for m in module.modules() if isinstance(m, nn.Conv2d)]


def test_shared_adapter_is_one_bias_free_1x1_conv():
    connector = build(in_channels=4, out_channels=6)
    assert isinstance(connector, WaveletConnector)
    (conv, ) = convs(connector)
    assert conv.kernel_size == (1, 1) and conv.bias is None
    assert conv.in_channels == 4 and conv.out_channels == 6
    params = list(connector.parameters())
    assert len(params) == 1 and params[0] is conv.weight
    assert params[0].shape == (6, 4, 1, 1)


def test_out_channels_default_to_in_channels():
    (conv, ) = convs(build(in_channels=5))
    assert conv.weight.shape == (5, 5, 1, 1)


def test_shared_adapter_serves_every_level():
    connector = build(in_channels=4, out_channels=6)
    weight = connector.adapters[0].weight.detach()
    feats = levels()
    out = connector(feats)
    assert len(out) == len(feats)
    for x, (low, high) in zip(feats, out):
        exp_low, exp_high = dwt2d(F.conv2d(x, weight))
        torch.testing.assert_close(low, exp_low)
        torch.testing.assert_close(high, exp_high)
        assert low.shape[1] == 6


def test_per_level_adapters():
    connector = build(in_channels=4, out_channels=3, shared=False,
                      num_levels=5)
    adapters = convs(connector)
    assert len(adapters) == 5
    assert len({id(c.weight) for c in adapters}) == 5
    assert all(c.kernel_size == (1, 1) and c.bias is None for c in adapters)
    assert len(list(connector.parameters())) == 5
    feats = levels()
    out = connector(feats)
    for x, conv, (low, high) in zip(feats, connector.adapters, out):
        exp_low, exp_high = dwt2d(F.conv2d(x, conv.weight.detach()))
        torch.testing.assert_close(low, exp_low)
        torch.testing.assert_close(high, exp_high)
    with pytest.raises(ValueError, match='5 per-level adapters for 3 levels'):
        connector(feats[:3])


@pytest.mark.parametrize('num_levels', [None, 0])
def test_per_level_adapters_need_num_levels(num_levels):
    with pytest.raises(ValueError, match='num_levels'):
        build(in_channels=4, shared=False, num_levels=num_levels)


@pytest.mark.parametrize('wavelet', ['haar', 'db2'])
def test_without_in_channels_it_is_a_pure_dwt(wavelet):
    connector = build(wavelet=wavelet)
    assert connector.adapters is None
    assert list(connector.parameters()) == []
    feats = levels(seed=1)
    out = connector(feats)
    assert isinstance(out, list) and len(out) == len(feats)
    length = len(pywt.Wavelet(wavelet).dec_lo)
    for x, (low, high) in zip(feats, out):
        exp_low, exp_high = dwt2d(x, wavelet)
        assert torch.equal(low, exp_low) and torch.equal(high, exp_high)
        # shapes: floor((n + L - 1) / 2) per axis, [N, C, 3, h, w] highs
        h, w = ((n + length - 1) // 2 for n in x.shape[-2:])
        assert low.shape == (2, 4, h, w)
        assert high.shape == (2, 4, 3, h, w)
        # and the values are PyWavelets' (mode='zero')
        ca, (ch, cv, cd) = pywt.dwt2(x.numpy(), wavelet, mode='zero',
                                     axes=(-2, -1))
        np.testing.assert_allclose(low.numpy(), ca, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(high.numpy(), np.stack([ch, cv, cd], 2),
                                   rtol=1e-5, atol=1e-5)


def test_haar_shapes_for_odd_and_even_sizes():
    out = build(in_channels=4, out_channels=2)(levels())
    expected = [(5, 4), (3, 2), (2, 1), (1, 1), (1, 1)]  # ceil(n / 2)
    for (low, high), hw in zip(out, expected):
        assert low.shape == (2, 2) + hw
        assert high.shape == (2, 2, 3) + hw


def test_single_tensor_gives_one_level():
    x = levels()[0]
    out = build()(x)
    assert len(out) == 1
    torch.testing.assert_close(out[0][0], dwt2d(x)[0])


@pytest.mark.parametrize('wavelet', ['nope', 'db99', 'morl'])
def test_unknown_wavelet_rejected_at_construction(wavelet):
    with pytest.raises(ValueError, match=repr(wavelet)):
        build(in_channels=4, wavelet=wavelet)


def test_gradient_reaches_the_adapter():
    connector = build(in_channels=4, out_channels=4)
    feats = levels(seed=2)
    out = connector(feats)
    sum(low.pow(2).sum() + high.pow(2).sum() for low, high in out).backward()
    grad = connector.adapters[0].weight.grad
    assert grad is not None and grad.abs().sum() > 0
    # the same gradient through an explicit conv + dwt2d
    weight = connector.adapters[0].weight.detach().clone().requires_grad_()
    ref = 0
    for x in feats:
        low, high = dwt2d(F.conv2d(x, weight))
        ref = ref + low.pow(2).sum() + high.pow(2).sum()
    ref.backward()
    torch.testing.assert_close(grad, weight.grad)
