# Stage 3 of DS2D2 with oriented boxes (MMRotate's rotated RetinaNet, le90,
# rbox): ./ds2d2_dense-head.py, whose DISW takes the rotated ground-truth
# boxes as they are; only the amplifiers' box distance differs.
_base_ = './ds2d2_dense-head.py'

# The amplifiers' box distance between the student's and the teacher's
# decoded rotated boxes: KLD of their Gaussians (CPU-friendly, rotation-
# aware), weighted by the teacher's confidence as GIoU is for horizontal
# boxes. sqrt=False keeps the distance exactly 0 when the boxes are equal
# and smooth around it; sqrt=True (MMRotate's default) floors it at
# sqrt(1e-7), a non-zero loss and a steep gradient at equality.
rotated_box_distance = dict(
    type='mmrotate.GDLoss', loss_type='kld', fun='log1p', tau=1.0,
    sqrt=False, reduction='mean', loss_weight=1.0)

ds2d2_losses = dict(
    loss_amp_full=dict(reg_loss=rotated_box_distance),
    loss_amp_high=dict(reg_loss=rotated_box_distance))
