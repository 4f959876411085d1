# Stage 3 of DS2D2: distil RetinaNet R-18 (student) from RetinaNet R-101
# (teacher) on DIOR, with the loss weights of the authors' release
# (../shared/docs/ds2d2_method.md, section 4).
#   mim train mmrazor configs/ds2d2_retina_r18_r101_dior.py
#   python tools/train.py configs/ds2d2_retina_r18_r101_dior.py
# Needs the checkpoints of stage 1 and 2; other paths:
#   --cfg-options model.teacher_ckpt=PATH model.amplifier_ckpt=PATH
_base_ = './retinanet_r18_fpn_2x_dior.py'

import mmengine  # noqa: E402  (filtered out of the config)

# The amplifier head's inputs: student and teacher FPN levels, and the label
# weights and avg_factor the student head's own assigner produced for its
# task loss in the same iteration (get_targets returns labels, label
# weights, bbox targets, bbox weights, avg_factor).
amplifier_inputs = dict(
    student_feats=dict(recorder='fpn', from_student=True),
    teacher_feats=dict(recorder='fpn', from_student=False),
    label_weights=dict(recorder='targets', from_student=True, data_idx=1),
    avg_factor=dict(recorder='targets', from_student=True, data_idx=4))

model = dict(
    _delete_=True,
    _scope_='mmrazor',
    type='DS2D2Distill',
    architecture=_base_.model,
    teacher=mmengine.Config.fromfile(
        '{{fileDirname}}/retinanet_r101_fpn_2x_dior.py').model,
    teacher_ckpt='work_dirs/retinanet_r101_fpn_2x_dior/epoch_24.pth',
    amplifier=dict(
        mmengine.Config.fromfile(
            '{{fileDirname}}/ds2d2_amplifier_retinanet_r101_fpn_2x_dior.py'
        ).model,
        type='mmdet.HighFrequencyAmplifier',
        teacher_ckpt=None),  # all of it comes from amplifier_ckpt
    amplifier_ckpt='work_dirs/ds2d2_amplifier_retinanet_r101_fpn_2x_dior/'
    'epoch_24.pth',
    distiller=dict(
        type='DS2D2Distiller',
        student_recorders=dict(
            fpn=dict(type='ModuleOutputs', source='neck'),
            targets=dict(
                type='MethodOutputs',
                source='mmdet.models.dense_heads.AnchorHead.get_targets')),
        teacher_recorders=dict(fpn=dict(type='ModuleOutputs', source='neck')),
        connectors=dict(
            # the shared 1x1 adapter (256 -> 256, no bias), then the DWT
            student_bands=dict(
                type='WaveletConnector', in_channels=256, out_channels=256,
                wavelet='haar'),
            teacher_bands=dict(type='WaveletConnector', wavelet='haar')),
        distill_losses=dict(
            loss_spectral=dict(
                type='DISWSpectralLoss', low_weight=1e-5, high_weight=1e-5),
            loss_amp_full=dict(
                type='DenseAmplifierLoss', amplifier='teacher',
                loss_weight=1.0),
            loss_amp_high=dict(
                type='DenseAmplifierLoss', amplifier='high_frequency',
                loss_weight=1.0)),
        loss_forward_mappings=dict(
            loss_spectral=dict(
                student=dict(
                    recorder='fpn', from_student=True,
                    connector='student_bands'),
                teacher=dict(
                    recorder='fpn', from_student=False,
                    connector='teacher_bands')),
            loss_amp_full=amplifier_inputs,
            loss_amp_high=amplifier_inputs)))

# Only the student is saved for inference: `find_unused_parameters` is not
# needed (teacher and amplifier have no trainable parameters).
