"""draw_wavelet_bands: a 2x4 grid of the channel-mean |DWT band| maps."""
import numpy as np
import pytest
import torch

from ds2d2_mmrazor.ops import dwt2d
from ds2d2_mmrazor.visualization import (BAND_NAMES, draw_wavelet_bands,
                                         wavelet_band_maps)


def reference(level: torch.Tensor, wavelet: str) -> np.ndarray:
    """[4, h, w]: mean over channels of |cA|, |cH|, |cV|, |cD|."""
    low, high = dwt2d(level[None].double(), wavelet)
    bands = [low[0]] + [high[0, :, i] for i in range(3)]
    return np.stack([b.abs().mean(dim=0).numpy() for b in bands])


@pytest.mark.parametrize('wavelet,size', [('haar', (8, 10)),
                                          ('db2', (7, 9))])
def test_band_maps_equal_the_dwt2d_reference(wavelet, size):
    level = torch.randn(5, *size, generator=torch.Generator().manual_seed(0))
    maps = wavelet_band_maps(level, wavelet)
    assert maps.dtype == np.float32
    np.testing.assert_allclose(maps, reference(level, wavelet), rtol=1e-5,
                               atol=1e-6)


def test_picture_plots_teacher_and_student_bands(tmp_path):
    gen = torch.Generator().manual_seed(1)
    student = torch.randn(6, 8, 12, generator=gen)
    teacher = 3 * torch.randn(6, 8, 12, generator=gen)
    out = tmp_path / 'bands.png'
    fig, maps = draw_wavelet_bands(student, teacher, str(out))

    assert maps.shape == (2, 4, 4, 6)
    expected = np.stack([reference(teacher, 'haar'),
                         reference(student, 'haar')])
    np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-6)
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 8  # the other axes are the colour bars
    for i, ax in enumerate(panels):
        row, col = divmod(i, 4)
        np.testing.assert_array_equal(ax.images[0].get_array(),
                                      maps[row, col])
    assert [ax.get_title() for ax in panels[:4]] == list(BAND_NAMES)
    assert [panels[0].get_ylabel(), panels[4].get_ylabel()] == [
        'teacher', 'student']
    assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_no_file_unless_asked(tmp_path):
    level = torch.ones(2, 4, 4)
    fig, maps = draw_wavelet_bands(level, level)
    assert list(tmp_path.iterdir()) == []
    # constant map: LL = 2 (haar), details 0
    np.testing.assert_allclose(maps[:, 0], 2, rtol=1e-6)
    np.testing.assert_allclose(maps[:, 1:], 0, atol=1e-6)


def test_errors_name_what_was_expected():
    with pytest.raises(ValueError, match=r'\[C, H, W\], got \(1, 2, 4, 4\)'):
        wavelet_band_maps(torch.ones(1, 2, 4, 4))
    with pytest.raises(ValueError, match='differ in size'):
        draw_wavelet_bands(torch.ones(2, 8, 8), torch.ones(2, 4, 4))
