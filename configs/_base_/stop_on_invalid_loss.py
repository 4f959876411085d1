# Every stage stops at the first non-finite loss (checked each iteration,
# before a checkpoint is written), naming the terms: a NaN at hour 30 ends
# the run with a message instead of NaN checkpoints. The hook is this
# package's, in MMDetection's registry (the dataset configs import the
# package through custom_imports).
custom_hooks = [dict(type='mmdet.StopOnInvalidLossHook')]
