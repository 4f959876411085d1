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
    python ds2d2_mmrazor/env.py pins --stack onedl        # what to install

The report exits non-zero, with a fix-it message, when anything is wrong.
"""
import argparse
import importlib
import os
import platform
import sys
from typing import List, Optional, Sequence, Tuple

if __package__:
    from . import compat
else:  # run by path: this file's folder is on sys.path, the package not
    import compat

#: The stacks ``make install`` installs (``STACK=...``) and the repairs of
#: compat were written against (docs/install.md: what each holds, why these
#: fit, their measured install and test times), by import name.
#: ``full``, the default: OpenMMLab's last releases with MMRotate; MMRotate
#: 1.0.0rc1 caps MMDetection at 3.1.0, which caps mmcv below 2.1.
#: ``mmdet3.3``: OpenMMLab's last MMDetection, horizontal boxes only
#: (MMRotate 1.0.0rc1 refuses MMDetection 3.3). ``onedl``: the maintained
#: OneDL fork (same import names, ``onedl-*`` distributions: see
#: :data:`DISTRIBUTIONS`), MMDetection 3.5 with MMRotate 1.2.
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
    'onedl': {
        'mmengine': '0.10.12',
        'mmcv': '2.3.6',
        'mmdet': '3.5.1',
        'mmrotate': '1.2.1',
        'mmrazor': '1.0.0',  # there is no OneDL MMRazor
    },
}
#: A stack's distribution names where they differ from the import names.
DISTRIBUTIONS = {
    'onedl': {
        'mmengine': 'onedl-mmengine',
        'mmcv': 'onedl-mmcv',
        'mmdet': 'onedl-mmdetection',
        'mmrotate': 'onedl-mmrotate',
    },
}
#: packages of a stack that another stack leaves out
OPTIONAL = ('mmrotate', )


def dist_name(stack: str, package: str) -> str:
    """The distribution that holds import package ``package`` in ``stack``
    (``'onedl-mmdetection'`` for ``mmdet`` in ``onedl``)."""
    return DISTRIBUTIONS.get(stack, {}).get(package, package)


def dist_names(package: str) -> List[str]:
    """Every distribution of any stack that installs import package
    ``package`` (they share its folder: at most one may be installed).
    ``mmcv-lite``, mmcv without ops, is one of mmcv's."""
    names = [dist_name(stack, package) for stack in STACKS]
    if package == 'mmcv':
        names.append('mmcv-lite')
    return list(dict.fromkeys(names))


def installed_dists(package: str) -> List[Tuple[str, str]]:
    """The installed distributions of import package ``package``, as
    ``(distribution, version)``."""
    found = [(name, compat.dist_version(name))
             for name in dist_names(package)]
    return [(name, version) for name, version in found if version]


def others(stack: str) -> List[str]:
    """The distributions another stack would have where ``stack`` has its
    own, or none: ``make install STACK=stack`` removes them first, since
    they share import folders with this stack's."""
    packages = dict.fromkeys(k for pins in STACKS.values() for k in pins)
    return [name for package in packages for name in dist_names(package)
            if package not in STACKS[stack] or
            name != dist_name(stack, package)]


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
    (none of another's packages included), or None."""
    for name, pins in STACKS.items():
        if all(compat.dist_version(dist_name(name, k)) == v
               for k, v in pins.items()) and not any(
                   compat.dist_version(d) for d in others(name)):
            return name
    return None


def reference_stack(seen: Optional[str] = None) -> str:
    """The stack the installed packages are compared with: ``seen`` (the
    installed one, :func:`installed_stack`, if None), else the one whose
    MMDetection distribution is installed, at the same minor release for
    OpenMMLab's."""
    seen = seen or installed_stack()
    if seen is not None:
        return seen
    for name, pins in STACKS.items():
        mmdet = compat.dist_version(dist_name(name, 'mmdet')) or ''
        if name in DISTRIBUTIONS and mmdet or \
                mmdet.split('.')[:2] == pins['mmdet'].split('.')[:2]:
            return name
    return 'full'


def stack_repairs(stack: str) -> List['compat.Repair']:
    """The repairs of :data:`compat.REPAIRS` that ``stack`` needs."""
    return [r for r in compat.REPAIRS if stack in r.stacks]


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
        wanted, dist = pins.get(name), dist_name(stack, name)
        found = installed_dists(name)
        version = dict(found).get(dist) or (found[0][1] if found else None)
        label = dist
        note = ''
        if len(found) > 1:
            both = ' and '.join(f'{d} {v}' for d, v in found)
            problems.append(f'{both} are both installed: they share the '
                            f'{name} folder; `make install` keeps one')
            note = f'also installed: {both}'
        elif wanted is None:
            label = found[0][0] if found else label
            note = f'not part of the {stack} stack' if found else (
                'not in this stack: oriented boxes (DIOR-R, DOTA) need it; '
                '`make install` installs the full stack')
        elif found and found[0][0] != dist:
            label = found[0][0]
            note = f'the {stack} stack has {dist} instead'
            problems.append(f'{found[0][0]} is installed where the {stack} '
                            f'stack has {dist}')
        elif version is None:
            problems.append(f'{dist} is not installed (want {wanted})')
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
        rows.append((label, version or 'missing', note))

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
              '(`make install STACK=...`: ' + ', '.join(STACKS) + ')')
    else:
        print(f'Stack: {stack}' + (' (horizontal boxes only: no MMRotate)'
                                   if absent else
                                   ' (horizontal and oriented boxes)'))
    print('Environment')
    for name, version, note in rows:
        print(f'  {name:<{width}}  {version:<12} {note}'.rstrip())

    print(f'Repairs of released upstream defects (n/a: not needed on the '
          f'{stack} stack)')
    needed = stack_repairs(stack)
    for repair in compat.REPAIRS:
        state = repair.state() if repair in needed else 'n/a'
        print(f'  {state:<8} {repair.name} ({repair.package} '
              f'{repair.version})')
        if state not in ('applied', 'n/a'):
            problems.append(f'repair {repair.name} is {state}')

    print('Imports')
    for module in ('mmdet.models', 'mmrotate.models', 'mmrazor.models',
                   'ds2d2_mmrazor'):
        if module.split('.')[0] in absent and \
                not installed_dists(module.split('.')[0]):
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


def repair(source: Optional[Sequence[str]],
           stack: Optional[str] = None) -> int:
    """The repair command: installed packages, or an sdist's source.

    Args:
        source (Sequence[str], optional): ``(package, folder)`` of an
            unpacked sdist; None: the installed packages.
        stack (str, optional): The stack whose repairs to apply to the
            installed packages. Defaults to :func:`reference_stack`.
    """
    if source is None:
        compat.apply_repairs(stack_repairs(stack or reference_stack()))
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
        '--stack', choices=sorted(STACKS), default=None,
        help="pins: the stack whose versions to print, as shell variables "
        "MMCV_VERSION, MMCV_DIST, PINS and OTHERS (`make install` "
        "evaluates them; default full); repair: the stack whose repairs to "
        "apply (default: the installed one)")
    args = parser.parse_args(argv)
    if args.source and args.command != 'repair':
        parser.error('--source goes with the repair command')
    if args.command == 'pins':
        stack = args.stack or 'full'
        pins = dict(STACKS[stack])
        print(f'MMCV_VERSION={pins.pop("mmcv")}')
        print(f'MMCV_DIST={dist_name(stack, "mmcv")}')
        print("PINS='" + ' '.join(f'{dist_name(stack, k)}=={v}'
                                  for k, v in pins.items()) + "'")
        print("OTHERS='" + ' '.join(others(stack)) + "'")
        return 0
    if args.command == 'repair':
        try:
            return repair(args.source, args.stack)
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
