# Peer baseline: CrossKD (Wang et al., CVPR 2024, arXiv 2306.11369) at
# index 0: the student's FPN levels, aligned to the teacher's per-channel
# mean and std, through the teacher's whole head (CrossKD's RetinaNet
# recipe reuses only the last conv: ./crosskd_retina_r18_r101_dior.py).
_base_ = '../_base_/crosskd_retina_r18_r101_dior.py'
model = dict(
    distiller=dict(
        distill_losses=dict(loss_crosskd=dict(reused_head_idx=0))))
