"""MMRazor's ConfigurableDistiller, plus the two things DS2D2 adds."""
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

from mmrazor.models.distillers import ConfigurableDistiller
from mmrazor.registry import MODELS
from torch import Tensor, nn

from ..losses.amplifier_loss import Amplifier, AmplifierLoss


@MODELS.register_module()
class DS2D2Distiller(ConfigurableDistiller):
    """MMRazor's ``ConfigurableDistiller`` with what DS2D2's losses need and
    MMRazor's does not do.

    - **Amplifier losses get their head as an argument.** An
      :class:`~ds2d2_mmrazor.models.losses.AmplifierLoss` runs a frozen head
      of the teacher or of the stage-2 amplifier. Those models belong to the
      algorithm, which hands them over once with :meth:`set_amplifiers`;
      each such loss is then called with ``amplifier=`` its head and feature
      view, besides the inputs its ``loss_forward_mappings`` declare. The
      distiller keeps references in :attr:`amplifier_args` (a plain dict),
      so the heads' parameters stay where they live, once.
    - **A loss may return a dict of terms** (``DISWSpectralLoss`` returns
      ``loss_low`` and ``loss_high``); each term is logged under its own key
      (MMEngine's ``parse_losses`` takes tensors only).
    - **A mapping may take every record of a recorder** with
      ``record_idx=None``: a list, one entry per call of the source (a
      head's conv runs once per FPN level; ``CrossKDLoss`` takes them all).

    Everything else (recorders, connectors, ``loss_forward_mappings``) is
    MMRazor's, so other distillation losses can be added beside DS2D2's.
    The batch's ground-truth boxes reach ``DISWSpectralLoss`` through a
    recorder too (the configs' ``batch`` recorder of the student's
    ``forward`` inputs).
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        #: ``loss name -> Amplifier`` for every amplifier loss.
        self.amplifier_args: Dict[str, Amplifier] = {}

    def amplifier_losses(self) -> Iterator[Tuple[str, AmplifierLoss]]:
        """The distill losses that run a frozen head, with their names."""
        return ((name, loss) for name, loss in self.distill_losses.items()
                if isinstance(loss, AmplifierLoss))

    def set_amplifiers(
            self, amplifiers: Dict[str, Tuple[nn.Module, Callable]]) -> None:
        """Give each amplifier loss the head it runs.

        Args:
            amplifiers (dict): ``name -> (model, feature transform)`` for the
                names the losses' ``amplifier`` argument takes ('teacher',
                'high_frequency'); each loss runs the part of the model
                named by its ``head_part``.

        Raises:
            ValueError: If a loss names an amplifier that is not given.
            TypeError: If a model has no head the loss can run.
        """
        args = {}
        for name, loss in self.amplifier_losses():
            if loss.amplifier not in amplifiers:
                raise ValueError(
                    f'distill loss {name!r} uses amplifier='
                    f'{loss.amplifier!r} but DS2D2Distill has no such model:'
                    ' add the stage-2 model config (`amplifier`) and its '
                    'checkpoint (`amplifier_ckpt`)')
            model, transform = amplifiers[loss.amplifier]
            loss.check_head(model)
            args[name] = Amplifier(getattr(model, loss.head_part), transform)
        self.amplifier_args = args

    def get_record(self, recorder: str, from_student: bool,
                   record_idx: Optional[int] = 0, **kwargs) -> Any:
        """MMRazor's ``get_record``, or with ``record_idx=None`` the list of
        every record the recorder holds (in call order), each taken as
        MMRazor takes one (``data_idx``, ``connector``)."""
        get = super().get_record
        if record_idx is not None:
            return get(recorder, from_student, record_idx, **kwargs)
        manager = self.student_recorders if from_student \
            else self.teacher_recorders
        count = len(manager.get_recorder(recorder).data_buffer)
        return [get(recorder, from_student, i, **kwargs)
                for i in range(count)]

    def loss_inputs(self, loss_name: str) -> Dict[str, Any]:
        """The recorded inputs of one distill loss, by argument name, as
        its ``loss_forward_mappings`` declare them (without the
        ``amplifier`` argument of amplifier losses)."""
        return {key: self.get_record(**record)
                for key, record in self.loss_forward_mappings[
                    loss_name].items()}

    def compute_distill_losses(self) -> Dict[str, Tensor]:
        """Compute every distill loss from the recorded data.

        Returns:
            dict: One entry per loss, or per term of losses returning dicts.
        """
        headless = [name for name, _ in self.amplifier_losses()
                    if name not in self.amplifier_args]
        if headless:
            raise RuntimeError(
                f'distill losses {headless} have no amplifier head: build '
                'the distiller through DS2D2Distill, which hands it the '
                'teacher and the stage-2 amplifier (set_amplifiers)')
        losses: Dict[str, Tensor] = dict()
        for loss_name in self.loss_forward_mappings:
            kwargs = self.loss_inputs(loss_name)
            loss_module = self.distill_losses[loss_name]
            if isinstance(loss_module, AmplifierLoss):
                kwargs['amplifier'] = self.amplifier_args[loss_name]
            loss = loss_module(**kwargs)
            terms = loss if isinstance(loss, dict) else {loss_name: loss}
            for key, value in terms.items():
                if key in losses:
                    raise KeyError(f'distill loss {loss_name!r} returns '
                                   f'{key!r}, which another loss returned')
                losses[key] = value
        return losses
