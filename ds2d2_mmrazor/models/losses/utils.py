"""Argument checks shared by the losses."""
import math


def check_weight(owner: str, name: str, value: object,
                 positive: bool = False) -> float:
    """A finite non-negative (or positive) number, else ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value < 0 or \
            (positive and value == 0):
        kind = 'positive' if positive else 'non-negative'
        raise ValueError(f'{owner}.{name} must be a {kind} number, got '
                         f'{value!r}')
    return float(value)
