"""The study's rows, as small records, and the config each run trains."""
import copy
import os
import os.path as osp
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

from .settings import Settings

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = osp.join(REPO, 'configs')
CLASSES = ('vehicle', 'ship', 'storagetank', 'airplane', 'tenniscourt')
DETECTORS = {
    'retinanet': dict(
        teacher='retinanet_r101_fpn_2x_dior.py',
        amplifier='ds2d2_amplifier_retinanet_r101_fpn_2x_dior.py',
        student='retinanet_r18_fpn_2x_dior.py',
        ds2d2='ds2d2_retina_r18_r101_dior.py',
        scale_free='ds2d2_scale-free_retina_r18_r101_dior.py'),
    'faster-rcnn': dict(
        teacher='faster-rcnn_r101_fpn_2x_dior.py',
        amplifier='ds2d2_amplifier_faster-rcnn_r101_fpn_2x_dior.py',
        student='faster-rcnn_r18_fpn_2x_dior.py',
        ds2d2='ds2d2_faster-rcnn_r18_r101_dior.py',
        scale_free='ds2d2_scale-free_faster-rcnn_r18_r101_dior.py'),
}
#: peers on the FPN features (MMRazor's losses; any detector pair)
FPN_PEERS = dict(pkd='PKD', cwd='CWD', mgd='MGD', fitnet='FitNet')
#: the loss weights a distillation loss config may carry
WEIGHT_KEYS = ('loss_weight', 'low_weight', 'high_weight', 'alpha_mgd')
#: the explicit-only weight sweep: the authors' weights x these factors
EXPLICIT_SWEEP = (100, 1000, 10000)
#: the recipes' image side and FPN channels (MGD's sum is taken at these)
RECIPE_SIZE, RECIPE_CHANNELS = 800, 256

Edit = Callable[[object, Settings], None]


@dataclass
class Method:
    """A study row or a model the rows need.

    Args:
        label (str): Row label.
        config (str): Key of ``DETECTORS[...]`` or a path under configs/.
        needs (tuple): Models whose checkpoints it loads: 'teacher',
            'amplifier'. Every student also starts from the seed's
            student initialisation, the teacher from the pretrained
            teacher backbone.
        edit (callable, optional): ``edit(cfg, settings)`` changes the tiny
            config (ablations, scale fixes).
        group (str): 'model' (pretraining, teacher, amplifier), 'compare'
            or 'ablate'.
        by_name (bool): Runs only when ``--methods`` names it (not in a
            study of every row).
    """
    label: str
    config: str
    needs: tuple = ()
    edit: Optional[Edit] = None
    group: str = 'compare'
    by_name: bool = False


def wanted_rows(settings: Settings, rows: Dict[str, Method]) -> List[str]:
    """The rows a study runs: ``settings.methods``, or every row not
    ``by_name``."""
    return settings.methods or [name for name, row in rows.items()
                                if not row.by_name]


# --------------------------------------------------------------------------
# edits
# --------------------------------------------------------------------------
def _drop_losses(cfg, *names: str) -> None:
    distiller = cfg.model.distiller
    for name in names:
        distiller.distill_losses.pop(name)
        distiller.loss_forward_mappings.pop(name)


def _without_amplifier(cfg) -> None:
    cfg.model.amplifier = None
    cfg.model.amplifier_ckpt = None


def explicit_only(cfg, settings: Settings) -> None:
    _drop_losses(cfg, 'loss_amp_full', 'loss_amp_high')
    _without_amplifier(cfg)


def implicit_only(cfg, settings: Settings) -> None:
    _drop_losses(cfg, 'loss_spectral')
    cfg.model.distiller.connectors = dict()


def without_disw(cfg, settings: Settings) -> None:
    cfg.model.distiller.distill_losses.loss_spectral.disw = False


def without_hf_amplifier(cfg, settings: Settings) -> None:
    _drop_losses(cfg, 'loss_amp_high')
    _without_amplifier(cfg)


def wavelet_db2(cfg, settings: Settings) -> None:
    for connector in cfg.model.distiller.connectors.values():
        connector.wavelet = 'db2'


def explicit_scaled(factor: float) -> Edit:
    """The explicit stream only, at the authors' weights x ``factor``."""
    def edit(cfg, settings: Settings) -> None:
        explicit_only(cfg, settings)
        scale_distill_weights(cfg, factor)
    return edit


def mgd_element_scale(settings: Settings) -> float:
    """How much smaller MGD's loss is here than at its recipe's size.

    MMRazor's ``MGDLoss`` is a SUM of squared errors over C x H x W, per
    image: at ``image_size`` px and ``channels`` channels each FPN level
    has (image_size / 800)^2 * channels / 256 of the recipe's elements.
    """
    return (RECIPE_SIZE / settings.image_size)**2 * \
        RECIPE_CHANNELS / settings.channels


def mgd_to_scale(cfg, settings: Settings) -> None:
    """Bring MGD's recipe weight to the same per-element strength."""
    for loss in cfg.model.distiller.distill_losses.values():
        loss.alpha_mgd = loss.alpha_mgd * mgd_element_scale(settings)


def methods(detector: str) -> Dict[str, Method]:
    """Every row of the study for one detector, in table order."""
    both = ('teacher', 'amplifier')
    rows = dict(
        teacher=Method('teacher (R-101 recipe)', 'teacher', group='model'),
        amplifier=Method('HF amplifier', 'amplifier', ('teacher', ),
                         group='model'),
        baseline=Method('student alone', 'student'),
        ds2d2=Method('DS2D2', 'ds2d2', both),
        scale_free=Method('DS2D2, scale-free (share 1)', 'scale_free',
                          both, by_name=True),
    )
    if detector == 'retinanet':  # CrossKD reuses a dense head
        rows.update(
            crosskd=Method('CrossKD (last head conv)',
                           'peers/crosskd_retina_r18_r101_dior.py',
                           ('teacher', )),
            crosskd0=Method('CrossKD (whole head, index 0)',
                            'peers/crosskd-idx0_retina_r18_r101_dior.py',
                            ('teacher', )))
    for name, label in FPN_PEERS.items():
        rows[name] = Method(label, f'peers/{name}_retina_r18_r101_dior.py',
                            ('teacher', ),
                            mgd_to_scale if name == 'mgd' else None)
    rows.update(
        explicit=Method('DS2D2, explicit stream only', 'ds2d2', ('teacher', ),
                        explicit_only, 'ablate'),
        implicit=Method('DS2D2, implicit stream only', 'ds2d2', both,
                        implicit_only, 'ablate'),
        no_disw=Method('DS2D2 without DISW (W = 1)', 'ds2d2', both,
                       without_disw, 'ablate'),
        no_hf=Method('DS2D2 without HF amplifier', 'ds2d2', ('teacher', ),
                     without_hf_amplifier, 'ablate'),
        db2=Method('DS2D2, db2 wavelet', 'ds2d2', both, wavelet_db2,
                   'ablate'),
    )
    for factor in EXPLICIT_SWEEP:
        rows[f'explicit_x{factor}'] = Method(
            f'DS2D2, explicit stream only, weights x{factor}', 'ds2d2',
            ('teacher', ), explicit_scaled(factor), 'ablate', by_name=True)
    return rows


def scale_distill_weights(cfg, factor: float) -> None:
    """Multiply the weights of every distillation loss of a config (of a
    ``ScaleFreeDS2D2Distill``, where the losses' weights cancel: its
    ``share``).

    Raises:
        ValueError: If a loss has none of ``WEIGHT_KEYS``.
    """
    if cfg.model.type == 'ScaleFreeDS2D2Distill':
        cfg.model.share = cfg.model.get('share', 1.0) * factor
        return
    for name, loss in cfg.model.distiller.distill_losses.items():
        keys = [k for k in WEIGHT_KEYS if k in loss]
        if not keys:
            raise ValueError(f'distill loss {name!r} ({loss.type}) has none '
                             f'of {WEIGHT_KEYS}: cannot scale its weight')
        for key in keys:
            loss[key] = loss[key] * factor


# --------------------------------------------------------------------------
# configs
# --------------------------------------------------------------------------
def _splits(cfg) -> None:
    """Train on train, validate on val, test on test (the DIOR layout)."""
    train = cfg.train_dataloader.dataset
    train.datasets = [s for s in train.datasets
                      if s.ann_file.endswith('train.txt')]
    test = cfg.val_dataloader.dataset
    val = copy.deepcopy(test)
    val.update(ann_file='ImageSets/Main/val.txt',
               img_subdir='JPEGImages-trainval')
    cfg.test_dataloader = copy.deepcopy(cfg.val_dataloader)
    cfg.val_dataloader.dataset = val
    cfg.test_evaluator = [dict(type='CocoMetric', metric='bbox'),
                          dict(type='DenseHalfCocoMetric', metric='bbox',
                               prefix='dense')]


def pretrained(checkpoint: str, prefix: Optional[str] = None) -> dict:
    """MMEngine's init_cfg that loads (part of) a checkpoint."""
    init = dict(type='Pretrained', checkpoint=checkpoint)
    if prefix:
        init['prefix'] = prefix
    return init


def tiny(settings: Settings, config: str, data_root: str, work_dir: str,
         epochs: int):
    """The repository config ``config`` at the study's sizes."""
    from synthetic.tiny import tiny_config
    config = DETECTORS[settings.detector].get(config, config)
    return tiny_config(
        osp.join(CONFIGS, config), data_root, work_dir,
        image_size=settings.image_size, max_epochs=epochs, classes=CLASSES,
        teacher_width=settings.teacher_width,
        student_width=settings.student_width, channels=settings.channels,
        batch_size=settings.batch_size, lr=settings.lr,
        head_convs=settings.head_convs)


def make_config(settings: Settings, role: str, method: Method,
                data_root: str, work_dir: str, seed: int,
                ckpts: Dict[str, str], factor: float = 1.0,
                epochs: Optional[int] = None) -> str:
    """Write the tiny config of one run; return its path.

    Args:
        role (str): 'pretrain' (a detector on the pretraining pool, no
            evaluation), 'teacher', 'amplifier' or 'student'.
        ckpts (dict): Checkpoints it starts from: 'pretrained' (the
            pretrained detector of its width, of which it takes
            ``settings.pretrain_init``), 'init' (the seed's student
            initialisation), 'teacher', 'amplifier'.
        factor (float): Multiplies every distillation weight.
        epochs (int, optional): The student schedule's epochs, if not
            ``settings.epochs``.
    """
    s = settings
    if epochs is None:
        epochs = s.teacher_epochs if role == 'teacher' else \
            s.pretrain_epochs if role == 'pretrain' else s.epochs
    cfg = tiny(s, method.config, data_root, work_dir, epochs)
    if s.detector != 'retinanet' and method.config.startswith('peers'):
        # the peers' FPN losses on the other detector pair
        for key, model in (('architecture', 'student'),
                           ('teacher', 'teacher')):
            cfg.model[key] = tiny(s, model, data_root, work_dir,
                                  epochs).model
    for scheduler in cfg.param_scheduler:
        if scheduler.type == 'LinearLR':
            scheduler.end = s.warmup
    model = cfg.model
    if role in ('init', 'teacher') and 'pretrained' in ckpts:
        if s.pretrain_init == 'backbone':
            model.backbone.init_cfg = pretrained(ckpts['pretrained'],
                                                 'backbone.')
        else:
            model.init_cfg = pretrained(ckpts['pretrained'])
    if role == 'student':
        student = model.get('architecture', model)
        student.init_cfg = pretrained(ckpts['init'])
    for field in ('teacher', 'amplifier'):
        if field in ckpts:
            model[f'{field}_ckpt'] = ckpts[field]
    if method.edit is not None:
        method.edit(cfg, s)
    if factor != 1.0:
        scale_distill_weights(cfg, factor)
    if role == 'pretrain':  # trains on all of its pool, no evaluation
        cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
        cfg.test_dataloader = cfg.test_evaluator = cfg.test_cfg = None
    else:
        _splits(cfg)
    # one batch rule: every batch has batch_size images (MMDetection's
    # AspectRatioBatchSampler batches, where the configs use it)
    loader = cfg.train_dataloader
    if loader.get('batch_sampler') is not None:
        loader.batch_sampler.drop_last = True
    else:
        loader.drop_last = True
    cfg.optim_wrapper.clip_grad = dict(max_norm=s.clip, norm_type=2)
    cfg.randomness = dict(seed=seed)
    cfg.log_level = 'WARNING'
    if role == 'student':  # on every row: it changes nothing it measures
        cfg.custom_hooks.append(dict(type='mmdet.GradientBalanceHook'))
    os.makedirs(work_dir, exist_ok=True)
    path = osp.join(work_dir, 'config.py')
    cfg.dump(path)
    return path
