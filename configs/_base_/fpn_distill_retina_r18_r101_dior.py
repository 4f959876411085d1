# Shared by the peer baselines in configs/peers/: MMRazor's FpnTeacherDistill
# with the same teacher / student pair, data and schedule as DS2D2 on DIOR,
# recording the five FPN levels of both. Each peer config adds its losses
# (one per level) and their mappings.
_base_ = '../retinanet_r18_fpn_2x_dior.py'

import mmengine  # noqa: E402  (filtered out of the config)

model = dict(
    _delete_=True,
    _scope_='mmrazor',
    type='FpnTeacherDistill',
    architecture=_base_.model,
    teacher=mmengine.Config.fromfile(
        '{{fileDirname}}/../retinanet_r101_fpn_2x_dior.py').model,
    teacher_ckpt='work_dirs/retinanet_r101_fpn_2x_dior/epoch_24.pth',
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(fpn=dict(type='ModuleOutputs', source='neck')),
        teacher_recorders=dict(fpn=dict(type='ModuleOutputs',
                                        source='neck'))))
