"""The settings of a study, stated once: the dataclass and its CLI."""
import argparse
import dataclasses
from dataclasses import dataclass, field
from typing import List, Optional


def _opt(default, help: str, **kwargs):
    """A setting: its default and the line ``--help`` prints for it."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default),
                     metadata=dict(help=help, **kwargs))
    return field(default=default, metadata=dict(help=help, **kwargs))


@dataclass
class Settings:
    """Data, models and schedules of a study.

    Every student method trains on one schedule (``epochs``, ``warmup``,
    ``lr``, ``batch_size``, ``clip``); the defaults are the ones chosen on
    the student alone's val AP50 (docs/study.md, "Choices").
    """
    detector: str = _opt('retinanet', 'detector pair',
                         choices=('retinanet', 'faster-rcnn'))
    seeds: List[int] = _opt([0, 1, 2, 3, 4], 'seeds (data, splits and '
                            'initialisations)', nargs='+', type=int)
    methods: Optional[List[str]] = _opt(
        None, 'rows to run (default: all); the runs they need are added',
        nargs='+')
    image_size: int = _opt(128, 'image side, px')
    num_trainval: int = _opt(256, 'train + val images per seed (half '
                             'each)')
    num_test: int = _opt(200, 'test images per seed')
    pretrain_images: int = _opt(
        512, 'images of the pretraining pool (its own seed, shared by '
        'every seed; 0: no pretraining, backbones from scratch)')
    pretrain_epochs: int = _opt(24, 'epochs of the pretraining')
    pretrain_init: str = _opt(
        'detector', 'what teacher and student take from their pretrained '
        'detector: the backbone (as ImageNet weights) or the whole '
        'detector (as a detector pretrained on another dataset)',
        choices=('backbone', 'detector'))
    teacher_epochs: int = _opt(96, 'teacher epochs')
    epochs: int = _opt(48, 'epochs of the amplifier and of every student')
    warmup: int = _opt(50, 'linear lr warm-up of every run, iterations')
    teacher_width: int = _opt(16, 'ResNet base width of the teacher')
    student_width: int = _opt(6, 'ResNet base width of the student')
    channels: int = _opt(32, 'FPN and head channels (both models)')
    head_convs: int = _opt(2, 'stacked convs of the dense heads')
    batch_size: int = _opt(4, 'images per batch (incomplete last batches '
                           'are dropped)')
    lr: float = _opt(0.01, 'SGD learning rate of every run')
    clip: float = _opt(35.0, 'gradient clipping max norm of every run')
    sweep: List[float] = _opt([], 'weight factors tried for every '
                              'distillation method, chosen on val',
                              nargs='*', type=float)
    sweep_seeds: List[int] = _opt([0], 'seeds of the sweep', nargs='+',
                                  type=int)
    schedule: List[float] = _opt(
        [], 'student-alone schedule factors for the convergence curve '
        '(e.g. 0.5 2: epochs x0.5 and x2), on --schedule-seeds', nargs='*',
        type=float)
    schedule_seeds: List[int] = _opt([0, 1], 'seeds of the convergence '
                                     'curve', nargs='+', type=int)

    def model_fields(self) -> dict:
        """The settings that shape a run (not which runs there are)."""
        skip = {'seeds', 'methods', 'sweep', 'sweep_seeds', 'schedule',
                'schedule_seeds'}
        return {f.name: getattr(self, f.name)
                for f in dataclasses.fields(self) if f.name not in skip}


#: ``--quick``'s defaults: tiny data, one seed, a few rows, a few epochs,
#: to check that every stage runs (options given beside it still count)
QUICK = dict(
    image_size=64, num_trainval=16, num_test=8, pretrain_images=8,
    pretrain_epochs=2, teacher_epochs=4, epochs=4, warmup=10,
    teacher_width=8, channels=16, seeds=[0],
    methods=['baseline', 'ds2d2', 'crosskd', 'pkd', 'no_disw'],
    sweep_seeds=[0], schedule_seeds=[0])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One ``--option`` per setting, with its default and help."""
    for f in dataclasses.fields(Settings):
        meta = dict(f.metadata)
        default = f.default_factory() if f.default_factory is not \
            dataclasses.MISSING else f.default
        kind = meta.pop('type', None) or (type(default)
                                          if default is not None else str)
        parser.add_argument('--' + f.name.replace('_', '-'), type=kind,
                            default=default, **meta)


def from_args(args: argparse.Namespace) -> Settings:
    """The settings of parsed arguments."""
    return Settings(**{f.name: getattr(args, f.name)
                       for f in dataclasses.fields(Settings)})
