# Copyright (c) ds2d2_mmrazor contributors.
"""The OpenMMLab stack this plugin runs on: its repairs and a health report.

This is the one place where released upstream defects are repaired. Each
:class:`Repair` replaces an exact piece of text in an installed upstream file
and names the upstream fix it mirrors; delete an entry once the package
releases that fix. The module imports only the standard library at import
time, so it also works when the stack is broken, and it can be run as a
script by path (``make install`` does so before this package is installed)::

    python ds2d2_mmrazor/env.py repair   # apply the repairs (idempotent)
    python ds2d2_mmrazor/env.py report   # print versions and repair states
    python -m ds2d2_mmrazor.env          # the same report once installed

The report exits non-zero, with a fix-it message, when anything is wrong.
"""
import argparse
import importlib
import importlib.metadata
import importlib.util
import os
import platform
import sys
from dataclasses import dataclass
from typing import List, Optional, Tuple

#: Versions the install step installs and the repairs below were written
#: against (see ../shared/docs/stack.md for why exactly these).
STACK = {
    'mmengine': '0.10.7',
    'mmcv': '2.0.1',
    'mmdet': '3.1.0',
    'mmrotate': '1.0.0rc1',
    'mmrazor': '1.0.0',
}

FIX_IT = ('Run `make install` from the ds2d2_mmrazor checkout (it repairs '
          'the installed packages in place), or see README.md, '
          '"Installing into an existing environment".')


class RepairError(RuntimeError):
    """An upstream file does not contain the text a repair expects."""


@dataclass(frozen=True)
class Repair:
    """An exact text replacement in one installed upstream file.

    Args:
        package (str): Distribution / top-level import name, e.g. 'mmrazor'.
        version (str): The release this repair was written against.
        path (str): File path relative to the package directory.
        old (str): Text the released file contains.
        new (str): Text it is replaced with.
        why (str): The defect, and the upstream fix this mirrors.
    """
    package: str
    version: str
    path: str
    old: str
    new: str
    why: str

    @property
    def name(self) -> str:
        return f'{self.package}/{self.path}'

    def file(self) -> Optional[str]:
        """Absolute path of the file, or None if the package is absent."""
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            return None
        return os.path.join(list(spec.submodule_search_locations)[0],
                            self.path)

    def state(self) -> str:
        """'applied', 'pending', 'missing' (package absent) or 'unknown'."""
        path = self.file()
        if path is None or not os.path.isfile(path):
            return 'missing'
        with open(path, encoding='utf-8') as f:
            text = f.read()
        if self.old in text:
            return 'pending'
        if self.new in text:
            return 'applied'
        return 'unknown'

    def apply(self) -> bool:
        """Apply the repair; return True if the file was changed.

        Raises:
            RepairError: If the package is missing or the file holds neither
                the expected released text nor the repaired text (a
                different release than the one this repair was written for).
        """
        state = self.state()
        if state == 'applied':
            return False
        if state != 'pending':
            installed = _dist_version(self.package)
            raise RepairError(
                f'{self.name}: expected the text of {self.package} '
                f'{self.version} but found {self.package} '
                f'{installed or "not installed"} without it ({state}). '
                f'This repair mirrors: {self.why}. Install {self.package}=='
                f'{self.version} or, if your release already has the fix, '
                f'remove this entry from ds2d2_mmrazor/env.py.')
        path = self.file()
        with open(path, encoding='utf-8') as f:
            text = f.read()
        count = text.count(self.old)
        if count != 1:
            raise RepairError(f'{self.name}: expected the text to replace '
                              f'once, found it {count} times')
        with open(path, 'w', encoding='utf-8') as f:
            f.write(text.replace(self.old, self.new))
        return True


_MMRAZOR_TORCH_CHECK = (
    "if digit_version(torch.__version__) >= digit_version('1.13.0'):",
    "if digit_version('1.13.0') <= digit_version(torch.__version__) "
    "< digit_version('2.0.0'):  # ds2d2_mmrazor repair",
    'mmrazor 1.0.0 builds torch-1.13-only quantization tables for any torch '
    '>= 1.13, so `import mmrazor.models` fails on torch 2.x ("torch>=1.13 is '
    'not installed properly"); mmrazor main limits the block to torch 1.13 '
    '(unreleased)')
_LOCAL_RANK = (
    "parser.add_argument('--local_rank', type=int, default=0)",
    "parser.add_argument('--local_rank', '--local-rank', type=int, "
    'default=0)',
    "torch>=2.0's launcher passes --local-rank; mmdet 3.1's tools/train.py "
    'accepts both spellings, mmrazor 1.0.0 only --local_rank (unfixed '
    'upstream)')

REPAIRS: Tuple[Repair, ...] = (
    Repair('mmrazor', '1.0.0', 'structures/quantization/backend_config/'
           'common_operator_config_utils.py', *_MMRAZOR_TORCH_CHECK),
    Repair('mmrazor', '1.0.0',
           'structures/quantization/backend_config/mapping.py',
           *_MMRAZOR_TORCH_CHECK),
    Repair('mmrazor', '1.0.0', '.mim/tools/train.py', *_LOCAL_RANK),
    Repair('mmrazor', '1.0.0', '.mim/tools/test.py', *_LOCAL_RANK),
    Repair(
        'mmrotate', '1.0.0rc1', 'models/detectors/refine_single_stage.py',
        'from collections import Sequence',
        'from collections.abc import Sequence',
        '`collections.Sequence` was removed in Python 3.10; mmrotate dev-1.x '
        'imports it from collections.abc (unreleased on PyPI)'),
)


def apply_repairs(verbose: bool = True) -> List[str]:
    """Apply every repair; return the names of the files changed."""
    changed = []
    for repair in REPAIRS:
        was_changed = repair.apply()
        if was_changed:
            changed.append(repair.name)
        if verbose:
            print(f'  {"repaired" if was_changed else "already repaired":<16}'
                  f' {repair.name}')
    return changed


def _dist_version(name: str) -> Optional[str]:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _check_import(module: str) -> Optional[str]:
    """Import a module; return None on success or the error as text."""
    try:
        importlib.import_module(module)
    except Exception as e:  # noqa: BLE001 -- reported, not swallowed
        return f'{type(e).__name__}: {e}'
    return None


def _mmcv_ops() -> Optional[str]:
    """None if mmcv's compiled ops load, else why not."""
    error = _check_import('mmcv.ops')
    if error:
        return error
    try:
        from mmcv.utils import ext_loader
        ext_loader.load_ext('_ext', ['nms'])
    except Exception as e:  # noqa: BLE001
        return f'{type(e).__name__}: {e}'
    return None


def report() -> List[str]:
    """Print the environment; return the list of problems found."""
    problems = []
    rows = [('python', platform.python_version(), '')]

    torch_version = _dist_version('torch')
    note = ''
    if torch_version is None:
        problems.append('torch is not installed')
    else:
        import torch
        note = f'cuda {torch.version.cuda}, ' \
               f'available: {torch.cuda.is_available()}' \
            if torch.version.cuda else 'CPU build'
    rows.append(('torch', torch_version or 'missing', note))

    for name, wanted in STACK.items():
        version = _dist_version(name)
        note = ''
        if version is None:
            problems.append(f'{name} is not installed (want {wanted})')
        elif version != wanted:
            note = f'untested: this project is verified on {wanted}'
        if name == 'mmcv' and version is not None:
            ops_error = _mmcv_ops()
            note = (note + '; ' if note else '') + (
                'compiled ops load' if ops_error is None else
                f'compiled ops do not load ({ops_error})')
            if ops_error:
                problems.append('mmcv was built without ops or does not match '
                                f'torch: {ops_error}')
        rows.append((name, version or 'missing', note))

    for name in ('PyWavelets', 'joblib', 'pycocotools', 'openmim'):
        version = _dist_version(name)
        if version is None:
            problems.append(f'{name} is not installed')
        rows.append((name, version or 'missing', ''))

    width = max(len(r[0]) for r in rows)
    print('Environment')
    for name, version, note in rows:
        print(f'  {name:<{width}}  {version:<12} {note}'.rstrip())

    print('Repairs of released upstream defects')
    for repair in REPAIRS:
        state = repair.state()
        print(f'  {state:<8} {repair.name}')
        if state != 'applied':
            problems.append(f'repair {repair.name} is {state}')

    print('Imports')
    for module in ('mmdet.models', 'mmrotate.models', 'mmrazor.models',
                   'ds2d2_mmrazor'):
        error = _check_import(module)
        print(f'  {"ok" if error is None else "FAILED":<8} {module}'
              + (f': {error}' if error else ''))
        if error:
            problems.append(f'import {module} failed: {error}')

    print('Checkpoints')
    weights_only_off = os.environ.get('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD',
                                      '0') not in ('0', '')
    if weights_only_off:
        problems.append('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD is set, so any '
                        'checkpoint can run code when loaded: unset it')
        print('  weights-only loading: OFF (TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD)')
    elif torch_version is not None:
        major_minor = tuple(int(v) for v in torch_version.split('.')[:2])
        print('  weights-only loading: ' + (
            'on; MMEngine Runner globals are allow-listed when '
            'ds2d2_mmrazor is imported' if major_minor >= (2, 6) else
            'not the default before torch 2.6'))
    return problems


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('command', choices=['report', 'repair'],
                        nargs='?', default='report')
    args = parser.parse_args(argv)
    if args.command == 'repair':
        try:
            apply_repairs()
        except RepairError as e:
            print(f'error: {e}', file=sys.stderr)
            return 1
        return 0
    problems = report()
    if problems:
        print('\nProblems:', file=sys.stderr)
        for p in problems:
            print(f'  - {p}', file=sys.stderr)
        print(f'\n{FIX_IT}', file=sys.stderr)
        return 1
    print('\nAll good.')
    return 0


if __name__ == '__main__':
    sys.exit(main())
