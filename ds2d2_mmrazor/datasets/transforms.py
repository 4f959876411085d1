"""Packing that carries the ground truth to CocoMetric, when there is one."""
from mmdet.datasets.transforms import PackDetInputs
from mmdet.registry import TRANSFORMS


@TRANSFORMS.register_module()
class PackDetInputsWithGT(PackDetInputs):
    """``PackDetInputs`` that also packs the image's original annotations.

    MMDetection's ``CocoMetric`` without an ``ann_file`` reads the ground
    truth from each sample's ``instances`` meta key, so the test pipeline of
    an XML dataset must pack it; listing it in ``meta_keys`` instead makes
    ``DetInferencer`` / ``inference_detector`` fail on plain images, which
    have none. This transform packs ``instances`` only when present.
    """

    def transform(self, results: dict) -> dict:
        packed = super().transform(results)
        if 'instances' in results:
            packed['data_samples'].set_metainfo(
                dict(instances=results['instances']))
        return packed
