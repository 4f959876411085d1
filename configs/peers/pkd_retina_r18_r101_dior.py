# Peer baseline: PKD (Cao et al., NeurIPS 2022), MMRazor's PKDLoss on each
# FPN level, weight 10 as in MMRazor's RetinaNet recipe.
_base_ = '../_base_/fpn_distill_retina_r18_r101_dior.py'
model = dict(
    distiller=dict(
        distill_losses={
            f'loss_pkd_fpn{i}': dict(type='PKDLoss', loss_weight=10)
            for i in range(5)
        },
        loss_forward_mappings={
            f'loss_pkd_fpn{i}': dict(
                preds_S=dict(from_student=True, recorder='fpn', data_idx=i),
                preds_T=dict(from_student=False, recorder='fpn', data_idx=i))
            for i in range(5)
        }))
