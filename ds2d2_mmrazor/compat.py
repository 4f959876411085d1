# Copyright (c) ds2d2_mmrazor contributors.
"""Every repair of, and runtime shim around, a released upstream defect.

This is the one place where this plugin works around the OpenMMLab stacks
it runs on (``ds2d2_mmrazor/env.py``, ``STACKS``: OpenMMLab's last releases
and the OneDL fork, mmrazor 1.0.0 on torch 2.x; docs/install.md). Each
entry states the defect, the stacks it applies to, the upstream fix it
mirrors and when to delete it.

Text repairs replace an exact piece of text in an upstream file:

* :data:`REPAIRS`, in the installed packages: applied by ``make install``
  (``python ds2d2_mmrazor/env.py repair``), checked by ``make env``;
* :data:`SOURCE_REPAIRS`, in an unpacked sdist before it is built:
  ``make install`` builds mmcv from source through them.

Runtime shims change what upstream code does in this process, never its
files:

* :func:`allow_runner_checkpoints`: importing ``ds2d2_mmrazor`` applies it;
* :func:`setup_cpu_distributed` and :func:`close_distributed`:
  ``tools/train.py`` applies them around ``Runner.train``.

Only the standard library is imported at module import time: ``env.py``
applies the text repairs by path before this package, or a working stack,
is installed. The runtime shims import torch and MMEngine when called.
"""
import importlib.metadata
import importlib.util
import os
import pickle
import re
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence, Tuple


# --------------------------------------------------------------------------
# Text repairs
# --------------------------------------------------------------------------
class RepairError(RuntimeError):
    """An upstream file does not contain the text a repair expects."""


def dist_version(name: str) -> Optional[str]:
    """The installed version of distribution ``name``, or None."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


@dataclass(frozen=True)
class Repair:
    """An exact text replacement in one upstream file.

    Args:
        package (str): Distribution / top-level import name, e.g. 'mmrazor'.
        version (str): The release this repair was written against.
        path (str): File path relative to the package directory (or, for a
            source repair, to the unpacked sdist).
        old (str): Text the released file contains.
        new (str): Text it is replaced with.
        why (str): The defect, and the upstream fix this mirrors.
        delete_when (str): When this entry can be deleted.
        count (int): How many times the released file contains ``old``;
            every one is replaced. Defaults to 1.
        stacks (tuple[str]): The stacks of ``env.STACKS`` whose release of
            ``package`` has the defect; ``make install`` applies the repair
            on those only, ``make env`` shows it as n/a on the others.
            Defaults to (): not tied to a stack (applied wherever asked).
    """
    package: str
    version: str
    path: str
    old: str
    new: str
    why: str
    delete_when: str
    count: int = 1
    stacks: Tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f'{self.package}/{self.path}'

    def file(self, root: Optional[str] = None) -> Optional[str]:
        """Absolute path of the file, or None if the package is absent.

        Args:
            root (str, optional): An unpacked source tree of the package.
                Defaults to None: the installed package.
        """
        if root is not None:
            return os.path.join(root, self.path)
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            return None
        return os.path.join(list(spec.submodule_search_locations)[0],
                            self.path)

    def state(self, root: Optional[str] = None) -> str:
        """'applied', 'pending', 'missing' (package absent) or 'unknown'."""
        path = self.file(root)
        if path is None or not os.path.isfile(path):
            return 'missing'
        with open(path, encoding='utf-8') as f:
            text = f.read()
        if self.old in text:
            return 'pending'
        if self.new in text:
            return 'applied'
        return 'unknown'

    def apply(self, root: Optional[str] = None) -> bool:
        """Apply the repair; return True if the file was changed.

        Args:
            root (str, optional): An unpacked source tree of the package.
                Defaults to None: the installed package.

        Raises:
            RepairError: If the package is missing or the file holds neither
                the expected released text nor the repaired text (a
                different release than the one this repair was written for).
        """
        state = self.state(root)
        if state == 'applied':
            return False
        if state != 'pending':
            found = (f'{root!r}' if root is not None else
                     f'{self.package} '
                     f'{dist_version(self.package) or "not installed"}')
            raise RepairError(
                f'{self.name}: expected the text of {self.package} '
                f'{self.version} but found {found} without it ({state}). '
                f'This repair mirrors: {self.why}. Install the stack it is '
                f'for ({", ".join(self.stacks) or "any"}: `make install '
                'STACK=...`) or, if your release already has the fix, '
                'remove this entry from ds2d2_mmrazor/compat.py.')
        path = self.file(root)
        with open(path, encoding='utf-8') as f:
            text = f.read()
        count = text.count(self.old)
        if count != self.count:
            raise RepairError(
                f'{self.name}: expected the text to replace {self.count} '
                f'time{"s" if self.count > 1 else ""}, found it {count} '
                'times')
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
    '(unreleased)',
    'an mmrazor release after 1.0.0 carries the fix of its main branch and '
    'this project moves to it')
_LOCAL_RANK = (
    "parser.add_argument('--local_rank', type=int, default=0)",
    "parser.add_argument('--local_rank', '--local-rank', type=int, "
    'default=0)',
    "torch>=2.0's launcher passes --local-rank; mmdet 3.1's tools/train.py "
    'accepts both spellings, mmrazor 1.0.0 only --local_rank (unfixed '
    'upstream)',
    "an mmrazor release's tools accept --local-rank, or `mim train/test "
    "mmrazor` is no longer a supported way to run this plugin")

_EVERY_STACK = ('full', 'mmdet3.3', 'onedl')

#: Repairs of the installed packages (``make install``; ``make env``).
REPAIRS: Tuple[Repair, ...] = (
    Repair('mmrazor', '1.0.0', 'structures/quantization/backend_config/'
           'common_operator_config_utils.py', *_MMRAZOR_TORCH_CHECK,
           stacks=_EVERY_STACK),
    Repair('mmrazor', '1.0.0',
           'structures/quantization/backend_config/mapping.py',
           *_MMRAZOR_TORCH_CHECK, stacks=_EVERY_STACK),
    Repair('mmrazor', '1.0.0', '.mim/tools/train.py', *_LOCAL_RANK,
           stacks=_EVERY_STACK),
    Repair('mmrazor', '1.0.0', '.mim/tools/test.py', *_LOCAL_RANK,
           stacks=_EVERY_STACK),
    Repair(
        'mmrazor', '1.0.0', '__init__.py',
        "mmcv_maximum_version = '2.1.0'",
        "mmcv_maximum_version = '2.3.6'  # ds2d2_mmrazor repair",
        "mmrazor 1.0.0 asserts mmcv <= 2.1.0 when imported (\"MMCV==2.3.6 "
        'is used but incompatible"), a cap of its release date, not a '
        'measured limit: its algorithms, and this plugin\'s tests, run on '
        'onedl-mmcv 2.3.6 (there is no OneDL mmrazor)',
        'an mmrazor release accepts mmcv 2.3',
        stacks=('onedl', )),
    Repair(
        'mmrotate', '1.0.0rc1', 'models/detectors/refine_single_stage.py',
        'from collections import Sequence',
        'from collections.abc import Sequence',
        '`collections.Sequence` was removed in Python 3.10; mmrotate dev-1.x '
        'imports it from collections.abc (unreleased on PyPI)',
        'a mmrotate 1.x release after 1.0.0rc1 reaches PyPI and this project '
        'moves to it',
        stacks=('full', )),
    Repair(
        'mmrotate', '1.2.1', 'models/detectors/h2rbox_v2.py',
        'from torchvision import transforms\n',
        '# ds2d2_mmrazor repair: no torchvision import (vflip below)\n',
        'onedl-mmrotate 1.2.1 imports torchvision in h2rbox_v2.py, so '
        '`import mmrotate.models` fails without torchvision, which none of '
        'its packages declares (and a PyPI torchvision beside a +cpu or '
        'other local torch build breaks on import); it uses it once, for '
        'a vertical flip of a tensor',
        'onedl-mmrotate imports torchvision where it uses it, or declares it',
        stacks=('onedl', )),
    Repair(
        'mmrotate', '1.2.1', 'models/detectors/h2rbox_v2.py',
        'transforms.functional.vflip(batch_inputs)',
        'batch_inputs.flip(-2)  # ds2d2_mmrazor repair: torchvision vflip',
        "torchvision's vflip of a tensor is `tensor.flip(-2)`; with the "
        'import above removed, h2rbox_v2 computes the same without '
        'torchvision',
        'the repair above is deleted',
        stacks=('onedl', )),
    Repair(
        'mmengine', '0.10.12', 'runner/checkpoint.py',
        "                msg = (f'Could not safely load weights: {e}. '\n"
        "                       'Falling back to weights_only=False. '\n"
        "                       'In the future this might be removed.')\n"
        '                print_log(msg, level=logging.WARNING)\n'
        '                return torch.load(\n'
        '                    file, map_location=map_location, '
        'weights_only=False)\n',
        '                raise  # ds2d2_mmrazor repair: never unpickle '
        'arbitrary code\n',
        'onedl-mmengine 0.10.12 loads checkpoints weights-only, but when '
        'that fails it warns and loads again with weights_only=False: a '
        'checkpoint pickling os.system runs it. OpenMMLab mmengine 0.10.7 '
        'never retries. (Processes that import ds2d2_mmrazor are protected '
        'without this repair: see allow_runner_checkpoints)',
        'onedl-mmengine refuses a checkpoint that fails weights-only loading',
        stacks=('onedl', )),
)

def cxx_standard(torch_version: Optional[str]) -> str:
    """The C++ standard a torch release's headers need to compile against:
    C++20 from torch 2.14 ("C++20 or later compatible compiler is required
    to use ATen"), C++17 from 2.1 (and for an unknown version)."""
    parts = [int(p) for p in re.findall(r'\d+', torch_version or '')[:2]]
    return 'c++20' if len(parts) == 2 and tuple(parts) >= (2, 14) else \
        'c++17'


def mmcv_source_repairs(torch_version: Optional[str]) -> Tuple[Repair, ...]:
    """The repairs of mmcv's sdists for building against ``torch_version``
    (:data:`SOURCE_REPAIRS` holds those of the installed torch)."""
    standard = cxx_standard(torch_version)
    repairs = [Repair(
        'mmcv', '2.0.1', 'setup.py', 'c++14', standard,
        'mmcv 2.0.1 compiles its ops with -std=c++14, but torch >= 2.1 '
        'headers need C++17 ("C++17 or later compatible compiler is '
        'required to use ATen"), torch >= 2.14 C++20; mmcv 2.1.0 compiles '
        'with C++17',
        'this project moves to mmcv >= 2.1 (mmdet 3.1.0 asserts mmcv < 2.1 '
        'and mmrotate 1.0.0rc1 mmdet <= 3.1.0)',
        count=8, stacks=('full', ))]
    if standard != 'c++17':
        # onedl-mmcv's sdist declares version 2.3.6 as mmcv's do theirs
        for version, stack in (('2.1.0', 'mmdet3.3'), ('2.3.6', 'onedl')):
            repairs.append(Repair(
                'mmcv', version, 'setup.py', 'c++17', standard,
                f'mmcv {version} compiles its ops with -std=c++17, but '
                'torch >= 2.14 headers need C++20 ("C++20 or later '
                'compatible compiler is required to use ATen")',
                'an mmcv release this project uses compiles with the '
                'standard of the torch it is built against',
                count=5, stacks=(stack, )))
    return tuple(repairs)


#: Repairs of unpacked sdists before they are built (``make install``), for
#: the installed torch.
SOURCE_REPAIRS: Tuple[Repair, ...] = mmcv_source_repairs(
    dist_version('torch'))


def apply_repairs(repairs: Optional[Sequence[Repair]] = None,
                  root: Optional[str] = None,
                  verbose: bool = True) -> List[str]:
    """Apply repairs; return the names of the files changed.

    Args:
        repairs (Sequence[Repair], optional): Defaults to :data:`REPAIRS`.
        root (str, optional): The unpacked source tree the repairs apply
            to. Defaults to None: the installed packages.
        verbose (bool): Print one line per repair. Defaults to True.
    """
    changed = []
    for repair in REPAIRS if repairs is None else repairs:
        was_changed = repair.apply(root)
        if was_changed:
            changed.append(repair.name)
        if verbose:
            print(f'  {"repaired" if was_changed else "already repaired":<16}'
                  f' {repair.name}')
    return changed


# --------------------------------------------------------------------------
# Runtime shims: checkpoints
# --------------------------------------------------------------------------
_checkpoints_allowed = False


def _history_buffer_method(obj: Any, name: str) -> Callable:
    """A ``getattr`` restricted to ``HistoryBuffer``'s statistics methods.

    Registered under the name ``builtins.getattr``, so a checkpoint can look
    up ``HistoryBuffer.mean`` and friends but nothing else.
    """
    from mmengine.logging import HistoryBuffer

    # The built-in statistics, plus any registered with
    # HistoryBuffer.register_statistics in this process.
    allowed = {'min', 'max', 'current', 'mean',
               *HistoryBuffer._statistics_methods}
    if obj is not HistoryBuffer or name not in allowed:
        raise pickle.UnpicklingError(
            f'checkpoint asks for getattr({obj!r}, {name!r}); only the '
            f'HistoryBuffer statistics methods {sorted(allowed)} are allowed')
    return getattr(HistoryBuffer, name)


def runner_checkpoint_globals() -> List[Tuple[Any, str]]:
    """The (object, pickled name) pairs a Runner checkpoint needs."""
    import numpy as np
    from mmengine.logging import HistoryBuffer
    try:  # numpy >= 2
        from numpy._core import multiarray
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray

    pairs = [(HistoryBuffer, 'mmengine.logging.history_buffer.HistoryBuffer'),
             (_history_buffer_method, 'builtins.getattr'),
             (np.ndarray, 'numpy.ndarray'), (np.dtype, 'numpy.dtype')]
    # Checkpoints written under numpy 1.x name numpy.core, 2.x numpy._core.
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        pairs += [(multiarray._reconstruct, f'{module}._reconstruct'),
                  (multiarray.scalar, f'{module}.scalar')]
    # numpy.dtype(...) returns instances of per-type classes (Float64DType,
    # ...) that the unpickler then BUILDs: allow the numeric ones.
    for name in ('bool', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16',
                 'uint32', 'uint64', 'float16', 'float32', 'float64'):
        cls = type(np.dtype(name))
        pairs.append((cls, f'{cls.__module__}.{cls.__name__}'))
    return pairs


def _weights_only_load(file: Any, map_location: Any = None,
                       weights_only: Optional[bool] = None) -> Any:
    """``torch.load``, weights-only unless the caller says otherwise.

    Takes the place of onedl-mmengine's ``_safe_torch_load`` (see
    :func:`allow_runner_checkpoints`): no allow-list of its own, and no
    second attempt with ``weights_only=False``.
    """
    import torch

    return torch.load(file, map_location=map_location,
                      weights_only=True if weights_only is None else
                      weights_only)


def allow_runner_checkpoints() -> None:
    """Allow-list the globals of MMEngine Runner checkpoints, and load every
    checkpoint weights-only (idempotent).

    Defect: since torch 2.6, ``torch.load`` defaults to weights-only
    unpickling, which refuses every global that is not allow-listed.
    MMEngine 0.10.7 calls plain ``torch.load``, and a full Runner checkpoint
    (teacher checkpoints, resume) pickles its ``MessageHub`` state:
    ``HistoryBuffer`` objects holding numpy arrays and scalars, and the
    buffers' statistics methods, which pickle as
    ``getattr(HistoryBuffer, 'mean')``. Allow-listing exactly those globals
    lets such checkpoints load while any other global (and so arbitrary
    code) is still refused. Weights-only loading is never switched off.

    onedl-mmengine (0.10.8 and later, stack ``onedl``) reads checkpoints
    through its own ``_safe_torch_load``, which allow-lists plain
    ``getattr`` and, when weights-only loading fails, warns and loads the
    file again with ``weights_only=False``: a checkpoint that pickles
    ``os.system`` runs it. That function is replaced by
    :func:`_weights_only_load`, so the file is refused instead, as on
    OpenMMLab's mmengine (``make install`` also repairs the installed file
    for processes that never import this package: :data:`REPAIRS`).

    Upstream: unfixed in MMEngine's releases (0.10.7 is the last) and in
    onedl-mmengine 0.10.12.

    Delete when: MMEngine loads its own checkpoints under torch's
    weights-only default with an allow-list of its own, and never retries
    without it.

    A no-op on torch < 2.6, which does not load weights-only by default.
    """
    global _checkpoints_allowed
    import torch

    if _checkpoints_allowed or not hasattr(torch.serialization,
                                           'add_safe_globals'):
        return
    version = tuple(int(v) for v in torch.__version__.split('.')[:2])
    if version < (2, 6):
        return
    torch.serialization.add_safe_globals(runner_checkpoint_globals())
    from mmengine.runner import checkpoint
    if hasattr(checkpoint, '_safe_torch_load'):  # onedl-mmengine
        checkpoint._safe_torch_load = _weights_only_load
    _checkpoints_allowed = True


# --------------------------------------------------------------------------
# Runtime shims: distributed training without CUDA
# --------------------------------------------------------------------------
def setup_cpu_distributed(cfg: Any) -> None:
    """Let torchrun work without CUDA (gloo), e.g. to try DDP on a laptop.

    Defect: MMEngine 0.10.7 calls ``torch.cuda.set_device`` when it
    initialises the process group (``mmengine.dist.init_dist``) and gives
    DDP ``device_ids=[LOCAL_RANK]`` (``Runner.wrap_model``), both of which
    fail without CUDA. Initialising the group here (the Runner then skips
    it) and wrapping without ``device_ids`` avoids both. GPU runs are
    untouched.

    Upstream: unfixed in MMEngine's releases (0.10.7 is the last).

    Delete when: MMEngine initialises a gloo group and wraps DDP without
    ``device_ids`` when CUDA is absent.

    Args:
        cfg (mmengine.Config): The training config; its ``launcher`` is
            read and its ``model_wrapper_cfg`` set.

    Raises:
        ValueError: For a launcher other than 'pytorch' without CUDA.
    """
    import torch

    if cfg.launcher == 'none' or torch.cuda.is_available():
        return
    if cfg.launcher != 'pytorch':
        raise ValueError(f'--launcher {cfg.launcher} needs CUDA; on CPU use '
                         'torchrun with --launcher pytorch')
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend='gloo')
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel', broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper


def close_distributed() -> None:
    """End a distributed run: all ranks finish together (no-op otherwise).

    Defect: MMEngine 0.10.7's Runner never destroys the process group it
    creates, and a rank exiting while gloo threads still run can abort
    ("terminate called without an active exception"). A barrier, then
    ``destroy_process_group``, avoids that.

    Upstream: unfixed in MMEngine's releases (0.10.7 is the last).

    Delete when: ``Runner.train`` (or its exit) destroys the process group
    it created.
    """
    import torch

    if torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
