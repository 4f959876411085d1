# Peer baseline: FitNet-style imitation, a plain mean squared error between
# student and teacher FPN levels (MMRazor's L2Loss without normalisation,
# averaged over elements). The weight is not from a paper: tune it.
_base_ = '../_base_/fpn_distill_retina_r18_r101_dior.py'
model = dict(
    distiller=dict(
        distill_losses={
            f'loss_l2_fpn{i}': dict(
                type='L2Loss', normalize=False, div_element=True,
                loss_weight=1.0)
            for i in range(5)
        },
        loss_forward_mappings={
            f'loss_l2_fpn{i}': dict(
                s_feature=dict(from_student=True, recorder='fpn', data_idx=i),
                t_feature=dict(from_student=False, recorder='fpn',
                               data_idx=i))
            for i in range(5)
        }))
