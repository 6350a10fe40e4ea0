"""Shape classes: one bundle for every input length up to a maximum.

Kernels are compiled for fixed shapes. To serve inputs of any length up to the maximum, a bundle holds a few
*classes* (length buckets): the plan compiled at, say, seq = 16, 32, 64 and 128. At run time the runtime takes the
smallest class that fits the input, pads each input along its bucketed axes with the input's pad value (0: a
zero attention mask hides the padded tokens, a causal model never looks ahead), runs the class, and crops the
outputs back to the input's length. A 12-token query then pays for 16 tokens, not 128.

Which axes are bucketed comes from the model's symbolic input dims (`dim_param`, e.g. `seq`): every input axis
that carries the symbol is padded. Which output axes follow it is read off the compiled classes (an axis whose size
is the symbol's value in every class), and `check_padding` proves with onnxruntime that padding leaves the outputs
at the real positions unchanged before a bucketed bundle is written.

    dims = bucketed_dims(graph, feeds, ["seq=16,32,64"])   # {'seq': [16, 32, 64, 128]}
    for values in classes(dims): ...                         # {'seq': 16}, {'seq': 32}, ... largest last
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from .errors import PaddingChanges, WebjitError
from .ir import Graph

PAD_VALUE = 0  # every input pads with zeros: ids of padding, a zero attention mask, zero token types


@dataclass(frozen=True)
class Axes:
    """Per input (in the graph's order): per axis, the symbol it carries or None."""
    inputs: list[list[str | None]]

    def symbols(self) -> list[str]:
        return list(dict.fromkeys(s for axes in self.inputs for s in axes if s is not None))


def input_axes(g: Graph) -> Axes:
    """The symbolic dims of the graph's inputs, as the model declares them."""
    return Axes([[d if isinstance(d, str) else None for d in (g.values[n].shape or ())] for n in g.inputs])


def bucketed_dims(g: Graph, feeds: dict[str, np.ndarray], specs: list[str]) -> dict[str, list[int]]:
    """Parse `--buckets` specs against the graph and sample feeds (which fix every dim's maximum).

    A spec is `SYMBOL=16,32,64` or just `16,32,64`, which names the one symbolic dim whose maximum is over 1 (the
    sequence; batch is usually 1). Each dim's list gets its maximum added; values above the maximum are refused."""
    axes = input_axes(g)
    maxima: dict[str, int] = {}
    for name, per_axis in zip(g.inputs, axes.inputs):
        if name in feeds:
            for s, d in zip(per_axis, np.shape(feeds[name])):
                if s is not None:
                    maxima[s] = int(d)
    if not maxima:
        raise WebjitError("--buckets: the model's inputs have no symbolic dims (dim_param) to bucket; "
                          "its shapes are fixed")
    out: dict[str, list[int]] = {}
    for spec in specs:
        symbol, sep, values = spec.rpartition("=")
        if not sep:
            wide = [s for s, m in maxima.items() if m > 1]
            if len(wide) != 1:
                raise WebjitError(f"--buckets {spec}: say which dim, as DIM={spec} (the inputs' dims: "
                                  f"{', '.join(f'{s}={m}' for s, m in maxima.items())})")
            symbol = wide[0]
        if symbol not in maxima:
            raise WebjitError(f"--buckets {spec}: no input has a dim named '{symbol}' (the inputs' dims: "
                              f"{', '.join(maxima) or 'none'})")
        try:
            sizes = sorted({int(v) for v in values.split(",") if v.strip()})
        except ValueError:
            raise WebjitError(f"--buckets {spec}: expected sizes like 16,32,64") from None
        top = maxima[symbol]
        if not sizes or sizes[0] < 1 or sizes[-1] > top:
            raise WebjitError(f"--buckets {spec}: sizes must lie between 1 and the maximum {symbol}={top} "
                              f"(the maximum comes from --shape or --inputs)")
        out[symbol] = sorted(set(sizes) | {top})
    return out


def classes(dims: dict[str, list[int]]) -> list[dict[str, int]]:
    """Every combination of the dims' sizes, smallest first; the last is every dim at its maximum."""
    names = list(dims)
    combos = [dict(zip(names, c)) for c in itertools.product(*(dims[n] for n in names))]
    return sorted(combos, key=lambda c: (int(np.prod(list(c.values()))), list(c.values())))


def resize(feeds: dict[str, np.ndarray], inputs: list[str], axes: Axes, sizes: dict[str, int],
           pad=PAD_VALUE) -> dict[str, np.ndarray]:
    """Feeds cropped or padded (with `pad`) along every symbolic axis to `sizes`."""
    out = dict(feeds)
    for name, per_axis in zip(inputs, axes.inputs):
        if name not in feeds:
            continue
        arr = np.asarray(feeds[name])
        for axis, s in enumerate(per_axis):
            if s is None or s not in sizes:
                continue
            n = sizes[s]
            if arr.shape[axis] >= n:
                arr = np.take(arr, np.arange(n), axis=axis)
            else:
                width = [(0, 0)] * arr.ndim
                width[axis] = (0, n - arr.shape[axis])
                arr = np.pad(arr, width, constant_values=pad)
        out[name] = np.ascontiguousarray(arr)
    return out


def output_axes(outputs: list[str], shapes: list[dict[str, tuple]], sizes: list[dict[str, int]]
                ) -> list[list[str | None]]:
    """Per output, per axis, the symbol it follows, read off the compiled classes: an axis follows a symbol when its
    size equals the symbol's value in every class. An output whose shape changes in any other way cannot be cropped
    back, and is refused."""
    out = []
    symbols = list(sizes[0])
    for name in outputs:
        per_class = [s[name] for s in shapes]
        axes: list[str | None] = []
        for axis in range(len(per_class[0])):
            dims = [shape[axis] for shape in per_class]
            if len(set(dims)) == 1:
                axes.append(None)
                continue
            follows = [s for s in symbols if all(d == c[s] for d, c in zip(dims, sizes))]
            if not follows:
                raise WebjitError(f"output '{name}': axis {axis} has sizes {dims} across the buckets, which do not "
                                  f"follow any bucketed dim; build this model without --buckets")
            axes.append(follows[0])
        out.append(axes)
    return out


def check_padding(model, feeds: dict[str, np.ndarray], inputs: list[str], axes: Axes,
                  dims: dict[str, list[int]], out_axes: dict[str, list[str | None]], atol: float = 1e-4) -> None:
    """Prove on the sample inputs, with onnxruntime, that padding does not change the outputs at real positions:
    for every class, an input one longer than the class below it (the most padding the class ever adds) runs once
    as it is and once padded to the class; the cropped outputs must agree."""
    from .validate import reference
    for symbol, sizes in dims.items():
        for below, size in zip([0] + sizes[:-1], sizes):
            real = {symbol: below + 1}
            if below + 1 == size:
                continue  # no padding in this class
            short = resize(feeds, inputs, axes, real)
            padded = resize(short, inputs, axes, {symbol: size})
            want, got = reference(model, short), reference(model, padded)
            for name, arr in want.items():
                if name not in out_axes:
                    continue  # an output the plans do not compute
                cropped = np.asarray(got[name])
                for axis, s in enumerate(out_axes[name]):
                    if s == symbol:
                        cropped = np.take(cropped, np.arange(arr.shape[axis]), axis=axis)
                err = float(np.max(np.abs(cropped.astype(np.float64) - np.asarray(arr, np.float64)), initial=0))
                if not np.isfinite(err) or err > atol * max(1.0, float(np.max(np.abs(arr), initial=0))):
                    raise PaddingChanges(
                        f"--buckets {symbol}: padding {symbol} from {below + 1} to {size} changes output '{name}' "
                        f"at the real positions (max difference {err:.3g}); the model does not ignore padding "
                        f"(no attention mask input?). Build it without --buckets, once per length")
