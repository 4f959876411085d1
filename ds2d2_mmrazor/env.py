# Copyright (c) ds2d2_mmrazor contributors.
"""The OpenMMLab stack this plugin runs on: its health report and repairs.

The report (``make env``) prints the versions, whether mmcv's compiled ops
load, the state of each text repair of :mod:`ds2d2_mmrazor.compat` (where
every repair of a released upstream defect lives) and whether the stack
imports. The repair command applies those repairs (``make install``). This
module imports only the standard library at import time, so it also works
when the stack is broken, and it can be run as a script by path
(``make install`` does so before this package is installed)::

    python ds2d2_mmrazor/env.py repair   # apply the repairs (idempotent)
    python ds2d2_mmrazor/env.py report   # print versions and repair states
    python -m ds2d2_mmrazor.env          # the same report once installed
    python ds2d2_mmrazor/env.py repair --source mmcv DIR  # an sdist in DIR
    python ds2d2_mmrazor/env.py pins --stack mmdet3.3     # what to install

The report exits non-zero, with a fix-it message, when anything is wrong.
"""
import argparse
import importlib
import os
import platform
import sys
from typing import List, Optional, Sequence

if __package__:
    from . import compat
else:  # run by path: this file's folder is on sys.path, the package not
    import compat

#: The stacks ``make install`` installs (``STACK=...``) and the repairs of
#: compat were written against (../shared/docs/stack.md: why these fit).
#: ``full``, the default: MMRotate 1.0.0rc1 caps MMDetection at 3.1.0, which
#: caps mmcv below 2.1. ``mmdet3.3``: the stack most MMDetection users run,
#: horizontal boxes only (MMRotate 1.0.0rc1 refuses MMDetection 3.3).
STACKS = {
    'full': {
        'mmengine': '0.10.7',
        'mmcv': '2.0.1',
        'mmdet': '3.1.0',
        'mmrotate': '1.0.0rc1',
        'mmrazor': '1.0.0',
    },
    'mmdet3.3': {
        'mmengine': '0.10.7',
        'mmcv': '2.1.0',
        'mmdet': '3.3.0',
        'mmrazor': '1.0.0',
    },
}
#: packages of a stack that another stack leaves out
OPTIONAL = ('mmrotate', )

FIX_IT = ('Run `make install` from the ds2d2_mmrazor checkout (it repairs '
          'the installed packages in place), or see docs/install.md, '
          '"Installing into an existing environment".')


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


def installed_stack() -> Optional[str]:
    """The name of the stack in :data:`STACKS` that is installed exactly
    (none of another's optional packages included), or None."""
    for name, pins in STACKS.items():
        if all(compat.dist_version(k) == v for k, v in pins.items()) and all(
                compat.dist_version(k) is None
                for k in OPTIONAL if k not in pins):
            return name
    return None


def reference_stack(seen: Optional[str] = None) -> str:
    """The stack the installed packages are compared with: ``seen`` (the
    installed one, :func:`installed_stack`, if None), else the one of the
    installed MMDetection's minor release."""
    seen = seen or installed_stack()
    if seen is not None:
        return seen
    mmdet = compat.dist_version('mmdet') or ''
    for name, pins in STACKS.items():
        if mmdet.split('.')[:2] == pins['mmdet'].split('.')[:2]:
            return name
    return 'full'


def report() -> List[str]:
    """Print the environment; return the list of problems found."""
    problems = []
    seen = installed_stack()
    stack = reference_stack(seen)
    pins = STACKS[stack]
    absent = [k for k in OPTIONAL if k not in pins]
    rows = [('python', platform.python_version(), '')]

    torch_version = compat.dist_version('torch')
    note = ''
    if torch_version is None:
        problems.append('torch is not installed')
    else:
        import torch
        note = f'cuda {torch.version.cuda}, ' \
               f'available: {torch.cuda.is_available()}' \
            if torch.version.cuda else 'CPU build'
    rows.append(('torch', torch_version or 'missing', note))

    for name in dict.fromkeys(k for p in STACKS.values() for k in p):
        version, wanted = compat.dist_version(name), pins.get(name)
        note = ''
        if version is None and wanted is None:
            note = ('not in this stack: oriented boxes (DIOR-R, DOTA) need '
                    'it; `make install` installs the full stack')
        elif version is None:
            problems.append(f'{name} is not installed (want {wanted})')
        elif wanted is None:
            note = f'not part of the {stack} stack'
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

    for name in ('PyWavelets', 'joblib', 'pycocotools'):
        version = compat.dist_version(name)
        if version is None:
            problems.append(f'{name} is not installed')
        rows.append((name, version or 'missing', ''))
    # an extra (`pip install -e .[mim]`): only `mim train` needs it
    version = compat.dist_version('openmim')
    rows.append(('openmim', version or 'missing',
                 '' if version else '`mim train` needs it; tools/train.py '
                 'does not'))

    width = max(len(r[0]) for r in rows)
    if seen is None:
        print(f'Stack: none of the verified ones; compared with {stack!r} '
              '(`make install`, or `make install STACK=mmdet3.3`)')
    else:
        print(f'Stack: {stack}' + (' (horizontal boxes only: no MMRotate)'
                                   if absent else
                                   ' (horizontal and oriented boxes)'))
    print('Environment')
    for name, version, note in rows:
        print(f'  {name:<{width}}  {version:<12} {note}'.rstrip())

    print('Repairs of released upstream defects')
    for repair in compat.REPAIRS:
        state = repair.state()
        if repair.package in absent and \
                compat.dist_version(repair.package) is None:
            state = 'n/a'  # the package is not part of this stack
        print(f'  {state:<8} {repair.name}')
        if state not in ('applied', 'n/a'):
            problems.append(f'repair {repair.name} is {state}')

    print('Imports')
    for module in ('mmdet.models', 'mmrotate.models', 'mmrazor.models',
                   'ds2d2_mmrazor'):
        if module.split('.')[0] in absent and \
                compat.dist_version(module.split('.')[0]) is None:
            print(f'  {"n/a":<8} {module}')
            continue
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


def sdist_version(root: str) -> Optional[str]:
    """The version an unpacked sdist declares (its PKG-INFO), or None."""
    path = os.path.join(root, 'PKG-INFO')
    if not os.path.isfile(path):
        return None
    with open(path, encoding='utf-8') as f:
        for line in f:
            if line.startswith('Version:'):
                return line.split(':', 1)[1].strip()
    return None


def repair(source: Optional[Sequence[str]]) -> int:
    """The repair command: installed packages, or an sdist's source."""
    if source is None:
        # a package another stack has and this one has not: nothing to do
        repairs = [r for r in compat.REPAIRS if not (
            r.package in OPTIONAL and compat.dist_version(r.package) is None)]
        compat.apply_repairs(repairs)
        return 0
    package, root = source
    known = [r for r in compat.SOURCE_REPAIRS if r.package == package]
    if not known:
        raise ValueError(f'no source repairs for {package!r}; there are '
                         'for: ' + ', '.join(
                             r.package for r in compat.SOURCE_REPAIRS))
    version = sdist_version(root)
    repairs = [r for r in known if r.version == version]
    if not repairs:
        print(f'  none needed     {package} {version} (source repairs are '
              f'for {", ".join(sorted({r.version for r in known}))})')
        return 0
    compat.apply_repairs(repairs, root=root)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('command', choices=['report', 'repair', 'pins'],
                        nargs='?', default='report')
    parser.add_argument(
        '--source', nargs=2, metavar=('PACKAGE', 'DIR'),
        help='repair: apply the source repairs of PACKAGE to its unpacked '
        'sdist in DIR (before it is built), not the installed packages')
    parser.add_argument(
        '--stack', choices=sorted(STACKS), default='full',
        help="pins: the stack whose versions to print, as shell variables "
        "MMCV_VERSION and PINS (`make install` evaluates them)")
    args = parser.parse_args(argv)
    if args.source and args.command != 'repair':
        parser.error('--source goes with the repair command')
    if args.command == 'pins':
        pins = dict(STACKS[args.stack])
        print(f'MMCV_VERSION={pins.pop("mmcv")}')
        print("PINS='" + ' '.join(f'{k}=={v}' for k, v in pins.items())
              + "'")
        return 0
    if args.command == 'repair':
        try:
            return repair(args.source)
        except ValueError as e:
            parser.error(str(e))
        except compat.RepairError as e:
            print(f'error: {e}', file=sys.stderr)
            return 1
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
