# Stage 3 of DS2D2 for dense heads: RetinaNet, and rotated RetinaNet
# (./ds2d2_rotated-dense-head.py). ./ds2d2.py (how a stage-3 config uses
# these variables: see there), plus the two amplifier losses: the frozen
# teacher head and the stage-2 amplifier head run on the student's FPN
# levels and on the teacher's, and the student is pulled towards the
# teacher's outputs (DenseAmplifierLoss: classification and, through the
# head's bbox coder, the decoded boxes; GIoU on horizontal boxes).
_base_ = './ds2d2.py'

# The amplifier head's inputs: student and teacher FPN levels, and the label
# weights and avg_factor the student head's own assigner produced for its
# task loss in the same iteration (get_targets returns labels, label
# weights, bbox targets, bbox weights, avg_factor).
amplifier_inputs = dict(
    student_feats=dict(recorder='fpn', from_student=True),
    teacher_feats=dict(recorder='fpn', from_student=False),
    label_weights=dict(recorder='targets', from_student=True, data_idx=1),
    avg_factor=dict(recorder='targets', from_student=True, data_idx=4))

ds2d2_distiller = dict(
    student_recorders=dict(
        targets=dict(
            type='MethodOutputs',
            source='mmdet.models.dense_heads.AnchorHead.get_targets')),
    loss_forward_mappings=dict(
        loss_amp_full=amplifier_inputs, loss_amp_high=amplifier_inputs))

# `loss_weight` is the stage-3 config's
ds2d2_losses = dict(
    loss_amp_full=dict(type='DenseAmplifierLoss', amplifier='teacher'),
    loss_amp_high=dict(
        type='DenseAmplifierLoss', amplifier='high_frequency'))
