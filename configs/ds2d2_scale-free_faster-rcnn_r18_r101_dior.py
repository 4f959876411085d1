# An option beside DS2D2, not the paper's method:
#   ./ds2d2_faster-rcnn_r18_r101_dior.py
# with one weight rule instead of the authors' per-detector weights. At
# every iteration each term (low, high, full-frequency and high-frequency
# amplifier) is rescaled so that its gradient on the student's FPN has
# `share` times the norm of the Faster R-CNN task loss's gradient there
# (ScaleFreeDS2D2Distill; docs/weights.md says why, and what was measured).
# The same share serves every detector, image size and dataset; the losses'
# own weights cancel (0 still switches a term off).
#   mim train mmrazor configs/ds2d2_scale-free_faster-rcnn_r18_r101_dior.py
_base_ = './ds2d2_faster-rcnn_r18_r101_dior.py'

model = dict(
    type='ScaleFreeDS2D2Distill',
    share=1.0,
    distiller=dict(
        distill_losses=dict(
            loss_spectral=dict(low_weight=1.0, high_weight=1.0),
            loss_amp_full=dict(loss_weight=1.0),
            loss_amp_high=dict(loss_weight=1.0))))
