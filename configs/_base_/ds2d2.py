# Stage 3 of DS2D2, what every detector shares: the FPN recorders, the
# batch recorder, the adapter + DWT connectors and the DISW spectral loss.
# The head-type skeletons add the two amplifier losses, their recorders and
# mappings:
#   ./ds2d2_dense-head.py   RetinaNet (./ds2d2_rotated-dense-head.py: rotated)
#   ./ds2d2_roi-head.py     Faster R-CNN (./ds2d2_rotated-roi-head.py:
#                           Oriented R-CNN)
#
# Why variables, not `model`: a stage-3 config inherits its student's config
# (data, schedule and, as `model`, the student) and one skeleton, and
# MMEngine refuses a key that two bases both define. A skeleton holds
#   ds2d2_distiller  the DS2D2Distiller: recorders, connectors,
#                    loss_forward_mappings (no distill_losses);
#   ds2d2_losses     the distill losses, without their weights;
#   ds2d2_amplifier  what stage 3 changes in the stage-2 model config;
# and the stage-3 config (e.g. ../ds2d2_retina_r18_r101_dior.py) writes
#   model = dict(_delete_=True, _scope_='mmrazor', type='DS2D2Distill',
#                architecture=_base_.model, teacher=..., teacher_ckpt=...,
#                amplifier=dict(<stage-2 model>, **_base_.ds2d2_amplifier),
#                amplifier_ckpt=...,
#                distiller=dict(_base_.ds2d2_distiller, distill_losses=...))
# giving each loss of ds2d2_losses its weights key by key:
#   loss_amp_full=dict(losses.loss_amp_full, loss_weight=0.7)
# The weights are the release's per dataset and head (method doc, section
# 4), so they stay in the stage-3 config, where the recipe is read: a child
# dict deep-merges only into its base's value of the same top-level name
# (`ds2d2_losses = dict(...)` there would not reach `model`), and one more
# base per dataset would hide them. Every loss, recorder and mapping is
# stated once, in these skeletons.

ds2d2_distiller = dict(
    type='DS2D2Distiller',
    student_recorders=dict(
        fpn=dict(type='ModuleOutputs', source='neck'),
        # the student's forward inputs: the batch's data samples (ground
        # truth boxes and padded input shape, for DISW)
        batch=dict(
            type='MethodInputs',
            source='mmdet.models.detectors.BaseDetector.forward')),
    teacher_recorders=dict(fpn=dict(type='ModuleOutputs', source='neck')),
    connectors=dict(
        # the shared 1x1 adapter (256 -> 256, no bias), then the DWT
        student_bands=dict(
            type='WaveletConnector', in_channels=256, out_channels=256,
            wavelet='haar'),
        teacher_bands=dict(type='WaveletConnector', wavelet='haar')),
    loss_forward_mappings=dict(
        loss_spectral=dict(
            student=dict(
                recorder='fpn', from_student=True, connector='student_bands'),
            teacher=dict(
                recorder='fpn', from_student=False,
                connector='teacher_bands'),
            data_samples=dict(
                recorder='batch', from_student=True, data_idx=1))))

# DISW-weighted low- and high-frequency imitation of the teacher's FPN
# levels; `low_weight` and `high_weight` are the stage-3 config's.
ds2d2_losses = dict(loss_spectral=dict(type='DISWSpectralLoss'))

ds2d2_amplifier = dict(
    # registered in MMDetection's registry; DS2D2Distill builds in MMRazor's
    type='mmdet.HighFrequencyAmplifier',
    teacher_ckpt=None)  # all of it comes from amplifier_ckpt
