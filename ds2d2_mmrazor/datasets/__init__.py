from .dior import DIOR_CLASSES, DIORDataset

__all__ = ['DIOR_CLASSES', 'DIORDataset']
