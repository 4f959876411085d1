"""What the implicit-stream losses share: one vocabulary, a head passed in."""
from typing import Callable, NamedTuple, Sequence, Tuple

from mmrazor.registry import MODELS
from torch import Tensor, nn

from .utils import check_weight

AMPLIFIERS = ('teacher', 'high_frequency')
FeatureTransform = Callable[[Tuple[Tensor, ...]], Tuple[Tensor, ...]]


def same_features(feats: Tuple[Tensor, ...]) -> Tuple[Tensor, ...]:
    """The features as they are: the view the teacher's own head reads."""
    return feats


class Amplifier(NamedTuple):
    """A frozen head and the view of the FPN features it reads.

    ``head`` is the detector part an amplifier loss runs (its
    :attr:`AmplifierLoss.head_part`, e.g. the teacher's ``bbox_head``);
    ``transform`` maps a tuple of FPN levels to the tuple the head takes
    (:func:`same_features` for the teacher, the high-frequency view HF(F)
    for the stage-2 amplifier).
    """
    head: nn.Module
    transform: FeatureTransform = same_features


class AmplifierLoss(nn.Module):
    """Base of the amplifier losses (DS2D2, arXiv 2512.04413, Sec. 3).

    A frozen head of the teacher (``amplifier='teacher'``, the
    full-frequency amplifier) or of the trained high-frequency amplifier
    (``'high_frequency'``) runs on student and teacher features; the loss
    compares its predictions with ``cls_loss`` and ``reg_loss``. The head is
    not part of the loss: the distiller passes it to ``forward`` as the
    ``amplifier`` argument (an :class:`Amplifier`), so the loss holds no
    parameters but those of its sub-losses (none for the default ones).

    Args:
        amplifier (str): 'teacher' or 'high_frequency'.
        cls_loss (dict): Config of the classification term.
        reg_loss (dict): Config of the box term.
        loss_weight (float): Weight of the whole loss.
    """
    #: The detector attribute holding the head this loss runs; the algorithm
    #: keeps exactly these parts of the stage-2 amplifier.
    head_part: str = ''

    def __init__(self, amplifier: str, cls_loss: dict, reg_loss: dict,
                 loss_weight: float) -> None:
        super().__init__()
        if amplifier not in AMPLIFIERS:
            raise ValueError(f'amplifier must be one of {AMPLIFIERS}, got '
                             f'{amplifier!r}')
        self.amplifier = amplifier
        owner = type(self).__name__
        self.loss_weight = check_weight(owner, 'loss_weight', loss_weight)
        self.cls_loss = MODELS.build(cls_loss)
        self.reg_loss = MODELS.build(reg_loss)
        for name in ('cls_loss', 'reg_loss'):
            sub = getattr(self, name)
            if hasattr(sub, 'loss_weight'):
                check_weight(f'{owner}.{name}', 'loss_weight',
                             sub.loss_weight)
            if hasattr(sub, 'tau'):  # a temperature (MMRazor's KL losses)
                check_weight(f'{owner}.{name}', 'tau', sub.tau,
                             positive=True)

    def check_head(self, model: nn.Module) -> None:
        """Raise TypeError unless ``model`` has a head this loss can run.

        Args:
            model (nn.Module): The detector (or the part of it the
                algorithm keeps) whose :attr:`head_part` the loss runs.
        """
        raise NotImplementedError

    @staticmethod
    def check_levels(student_feats: Sequence[Tensor],
                     teacher_feats: Sequence[Tensor]) -> None:
        """Raise ValueError unless both sides have as many FPN levels."""
        if len(student_feats) != len(teacher_feats):
            raise ValueError(f'student has {len(student_feats)} FPN levels, '
                             f'the teacher {len(teacher_feats)}')
