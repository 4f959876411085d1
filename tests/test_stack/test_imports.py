"""The whole repaired stack imports and registers on the installed torch."""
import importlib

import pytest

from ..conftest import HAS_MMROTATE, requires_mmrotate


@pytest.mark.parametrize('module', [
    'mmcv.ops', 'mmdet.models', 'mmrazor.models',
    pytest.param('mmrotate.models', marks=requires_mmrotate),
    pytest.param('mmrotate.models.detectors.refine_single_stage',
                 marks=requires_mmrotate)
])
def test_module_imports(module):
    assert importlib.import_module(module).__name__ == module


def test_mmrazor_registers_all_modules():
    from mmrazor.registry import MODELS
    from mmrazor.utils import register_all_modules
    register_all_modules(False)
    # The distillation machinery this plugin builds on, and mmdet's models
    # reachable from mmrazor's scope (as `mim train mmrazor` sees them).
    for name in ('SingleTeacherDistill', 'ConfigurableDistiller', 'PKDLoss',
                 'ChannelWiseDivergence'):
        assert MODELS.get(name) is not None, name
    assert MODELS.get('mmdet.RetinaNet').__name__ == 'RetinaNet'
    if HAS_MMROTATE:
        assert MODELS.get('mmrotate.RefineSingleStageDetector') is not None


def test_mmrazor_train_tool_accepts_both_local_rank_spellings():
    import os.path as osp
    import runpy

    import mmrazor
    tool = osp.join(osp.dirname(mmrazor.__file__), '.mim', 'tools',
                    'train.py')
    namespace = runpy.run_path(tool)  # defines parse_args, runs nothing
    import sys
    for flag in ('--local-rank=3', '--local_rank=3'):
        argv, sys.argv = sys.argv, ['train.py', 'cfg.py', flag]
        try:
            assert namespace['parse_args']().local_rank == 3
        finally:
            sys.argv = argv
