# Peer baseline: CrossKD (Wang et al., CVPR 2024, arXiv 2306.11369) with
# its RetinaNet recipe, reused_teacher_head_idx 3 of 4 stacked convs: the
# student head's first 3 convs, then the teacher's last conv and predictors
# (CrossKD's configs/crosskd/crosskd_r18_retinanet_r50_fpn_1x_coco.py).
# The student's features at that point are the outputs of its
# bbox_head.{cls,reg}_convs.2, one record per FPN level.
_base_ = '../_base_/crosskd_retina_r18_r101_dior.py'
model = dict(
    distiller=dict(
        student_recorders=dict(
            cls_feat=dict(type='ModuleOutputs',
                          source='bbox_head.cls_convs.2'),
            reg_feat=dict(type='ModuleOutputs',
                          source='bbox_head.reg_convs.2')),
        distill_losses=dict(loss_crosskd=dict(reused_head_idx=3)),
        loss_forward_mappings=dict(loss_crosskd=dict(
            student_cls_feats=dict(recorder='cls_feat', from_student=True,
                                   record_idx=None),
            student_reg_feats=dict(recorder='reg_feat', from_student=True,
                                   record_idx=None)))))
