"""Pictures of a DS2D2 student beside its teacher (and a baseline).

    python tools/visualize.py CONFIG CHECKPOINT IMAGE --out-dir DIR \
        [--teacher-config C --teacher-ckpt P] \
        [--baseline-config C --baseline-ckpt P] \
        [--level 0] [--gt-xml ANNOTATION.xml | --boxes X1 Y1 X2 Y2 ...]

CONFIG / CHECKPOINT: any detector config with its checkpoint, or a DS2D2
config (e.g. configs/ds2d2_retina_r18_r101_dior.py) with its stage-3
checkpoint: then the student is ``model.architecture`` with the checkpoint's
``architecture.*`` weights, and, unless --teacher-config is given, the
teacher is ``model.teacher`` with its ``teacher.*`` weights. A plain
detector config with a distillation checkpoint works too (the student part
is taken, as tools/convert_to_student.py does). Writes to --out-dir:

- bands.png: teacher and student FPN level --level of the image in the four
  wavelet bands (features from ``model.extract_feat`` on the output of the
  model's data_preprocessor); needs a teacher.
- disw.png: the DISW weight map of the ground-truth boxes on that level's
  wavelet grid, over the resized network input; needs --gt-xml (a DIOR /
  VOC annotation) or --boxes (in original image pixels).
- detections.png: teacher / baseline / student predictions side by side
  (--student-name titles the student's panel).

Example, a stage-3 checkpoint and the baseline student:
    python tools/visualize.py configs/ds2d2_retina_r18_r101_dior.py \
        work_dirs/ds2d2_retina_r18_r101_dior/epoch_24.pth \
        data/DIOR/JPEGImages-test/11726.jpg --out-dir vis \
        --baseline-config configs/retinanet_r18_fpn_2x_dior.py \
        --baseline-ckpt work_dirs/retinanet_r18_fpn_2x_dior/epoch_24.pth \
        --gt-xml "data/DIOR/Annotations/Horizontal Bounding Boxes/11726.xml"
"""
import argparse
import os
import os.path as osp
import tempfile
import xml.etree.ElementTree as ET
from typing import Dict, List, NamedTuple, Sequence, Tuple, Union

import mmcv
import numpy as np
import torch
from mmdet.apis import init_detector
from mmdet.structures import DetDataSample
from mmdet.utils import get_test_pipeline_cfg
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.structures import InstanceData
from torch import Tensor, nn

import ds2d2_mmrazor  # noqa: F401  (registers modules, allows checkpoints)
from ds2d2_mmrazor.ops import dwt2d
from ds2d2_mmrazor.visualization import (draw_detections_side_by_side,
                                         draw_disw, draw_wavelet_bands)

# tools/ is sys.path[0] when this file runs as a script
from convert_to_student import PARTS, extract_detector  # noqa: E402


def is_distill_config(cfg: Config) -> bool:
    """Whether the config's model is a distillation algorithm (MMRazor)."""
    return 'architecture' in cfg.model


def is_distill_checkpoint(checkpoint: dict) -> bool:
    """Whether a loaded checkpoint holds the parts of a distillation model
    (``architecture.*``, ``teacher.*`` ...) rather than one detector."""
    prefixes = tuple(f'{k}.' for keys in PARTS.values() for k in keys)
    return any(k.startswith(prefixes)
               for k in checkpoint.get('state_dict', checkpoint))


def load_detector(config: Union[str, Config], checkpoint: Union[str, dict],
                  part: str = 'student', device: str = 'cpu') -> nn.Module:
    """Build a detector with ``mmdet.apis.init_detector`` from any config.

    Args:
        config (str | Config): A detector config, or a distillation config
            whose ``model.architecture`` (student) or ``model.teacher`` is
            taken.
        checkpoint (str | dict): A plain detector checkpoint, or a
            distillation checkpoint whose ``part`` is taken; a path or the
            loaded dict.
        part (str): ``'student'`` or ``'teacher'``. Defaults to
            ``'student'``.
        device (str): Defaults to ``'cpu'``.

    Returns:
        nn.Module: The detector in eval mode, with ``dataset_meta``.
    """
    cfg = Config.fromfile(config) if isinstance(config, str) else config
    if is_distill_config(cfg):
        key = dict(student='architecture', teacher='teacher')[part]
        cfg = cfg.copy()
        cfg.model = cfg.model[key]
    if isinstance(checkpoint, str):
        saved = torch.load(checkpoint, map_location='cpu')
        if not is_distill_checkpoint(saved):
            return init_detector(cfg, checkpoint, device=device)
    else:
        saved = checkpoint
    if is_distill_checkpoint(saved):
        saved = extract_detector(saved, part)
    with tempfile.TemporaryDirectory() as tmp:
        path = osp.join(tmp, f'{part}.pth')
        torch.save(saved, path)
        return init_detector(cfg, path, device=device)


def inference_pipeline(cfg: Config) -> Compose:
    """The config's test pipeline without ``LoadAnnotations`` (an image
    given on the command line has none)."""
    return Compose([
        step for step in get_test_pipeline_cfg(cfg)
        if step['type'].split('.')[-1] != 'LoadAnnotations'
    ])


class Inference(NamedTuple):
    """A detector's prediction on one image, and its FPN features."""
    prediction: DetDataSample  # boxes in original image pixels
    feats: Tuple[Tensor, ...]  # FPN levels, each [1, C, H_l, W_l]
    img_shape: Tuple[int, int]  # resized image, before padding
    input_hw: Tuple[int, int]  # padded network input
    scale_factor: Tuple[float, float]  # (w, h): resized / original


def run_detector(model: nn.Module, image_path: str) -> Inference:
    """Run the test pipeline, the data_preprocessor, ``extract_feat`` and
    ``predict`` on one image."""
    data = inference_pipeline(model.cfg)(dict(img_path=image_path, img_id=0))
    batch = dict(inputs=[data['inputs']], data_samples=[data['data_samples']])
    with torch.no_grad():
        batch = model.data_preprocessor(batch, False)
        feats = model.extract_feat(batch['inputs'])
        prediction = model.predict(batch['inputs'], batch['data_samples'])[0]
    meta = prediction.metainfo
    return Inference(prediction, tuple(feats), tuple(meta['img_shape']),
                     tuple(meta['batch_input_shape']),
                     tuple(meta['scale_factor']))


def read_xml_objects(path: str) -> Tuple[np.ndarray, List[str]]:
    """Ground-truth boxes of a DIOR / VOC XML annotation, [K, 4] float32,
    0-based as MMDetection's XMLDataset reads them (minus one), and their
    class names."""
    boxes, names = [], []
    for obj in ET.parse(path).getroot().iter('object'):
        box = obj.find('bndbox')
        boxes.append([float(box.findtext(k)) - 1
                      for k in ('xmin', 'ymin', 'xmax', 'ymax')])
        names.append(obj.findtext('name'))
    return np.array(boxes, dtype=np.float32).reshape(-1, 4), names


def read_xml_boxes(path: str) -> np.ndarray:
    """The boxes of :func:`read_xml_objects`."""
    return read_xml_objects(path)[0]


def ground_truth_sample(path: str, classes: Sequence[str]) -> DetDataSample:
    """An annotation as a 'prediction' (score 1) for the side-by-side
    picture; objects of classes the model does not know are left out."""
    boxes, names = read_xml_objects(path)
    known = [i for i, n in enumerate(names) if n in classes]
    instances = InstanceData(
        bboxes=torch.from_numpy(boxes[known]),
        scores=torch.ones(len(known)),
        labels=torch.tensor([list(classes).index(names[i]) for i in known],
                            dtype=torch.long))
    return DetDataSample(pred_instances=instances)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n'.join(__doc__.splitlines()[1:]))
    parser.add_argument('config', help='student or DS2D2 config')
    parser.add_argument('checkpoint', help='its checkpoint')
    parser.add_argument('image', help='image file')
    parser.add_argument('--out-dir', required=True, help='output folder')
    parser.add_argument('--teacher-config', help='teacher config')
    parser.add_argument('--teacher-ckpt', help='teacher checkpoint')
    parser.add_argument('--baseline-config',
                        help='config of a student trained alone')
    parser.add_argument('--baseline-ckpt', help='baseline checkpoint')
    parser.add_argument('--level', type=int, default=0,
                        help='FPN level of bands.png and disw.png '
                        '(default: 0, stride 8)')
    boxes = parser.add_mutually_exclusive_group()
    boxes.add_argument('--gt-xml', help='DIOR / VOC annotation of the image '
                       '(for disw.png)')
    boxes.add_argument('--boxes', type=float, nargs='+',
                       metavar='X1 Y1 X2 Y2', help='ground-truth boxes in '
                       'image pixels, 4 numbers each (for disw.png)')
    parser.add_argument('--wavelet', default='haar',
                        help='discrete wavelet (default: haar)')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='draw detections above this score (default '
                        '0.3)')
    parser.add_argument('--student-name',
                        help='panel title of CONFIG / CHECKPOINT (default: '
                        '"DS2D2 student" for a DS2D2 config or checkpoint, '
                        'else "student")')
    parser.add_argument('--device', default='cpu', help='default: cpu')
    args = parser.parse_args(argv)
    for name in ('teacher', 'baseline'):
        given = [getattr(args, f'{name}_{k}') is not None
                 for k in ('config', 'ckpt')]
        if any(given) and not all(given):
            parser.error(f'--{name}-config and --{name}-ckpt go together')
    if args.boxes is not None and len(args.boxes) % 4:
        parser.error(f'--boxes takes 4 numbers per box (x1 y1 x2 y2), got '
                     f'{len(args.boxes)}')
    return args


def build_models(args: argparse.Namespace) -> Dict[str, nn.Module]:
    """Teacher, baseline and student, those that were given, in that
    order."""
    cfg = Config.fromfile(args.config)
    checkpoint = torch.load(args.checkpoint, map_location='cpu')
    models = {}
    if args.teacher_config:
        models['teacher'] = load_detector(
            args.teacher_config, args.teacher_ckpt, 'teacher', args.device)
    elif is_distill_config(cfg) and any(
            k.startswith('teacher.')
            for k in checkpoint.get('state_dict', checkpoint)):
        models['teacher'] = load_detector(cfg, checkpoint, 'teacher',
                                          args.device)
    if args.baseline_config:
        models['baseline'] = load_detector(
            args.baseline_config, args.baseline_ckpt, 'student', args.device)
    student = args.student_name or (
        'DS2D2 student' if is_distill_config(cfg)
        or is_distill_checkpoint(checkpoint) else 'student')
    models[student] = load_detector(cfg, checkpoint, 'student', args.device)
    return models


def main(argv=None) -> Dict[str, str]:
    """Write the pictures; return {picture name: file written}."""
    args = parse_args(argv)
    os.makedirs(args.out_dir, exist_ok=True)
    models = build_models(args)
    results = {name: run_detector(model, args.image)
               for name, model in models.items()}
    student_name = list(models)[-1]
    student = results[student_name]
    image = mmcv.imread(args.image, channel_order='rgb')
    num_levels = len(student.feats)
    if not -num_levels <= args.level < num_levels:
        raise ValueError(f'--level {args.level} does not exist: the model '
                         f'has {num_levels} FPN levels')
    written = {}

    if 'teacher' in results:
        path = osp.join(args.out_dir, 'bands.png')
        draw_wavelet_bands(
            student.feats[args.level][0],
            results['teacher'].feats[args.level][0], path,
            wavelet=args.wavelet,
            title=f'FPN level {args.level}: mean |{args.wavelet} DWT '
            f'coefficient| over channels ({osp.basename(args.image)})')
        written['bands'] = path
    else:
        print('bands.png skipped: no teacher (give --teacher-config and '
              '--teacher-ckpt, or a DS2D2 config with its checkpoint)')

    if args.gt_xml or args.boxes is not None:
        boxes = read_xml_boxes(args.gt_xml) if args.gt_xml else np.array(
            args.boxes, dtype=np.float32).reshape(-1, 4)
        w_scale, h_scale = student.scale_factor
        boxes = boxes * np.array([w_scale, h_scale] * 2, dtype=np.float32)
        img_h, img_w = student.img_shape
        low, _ = dwt2d(student.feats[args.level][:, :1], args.wavelet)
        path = osp.join(args.out_dir, 'disw.png')
        draw_disw(mmcv.imresize(image, (img_w, img_h)), boxes,
                  tuple(low.shape[-2:]), student.input_hw, path)
        written['disw'] = path
    else:
        print('disw.png skipped: give the ground truth with --gt-xml or '
              '--boxes')

    path = osp.join(args.out_dir, 'detections.png')
    meta = models[student_name].dataset_meta
    predictions = {name: r.prediction for name, r in results.items()}
    if args.gt_xml:  # the ground truth first, beside the predictions
        predictions = {
            'ground truth': ground_truth_sample(args.gt_xml,
                                               meta['classes']),
            **predictions}
    draw_detections_side_by_side(
        image, predictions, path,
        score_thr=args.score_thr, class_names=meta.get('classes'),
        palette=meta.get('palette'))
    written['detections'] = path
    for name, path in written.items():
        print(f'{name}: {path}')
    return written


if __name__ == '__main__':
    main()
