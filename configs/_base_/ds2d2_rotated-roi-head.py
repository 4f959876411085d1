# Stage 3 of DS2D2 for two-stage oriented detectors (MMRotate's Oriented
# R-CNN, le90, rbox): ./ds2d2_roi-head.py (the same recorders, mappings and
# KL term on the RoIs the student sampled, here rotated); only the
# amplifiers' box term differs.
_base_ = './ds2d2_roi-head.py'

# RoIAmplifierLoss sees that the RoI head predicts rotated boxes (its
# bbox_head's predict_box_type='rbox') and, instead of Faster R-CNN's L1 on
# the encoded deltas, decodes the student's and the teacher's deltas of the
# teacher's most likely class against the sampled RoIs with the head's own
# bbox coder and compares the boxes: KLD of their Gaussians (rotation-aware:
# angles a period apart give the same box; runs on CPU), in float64,
# weighted by the teacher's probability w of that class and normalised by
# sum(w) (a w-weighted mean over RoIs, as the L1 is one of per-coordinate
# distances). sqrt=False keeps the distance exactly 0 when the boxes are
# equal and smooth around it (see ./ds2d2_rotated-dense-head.py).
rotated_box_distance = dict(
    type='mmrotate.GDLoss', loss_type='kld', fun='log1p', tau=1.0,
    sqrt=False, reduction='mean', loss_weight=1.0)

ds2d2_losses = dict(
    loss_amp_full=dict(reg_loss=rotated_box_distance),
    loss_amp_high=dict(reg_loss=rotated_box_distance))
