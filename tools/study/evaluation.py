"""What a finished run is worth: metrics on val and test, gradient
balance, and why a run failed."""
import contextlib
import glob
import json
import os.path as osp
import time
from typing import Dict, List

METRICS = dict(AP50='coco/bbox_mAP_50', mAP='coco/bbox_mAP',
               AP_s='coco/bbox_mAP_s', AP50_dense='dense/bbox_mAP_50')


def _register_dense_metric() -> None:
    from mmdet.evaluation import CocoMetric
    from mmdet.registry import METRICS as METRIC_REGISTRY

    if METRIC_REGISTRY.get('DenseHalfCocoMetric') is not None:
        return

    @METRIC_REGISTRY.register_module()
    class DenseHalfCocoMetric(CocoMetric):
        """COCO AP on the half of the images with the most ground truth
        objects (ties by image id; a study-only metric)."""

        def compute_metrics(self, results: list) -> Dict[str, float]:
            ranked = sorted(results, key=lambda r: (-len(r[0]['anns']),
                                                    str(r[0]['img_id'])))
            return super().compute_metrics(ranked[:max(1, len(ranked) // 2)])


def evaluate(config: str, checkpoint: str, log: str) -> Dict[str, float]:
    """Test a trained run on the test split; COCO and dense-half metrics,
    by our short names (a metric COCO did not report, e.g. for a model
    without detections, is 0)."""
    from mmengine.config import Config
    from mmengine.runner import Runner
    _register_dense_metric()
    cfg = Config.fromfile(config)
    cfg.load_from = checkpoint
    cfg.work_dir = osp.join(osp.dirname(config), 'test')
    cfg.experiment_name = f'test_{time.time_ns()}'
    cfg.custom_hooks = []
    cfg.visualizer.vis_backends = [dict(type='LocalVisBackend')]
    with open(log, 'w') as f, contextlib.redirect_stdout(f):
        metrics = Runner.from_cfg(cfg).test()
    return {k: float(metrics.get(v, 0.0)) for k, v in METRICS.items()}


def scalar_logs(work_dir: str) -> List[str]:
    """MMEngine's scalars.json files of a run, oldest first."""
    return sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                     'scalars.json')))


def val_metrics(work_dir: str) -> Dict[str, float]:
    """The last evaluation (on val) the training run logged, by our short
    names (0 where COCO reported nothing)."""
    record: Dict[str, float] = {}
    for log in scalar_logs(work_dir):
        with open(log) as f:
            for line in f:
                entry = json.loads(line)
                if METRICS['AP50'] in entry:
                    record = entry
    return {k: float(record.get(v, 0.0)) for k, v in METRICS.items()
            if k != 'AP50_dense'}


def balance(work_dir: str) -> Dict[str, Dict[str, float]]:
    """Mean gradient-norm ratio per term, early and late
    (``GradientBalanceHook``'s records)."""
    path = osp.join(work_dir, 'gradient_balance.json')
    if not osp.isfile(path):
        return {}
    sums: Dict[str, Dict[str, List[float]]] = {}
    with open(path) as f:
        for line in f:
            record = json.loads(line)
            for term, ratio in record['ratios'].items():
                sums.setdefault(record['phase'], {}).setdefault(
                    term, []).append(ratio)
    return {phase: {t: sum(v) / len(v) for t, v in terms.items()}
            for phase, terms in sums.items()}


def failure_reason(out_file: str) -> str:
    """The error line a failed training run printed last."""
    if not osp.isfile(out_file):
        return 'failed (no output)'
    with open(out_file, errors='replace') as f:
        lines = [ln.strip() for ln in f if 'Error' in ln or 'non-finite'
                 in ln]
    return lines[-1][:300] if lines else f'failed (see {out_file})'
