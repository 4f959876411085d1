"""Tiny variants of this repository's configs, for CPU demos and tests.

The same recipe code runs (datasets, stages, losses, evaluation); only the
sizes change: narrow ResNet-18 backbones without ImageNet weights, a narrow
FPN and head, small images, few epochs. ``make demo`` and the test suite
both build their configs with :func:`tiny_config`.
"""
import re
from typing import Optional, Sequence, Tuple

from mmengine.config import Config, ConfigDict
from mmengine.registry import DATASETS

TINY_ROIS = 64  # RoIs sampled per image by tiny two-stage detectors


def scale_to_image(model: ConfigDict, factor: float) -> ConfigDict:
    """Fit a detector's object-size settings to images ``factor`` times the
    recipe's size, in place.

    The recipes' anchors and RoI-to-level mapping are sized for their images
    (DIOR at 800 px, DOTA patches at 1024 px). On images ``factor`` times as
    large, objects are ``factor`` times as large, so the anchor sizes
    (``octave_base_scale`` of RetinaNet / rotated RetinaNet, ``scales`` of
    Faster R-CNN's RPN, both in units of the level's stride) and
    ``finest_scale`` of the RoI extractor (the box size mapped to the
    finest FPN level) are multiplied by ``factor``. Strides cannot follow
    (they are the backbone's), and an anchor smaller than its level's
    stride leaves the objects between two anchor centres without a match,
    so anchor scales stop at 1 (one stride). RetinaNet at 128 px
    (``factor`` 0.16): ``octave_base_scale`` 4 -> 1, P3 anchors 8-13 px
    instead of 32-50 px.

    Args:
        model (ConfigDict): A detector config (dense head, or RPN + RoI
            head).
        factor (float): New image size / the recipe's, > 0.

    Returns:
        ConfigDict: ``model`` itself.

    Raises:
        ValueError: If ``factor`` is not positive, or an anchor generator
            has neither ``octave_base_scale`` nor ``scales``.
    """
    if not factor > 0:
        raise ValueError(f'factor={factor}: expected > 0')
    for head in (model.get('bbox_head'), model.get('rpn_head')):
        if head is None or 'anchor_generator' not in head:
            continue
        generator = head.anchor_generator
        if generator.get('octave_base_scale') is not None:
            generator.octave_base_scale = max(
                generator.octave_base_scale * factor, 1.0)
        elif generator.get('scales') is not None:
            generator.scales = [max(s * factor, 1.0)
                                for s in generator.scales]
        else:
            raise ValueError(
                f'anchor generator {generator.type!r} has neither '
                '`octave_base_scale` nor `scales`: cannot scale its anchors')
    if 'roi_head' in model:
        extractor = model.roi_head.bbox_roi_extractor
        # SingleRoIExtractor's and RotatedSingleRoIExtractor's default: 56
        extractor.finest_scale = extractor.get('finest_scale', 56) * factor
    return model


def recipe_image_size(cfg: Config) -> int:
    """The image size a config's recipe trains at (its anchors' scale).

    The largest side of the training pipeline's ``Resize`` scale (DIOR:
    800), or of the dataset's fixed ``img_shape`` (DOTA split patches:
    1024).

    Raises:
        ValueError: If the training data sets neither.
    """
    dataset = cfg.train_dataloader.dataset
    for split in dataset.get('datasets', [dataset]):
        for step in split.pipeline:
            if step.type.split('.')[-1] == 'Resize':
                return max(step.scale)
        if 'img_shape' in split:
            return max(split.img_shape)
    raise ValueError('the training data has no Resize step and no '
                     'img_shape: cannot tell the image size the recipe '
                     'was made for')


def shrink_detector(model: ConfigDict, num_classes: int, channels: int = 16,
                    base_channels: int = 8, size_factor: float = 1.0,
                    head_convs: int = 1) -> ConfigDict:
    """Make a ResNet-FPN detector config tiny, in place.

    ResNet-18 (whatever the depth, ResNeXt included) with ``base_channels``
    stem channels (stages: 1x, 2x, 4x, 8x), an FPN of ``channels``
    channels, a dense head of ``head_convs`` convs per branch or a narrow
    RPN and RoI head sampling few RoIs; no pretrained weights are loaded
    (nothing is downloaded). Anchor sizes follow the image size
    (:func:`scale_to_image` with ``size_factor``).

    Args:
        model (ConfigDict): A detector config with backbone / neck and
            either bbox_head (e.g. RetinaNet) or rpn_head and roi_head
            (e.g. Faster R-CNN).
        num_classes (int): Number of classes of the head.
        channels (int): FPN and head channels. Defaults to 16.
        base_channels (int): ResNet base width. Defaults to 8.
        size_factor (float): Image size / the recipe's (see
            :func:`scale_to_image`). Defaults to 1 (sizes unchanged).
        head_convs (int): ``stacked_convs`` of a dense head. Defaults to 1.

    Returns:
        ConfigDict: ``model`` itself.
    """
    if head_convs < 1:
        raise ValueError(f'head_convs={head_convs}: expected >= 1')
    scale_to_image(model, size_factor)
    backbone = model.backbone
    if backbone.type.split('.')[-1] == 'ResNeXt':  # e.g. a X101-64x4d teacher
        backbone.type = backbone.type.replace('ResNeXt', 'ResNet')
        backbone.pop('groups', None)
        backbone.pop('base_width', None)
    backbone.update(
        depth=18, base_channels=base_channels, frozen_stages=-1,
        norm_eval=False, init_cfg=None)
    model.neck.update(
        in_channels=[base_channels * 2**i for i in range(4)],
        out_channels=channels)
    if 'roi_head' in model:
        model.rpn_head.update(in_channels=channels, feat_channels=channels)
        model.roi_head.bbox_roi_extractor.out_channels = channels
        model.roi_head.bbox_head.update(
            num_classes=num_classes, in_channels=channels,
            fc_out_channels=2 * channels)
        model.train_cfg.rcnn.sampler.num = TINY_ROIS
    else:
        model.bbox_head.update(
            num_classes=num_classes, in_channels=channels,
            feat_channels=channels, stacked_convs=head_convs)
    return model


def _width(detector: ConfigDict, teacher_width: int,
           student_width: int) -> int:
    """The repository's teachers are ResNet-101 and ResNeXt-101, its
    students ResNet-18, -34 and -50."""
    backbone = detector.backbone
    teacher = backbone.depth >= 101 or 'ResNeXt' in backbone.type
    return teacher_width if teacher else student_width


def shrink_distill_model(model: ConfigDict, num_classes: int,
                         channels: int = 16, teacher_width: int = 16,
                         student_width: int = 8, size_factor: float = 1.0,
                         head_convs: int = 1) -> ConfigDict:
    """Make a distillation model config (``DS2D2Distill`` or an MMRazor
    peer) tiny, in place: its student, teacher and stage-2 amplifier with
    :func:`shrink_detector` (the student gets ``student_width``, teacher
    and amplifier ``teacher_width``, all ``head_convs``), every connector to
    ``channels`` channels, so student and teacher features match.
    """
    detectors = [(model.architecture, student_width),
                 (model.teacher, teacher_width)]
    if model.get('amplifier') is not None:
        detectors.append((model.amplifier.detector, teacher_width))
    for detector, width in detectors:
        shrink_detector(detector, num_classes, channels, width, size_factor,
                        head_convs)
    for connector in model.distiller.get('connectors', {}).values():
        for key in ('in_channels', 'out_channels', 'student_channels',
                    'teacher_channels'):
            if connector.get(key) is not None:
                connector[key] = channels
    return model


def reuse_last_head_conv(distiller: ConfigDict, head_convs: int) -> None:
    """Point each CrossKD loss of a distiller config at a tiny head, in
    place: a ``reused_head_idx`` k > 0 becomes ``min(k, head_convs - 1)``.

    CrossKD's RetinaNet recipe reuses index 3 of 4 convs, the teacher's
    last conv and predictors; on a head of ``head_convs`` convs that is
    index ``head_convs - 1``. The recorders of the student's head features
    follow (``bbox_head.cls_convs.{k-1}`` -> ``.{index-1}``, the same for
    ``reg_convs``); at index 0 (a one-conv head: its whole head is its last
    conv and predictors) the loss reads the FPN levels, so those inputs and
    their recorders are dropped. Index 0 stays 0.

    Args:
        distiller (ConfigDict): A ``DS2D2Distiller`` config.
        head_convs (int): ``stacked_convs`` of the tiny heads, >= 1.
    """
    import inspect

    from ds2d2_mmrazor.models.losses.crosskd_loss import (CrossKDLoss,
                                                          RECORDED_INPUTS)
    default = inspect.signature(CrossKDLoss).parameters[
        'reused_head_idx'].default
    mappings = distiller.get('loss_forward_mappings', {})
    recorders = distiller.get('student_recorders', {})
    for name, loss in distiller.get('distill_losses', {}).items():
        if loss.type.split('.')[-1] != 'CrossKDLoss':
            continue
        k = loss.get('reused_head_idx', default)
        if k == 0:
            continue
        loss.reused_head_idx = index = min(k, head_convs - 1)
        mapping = mappings.get(name, {})
        for key in RECORDED_INPUTS:
            if key not in mapping:
                continue
            recorder = mapping[key].recorder
            if index > 0:
                recorders[recorder].source = re.sub(
                    r'(cls|reg)_convs\.\d+', rf'\1_convs.{index - 1}',
                    recorders[recorder].source)
                continue
            del mapping[key]
            if not any(r.recorder == recorder and r.from_student
                       for m in mappings.values() for r in m.values()):
                del recorders[recorder]


def dataset_classes(dataset: ConfigDict,
                    default_scope: Optional[str] = None) -> Tuple[str, ...]:
    """The classes a dataset config yields, without reading any data.

    Those of its ``metainfo`` if it sets them, otherwise its class's
    ``METAINFO`` (e.g. DIOR's 20 or DOTA's 15); for a ``ConcatDataset``,
    those of its first dataset.

    Args:
        dataset (ConfigDict): A dataset config.
        default_scope (str, optional): Registry scope of its type when it
            names none (``_scope_`` or a ``scope.`` prefix), e.g. the
            config's ``default_scope``.

    Returns:
        tuple[str]: The class names, in label order.
    """
    dataset = dataset.get('datasets', [dataset])[0]
    classes = dataset.get('metainfo', {}).get('classes')
    if classes is None:
        name = dataset.type
        scope = dataset.get('_scope_', default_scope)
        if '.' not in name and scope is not None:
            name = f'{scope}.{name}'
        dataset_class = DATASETS.get(name)
        if dataset_class is None:
            raise KeyError(
                f'dataset type {name!r} is not registered: import the '
                'package that defines it, or give the classes')
        classes = dataset_class.METAINFO['classes']
    return tuple(classes)


def tiny_config(config: str,
                data_root: str,
                work_dir: str,
                image_size: int = 64,
                max_epochs: int = 1,
                classes: Optional[Sequence[str]] = None,
                teacher_width: int = 16,
                student_width: int = 8,
                channels: int = 16,
                batch_size: int = 2,
                lr: Optional[float] = None,
                head_convs: int = 1) -> Config:
    """A repository config, made tiny for a CPU.

    Works for every stage: a plain detector config (teacher or baseline
    student), the high-frequency amplifier, ``DS2D2Distill`` and MMRazor's
    ``FpnTeacherDistill`` (the peer baselines); for MMDetection (DIOR, DOTA
    as COCO json) and MMRotate (DIOR-R, DOTA split patches) configs.
    Teacher-side models (ResNet-101 and ResNeXt-101 detectors) get
    ``teacher_width``, students (ResNet-18, -34, -50) ``student_width``;
    all FPNs have ``channels`` channels, so student and teacher features
    match. Every model's anchors scale with ``image_size`` / the recipe's
    image size (:func:`scale_to_image`), so objects of the small images
    have anchors of their size, as DIOR's have at 800 px. Dense heads have
    ``head_convs`` convs per branch; a CrossKD loss reusing the teacher
    head from conv k > 0 reuses it from the tiny head's last conv,
    ``min(k, head_convs - 1)`` (CrossKD's RetinaNet recipe, index 3 of 4
    convs, is "the teacher's last conv and predictors"), its recorders
    following (:func:`reuse_last_head_conv`).

    Args:
        config (str): Path of a config in ``configs/``.
        data_root (str): The dataset folder, ending with '/': DIOR's layout
            (e.g. from ``tools/make_synthetic_dior.py``) for DIOR and DIOR-R,
            ``train/`` and ``val/`` split patches for DOTA. DOTA patches
            must be ``image_size`` square (their ``img_shape``).
        work_dir (str): Where the run writes logs and checkpoints.
        image_size (int): Images are resized to this square size.
        max_epochs (int): Training epochs; evaluation runs at the end.
        classes (Sequence[str], optional): Dataset classes (default: all of
            the dataset's). The heads get as many outputs.
        teacher_width (int): ResNet base width of teacher-side models.
        student_width (int): ResNet base width of the student.
        channels (int): FPN / head channels of every model.
        batch_size (int): Images per batch.
        lr (float, optional): Learning rate; the config's when None.
        head_convs (int): ``stacked_convs`` of every dense head. Defaults
            to 1.

    Returns:
        Config: The tiny config, ready for ``Runner.from_cfg``.
    """
    cfg = Config.fromfile(config)
    size_factor = image_size / recipe_image_size(cfg)
    recipe_batch = cfg.train_dataloader.batch_size
    num_classes = len(classes if classes is not None else dataset_classes(
        cfg.train_dataloader.dataset, cfg.get('default_scope')))
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.update(batch_size=batch_size, num_workers=0,
                      persistent_workers=False)
        dataset = loader.dataset
        for split in dataset.get('datasets', [dataset]):
            split.data_root = data_root
            if classes is not None:
                split.metainfo = dict(classes=tuple(classes))
            if 'img_shape' in split:  # DOTA patches: their (fixed) size
                split.img_shape = (image_size, image_size)
            for step in split.pipeline:
                # 'Resize' in MMDetection's scope, 'mmdet.Resize' elsewhere
                if step.type.split('.')[-1] == 'Resize':
                    step.scale = (image_size, image_size)
    cfg.test_dataloader = cfg.val_dataloader
    cfg.train_cfg.update(max_epochs=max_epochs, val_interval=max_epochs)
    # the schedule's milestones and warm-up, scaled to the short run
    for scheduler in cfg.param_scheduler:
        if scheduler.type == 'LinearLR':
            scheduler.end = 10
        if scheduler.type == 'MultiStepLR':
            scheduler.end = max_epochs
            scheduler.milestones = [max(1, round(max_epochs * 2 / 3))]
    if lr is not None:
        cfg.optim_wrapper.optimizer.lr = lr
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.interval = max_epochs
    cfg.env_cfg.dist_cfg = dict(backend='gloo')
    cfg.work_dir = str(work_dir)

    model = cfg.model
    if 'architecture' in model:  # DS2D2Distill or an MMRazor peer
        if 'roi_head' in model.architecture:
            # RoIAmplifierLoss's KL weight carries the release's RoI count
            # per batch (its KL is a sum over RoIs): keep that sum with the
            # tiny sampler and batch
            rois = model.architecture.train_cfg.rcnn.sampler.num
            for loss in model.distiller.distill_losses.values():
                if loss.type.split('.')[-1] == 'RoIAmplifierLoss':
                    kl = loss.cls_loss
                    kl.loss_weight = kl.get('loss_weight', 1.0) * (
                        TINY_ROIS * batch_size) / (rois * recipe_batch)
        shrink_distill_model(model, num_classes, channels, teacher_width,
                             student_width, size_factor, head_convs)
        reuse_last_head_conv(model.distiller, head_convs)
        evaluated = model.architecture
    else:  # a detector, or the high-frequency amplifier of one
        evaluated = model.get('detector', model)
        shrink_detector(evaluated, num_classes, channels,
                        _width(evaluated, teacher_width, student_width),
                        size_factor, head_convs)
    # keep low-score detections of briefly trained models, so that the
    # evaluation (COCO AP, DOTA mAP) has something to score
    test_cfg = evaluated.test_cfg.get('rcnn', evaluated.test_cfg)
    test_cfg.update(score_thr=0.0, max_per_img=100)
    return cfg
