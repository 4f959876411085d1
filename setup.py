"""ds2d2_mmrazor: DS2D2 distillation as an MMRazor plugin.

Runtime dependencies are pinned to the releases this project is verified on
(ds2d2_mmrazor/env.py, STACKS; docs/install.md explains why exactly these
fit together). The mmcv wheel needs compiled ops; `make install` builds it
for current torch.

The OneDL fork installs the same import packages (mmengine, mmcv, mmdet,
mmrotate) under other distribution names (onedl-mmengine, ...). Installed
into an environment that has onedl-mmengine, or with DS2D2_STACK=onedl set,
this package requires those names, so pip replaces nothing; otherwise
OpenMMLab's.
"""
import importlib.metadata
import os
import os.path as osp
import sysconfig

from setuptools import find_packages, setup


def read_version() -> str:
    namespace: dict = {}
    with open(osp.join('ds2d2_mmrazor', 'version.py')) as f:
        exec(f.read(), namespace)
    return namespace['__version__']


def onedl_environment() -> bool:
    """Whether this package is installed into a OneDL-fork environment:
    DS2D2_STACK=onedl, or onedl-mmengine in the target's site-packages (read
    by path: pip's isolated build hides the target's packages from
    importlib.metadata's default search, not its paths)."""
    stack = os.environ.get('DS2D2_STACK')
    if stack:
        return stack == 'onedl'
    found = importlib.metadata.distributions(
        name='onedl-mmengine', path=[sysconfig.get_paths()['purelib']])
    return next(iter(found), None) is not None


if onedl_environment():
    # Verified: onedl-mmengine 0.10.12, onedl-mmcv 2.3.6, onedl-mmdetection
    # 3.5.1, onedl-mmrotate 1.2.1 (MMRotate 1.2 accepts MMDetection >= 3.4)
    STACK = [
        'onedl-mmengine>=0.10.12,<1.0.0',
        'onedl-mmcv>=2.3.6,<2.4.0',
        'onedl-mmdetection>=3.5.1,<3.6.0',
    ]
    ROTATED = ['onedl-mmrotate>=1.2.1,<1.3.0']
else:
    STACK = [
        'mmengine>=0.10.7,<1.0.0',
        # Verified: mmdet 3.1.0 + mmcv 2.0.1 and mmdet 3.3.0 + mmcv 2.1.0.
        # mmdet 3.1 asserts mmcv < 2.1, 3.3 mmcv < 2.2; mmcv 2.0.x needs a
        # C++17 build on torch >= 2.1 (`make install` does it).
        'mmcv>=2.0.1,<2.2.0',
        'mmdet>=3.1.0,<3.4.0',
    ]
    # mmrotate 1.0.0rc1 asserts mmdet <= 3.1.0, hence mmcv < 2.1.
    ROTATED = ['mmrotate==1.0.0rc1', 'mmdet==3.1.0', 'mmcv>=2.0.1,<2.1.0']

setup(
    name='ds2d2_mmrazor',
    version=read_version(),
    description='Dual-Stream Spectral Decoupling Distillation (DS2D2) for '
    'MMDetection and MMRotate detectors, as an MMRazor plugin',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['ds2d2_mmrazor', 'ds2d2_mmrazor.*']),
    python_requires='>=3.8',
    install_requires=[
        'torch>=2.1',
        *STACK,
        # The repairs in ds2d2_mmrazor/compat.py match these releases' text.
        'mmrazor==1.0.0',
        # mmrazor 1.0.0 imports joblib without declaring it.
        'joblib',
        'PyWavelets>=1.4',
    ],
    extras_require={
        # Oriented boxes (DIOR-R, DOTA)
        'rotated': ROTATED,
        'tests': ['pytest'],
        'mim': ['openmim'],
    },
    license='Apache License 2.0',
    zip_safe=False,
)
