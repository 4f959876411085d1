"""ds2d2_mmrazor: DS2D2 distillation as an MMRazor plugin.

Runtime dependencies are pinned to the releases this project is verified on
(../shared/docs/stack.md explains why exactly these fit together). The
mmcv wheel needs compiled ops; `make install` builds it for current torch.
"""
import os.path as osp

from setuptools import find_packages, setup


def read_version() -> str:
    namespace: dict = {}
    with open(osp.join('ds2d2_mmrazor', 'version.py')) as f:
        exec(f.read(), namespace)
    return namespace['__version__']


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
        'mmengine>=0.10.7,<1.0.0',
        # Verified: mmdet 3.1.0 + mmcv 2.0.1 and mmdet 3.3.0 + mmcv 2.1.0
        # (ds2d2_mmrazor/env.py, STACKS). mmdet 3.1 asserts mmcv < 2.1,
        # 3.3 mmcv < 2.2; mmcv 2.0.x needs a C++17 build on torch >= 2.1
        # (`make install` does it).
        'mmcv>=2.0.1,<2.2.0',
        'mmdet>=3.1.0,<3.4.0',
        # The repairs in ds2d2_mmrazor/compat.py match these releases' text.
        'mmrazor==1.0.0',
        # mmrazor 1.0.0 imports joblib without declaring it.
        'joblib',
        'PyWavelets>=1.4',
    ],
    extras_require={
        # Oriented boxes (DIOR-R, DOTA): mmrotate 1.0.0rc1 asserts
        # mmdet <= 3.1.0, hence mmcv < 2.1.
        'rotated': ['mmrotate==1.0.0rc1', 'mmdet==3.1.0',
                    'mmcv>=2.0.1,<2.1.0'],
        'tests': ['pytest'],
        'mim': ['openmim'],
    },
    license='Apache License 2.0',
    zip_safe=False,
)
