"""A ConfigurableDistiller whose losses may also read the batch."""
from inspect import signature
from typing import Dict, Iterator, Optional, Sequence

from mmrazor.models.distillers import ConfigurableDistiller
from mmrazor.registry import MODELS
from torch import Tensor, nn


@MODELS.register_module()
class DS2D2Distiller(ConfigurableDistiller):
    """MMRazor's ``ConfigurableDistiller`` with two additions DS2D2 needs.

    - A distill loss whose ``forward`` has a ``data_samples`` argument (not
      given in ``loss_forward_mappings``) receives the batch's data samples,
      e.g. for the DISW map, which is built from ground-truth boxes.
    - A loss may return a dict of terms (``DISWSpectralLoss`` returns
      ``loss_low`` and ``loss_high``); each term is logged under its own key.

    Everything else (recorders, connectors, ``loss_forward_mappings``) works
    as in MMRazor, so other distillation losses can be added beside DS2D2's.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        # decided once, not at every iteration: which losses get the batch
        self._given_data_samples = {
            name for name, loss in self.distill_losses.items()
            if 'data_samples' in signature(loss.forward).parameters
            and 'data_samples' not in self.loss_forward_mappings.get(
                name, {})
        }

    def compute_distill_losses(
            self, data_samples: Optional[Sequence] = None
    ) -> Dict[str, Tensor]:
        """Compute every distill loss from the recorded data.

        Args:
            data_samples (Sequence[DetDataSample], optional): The batch.

        Returns:
            dict: One entry per loss, or per term of losses returning dicts.
        """
        losses: Dict[str, Tensor] = dict()
        for loss_name, mappings in self.loss_forward_mappings.items():
            kwargs = {key: self.get_record(**record)
                      for key, record in mappings.items()}
            if loss_name in self._given_data_samples:
                kwargs['data_samples'] = data_samples
            loss = self.distill_losses[loss_name](**kwargs)
            terms = loss if isinstance(loss, dict) else {loss_name: loss}
            for key, value in terms.items():
                if key in losses:
                    raise KeyError(f'distill loss {loss_name!r} returns '
                                   f'{key!r}, which another loss returned')
                losses[key] = value
        return losses

    def bindable_losses(self) -> Iterator[nn.Module]:
        """The losses that run a teacher-side head (they have ``bind``)."""
        return (loss for loss in self.distill_losses.values()
                if hasattr(loss, 'bind'))
