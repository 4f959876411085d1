# Shared by the CrossKD peers in configs/peers/crosskd*_retina_r18_r101_dior.py
# (Wang et al., CVPR 2024, arXiv 2306.11369): DS2D2Distill without the
# stage-2 amplifier, with the same teacher / student pair, data and schedule
# as ../ds2d2_retina_r18_r101_dior.py, and one loss, CrossKDLoss (the
# teacher's head run on the student's features, against the teacher's own
# predictions). Its inputs: both models' FPN levels, and the label weights
# and avg_factor the student head's assigner produced for its task loss
# (AnchorHead.get_targets). Each peer config states `reused_head_idx`, and
# for an index > 0 records the student head's features there.
_base_ = '../retinanet_r18_fpn_2x_dior.py'

import mmengine  # noqa: E402  (filtered out of the config)

model = dict(
    _delete_=True,
    _scope_='mmrazor',
    type='DS2D2Distill',
    architecture=_base_.model,
    teacher=mmengine.Config.fromfile(
        '{{fileDirname}}/../retinanet_r101_fpn_2x_dior.py').model,
    teacher_ckpt='work_dirs/retinanet_r101_fpn_2x_dior/epoch_24.pth',
    amplifier=None,
    distiller=dict(
        type='DS2D2Distiller',
        student_recorders=dict(
            fpn=dict(type='ModuleOutputs', source='neck'),
            targets=dict(
                type='MethodOutputs',
                source='mmdet.models.dense_heads.AnchorHead.get_targets')),
        teacher_recorders=dict(fpn=dict(type='ModuleOutputs',
                                        source='neck')),
        # CrossKD's RetinaNet weights: KD quality focal loss (beta 1) and
        # GIoU, both 1
        distill_losses=dict(loss_crosskd=dict(
            type='CrossKDLoss', loss_weight=1.0,
            cls_loss=dict(type='KDQualityFocalLoss', beta=1.0,
                          loss_weight=1.0),
            reg_loss=dict(type='mmdet.GIoULoss', loss_weight=1.0))),
        loss_forward_mappings=dict(loss_crosskd=dict(
            student_feats=dict(recorder='fpn', from_student=True),
            teacher_feats=dict(recorder='fpn', from_student=False),
            label_weights=dict(recorder='targets', from_student=True,
                               data_idx=1),
            avg_factor=dict(recorder='targets', from_student=True,
                            data_idx=4)))))
