"""Scalar semantics the compile-time evaluators share (fold.py, fold_index.py): max and min that keep NaN, values
rounded as a dtype's array holds them, and axis normalisation."""
from __future__ import annotations

import math

from .errors import WebjitError
from .tensor import FLOATS, cast_value


def _max(a, b):
    return a if (isinstance(a, float) and math.isnan(a)) or a >= b else b



def _min(a, b):
    return a if (isinstance(a, float) and math.isnan(a)) or a <= b else b



def _round(values: list, dtype: str) -> list:
    """Values as they come back from a `dtype` array (float32 rounding, int wrap-around)."""
    if dtype == "bool":
        return [bool(v) for v in values]
    if dtype not in FLOATS:
        return [cast_value(v, dtype) for v in values]
    return values  # packing a float array rounds



def _axis(a: int, rank: int) -> int:
    if not -rank <= a < max(rank, 1):
        raise WebjitError(f"axis {a} out of range for rank {rank}")
    return a % rank if rank else 0
