from .wavelet_connector import WaveletConnector

__all__ = ['WaveletConnector']
