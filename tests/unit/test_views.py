"""Strided views agree with numpy: the same elements, and a copy only where numpy needs one too."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from webjit.views import View


def _elements(base: np.ndarray, view: View) -> np.ndarray:
    return base.reshape(-1)[view.access(view.shape).indices(view.shape)]


@st.composite
def strided(draw):
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=1, max_size=4)))
    perm = draw(st.permutations(range(len(shape))))
    return shape, tuple(perm)


@settings(max_examples=300, deadline=None)
@given(strided(), st.randoms())
def test_reshape_of_a_transposed_view_matches_numpy(case, rnd):
    shape, perm = case
    base = np.arange(int(np.prod(shape))).reshape(shape)
    arr = base.transpose(perm)
    dims = [d for d in arr.shape]
    # a random regrouping of the same elements: split or merge neighbouring dims
    new = []
    for d in dims:
        if d == 4 and rnd.random() < 0.5:
            new += [2, 2]
        elif new and rnd.random() < 0.3:
            new[-1] *= d
        else:
            new.append(d)
    if rnd.random() < 0.3:
        new.insert(rnd.randrange(len(new) + 1), 1)
    view = View.of("x", shape).transpose(perm).reshape(tuple(new))
    try:
        expected = arr.view()
        expected.shape = tuple(new)  # raises when numpy would need a copy
    except AttributeError:
        expected = None
    if expected is None:
        assert view is None
    else:
        assert view is not None
        assert (_elements(base, view) == arr.reshape(new)).all()


def test_slice_then_reshape_splits_heads_without_a_copy():
    base = np.arange(2 * 5 * 24).reshape(2, 5, 24)
    view = View.of("x", base.shape).slice(2, 8, 1, 8).reshape((2, 5, 2, 4))
    assert view is not None
    assert (_elements(base, view) == base[:, :, 8:16].reshape(2, 5, 2, 4)).all()


def test_expand_reads_broadcast_dims_with_stride_zero():
    base = np.arange(6).reshape(1, 6)
    view = View.of("x", (1, 6)).expand((3, 4, 6))
    assert (_elements(base, view) == np.broadcast_to(base, (3, 4, 6))).all()
