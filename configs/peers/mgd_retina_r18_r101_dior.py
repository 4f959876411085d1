# Peer baseline: MGD (Yang et al., ECCV 2022), MMRazor's MGDConnector and
# MGDLoss on each FPN level, alpha 2e-5 and lambda 0.65 as in MMRazor's
# RetinaNet recipe.
_base_ = '../_base_/fpn_distill_retina_r18_r101_dior.py'
model = dict(
    distiller=dict(
        connectors={
            f'mgd_fpn{i}': dict(
                type='MGDConnector', student_channels=256,
                teacher_channels=256, lambda_mgd=0.65)
            for i in range(5)
        },
        distill_losses={
            f'loss_mgd_fpn{i}': dict(type='MGDLoss', alpha_mgd=0.00002)
            for i in range(5)
        },
        loss_forward_mappings={
            f'loss_mgd_fpn{i}': dict(
                preds_S=dict(from_student=True, recorder='fpn', data_idx=i,
                             connector=f'mgd_fpn{i}'),
                preds_T=dict(from_student=False, recorder='fpn', data_idx=i))
            for i in range(5)
        }))
