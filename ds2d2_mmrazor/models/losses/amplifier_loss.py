"""What the implicit-stream losses share: a frozen head, bound, not owned."""
from typing import Callable, Optional, Sequence, Tuple

from torch import Tensor, nn

from .utils import check_weight

AMPLIFIERS = ('teacher', 'high_frequency')


class AmplifierLoss(nn.Module):
    """Base of the amplifier losses (DS2D2, arXiv 2512.04413, Sec. 3).

    A frozen head of the teacher (``amplifier='teacher'``, the full-frequency
    amplifier) or of the trained high-frequency amplifier
    (``'high_frequency'``) compares student and teacher features.
    ``DS2D2Distill`` binds that head with :meth:`bind`; it is kept out of
    the submodules, so the loss adds no parameters and no state.

    Args:
        amplifier (str): 'teacher' or 'high_frequency'.
        loss_weight (float): Weight of the term.
    """

    def __init__(self, amplifier: str, loss_weight: float) -> None:
        super().__init__()
        if amplifier not in AMPLIFIERS:
            raise ValueError(f'amplifier must be one of {AMPLIFIERS}, got '
                             f'{amplifier!r}')
        self.amplifier = amplifier
        self.loss_weight = check_weight(type(self).__name__, 'loss_weight',
                                        loss_weight)
        self.__dict__['_head'] = self.__dict__['_transform'] = None

    def bind(self, model: nn.Module,
             feature_transform: Optional[Callable] = None) -> None:
        """Attach the frozen detector's head (subclasses check it)."""
        raise NotImplementedError

    def _attach(self, head: nn.Module,
                feature_transform: Optional[Callable]) -> None:
        self.__dict__['_head'] = head
        self.__dict__['_transform'] = feature_transform or (lambda x: x)

    def _bound(self, student_feats: Sequence[Tensor],
               teacher_feats: Sequence[Tensor]) -> Tuple[nn.Module, Callable]:
        """The bound head and feature transform, after checking inputs."""
        head = self.__dict__['_head']
        if head is None:
            raise RuntimeError(
                f'{type(self).__name__} is not bound to a head: build it '
                'through DS2D2Distill, which binds the teacher / amplifier '
                'heads')
        if len(student_feats) != len(teacher_feats):
            raise ValueError(f'student has {len(student_feats)} FPN levels, '
                             f'the teacher {len(teacher_feats)}')
        return head, self.__dict__['_transform']
