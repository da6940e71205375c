"""exactrelu.testing.check_rule: passes for every built-in rule and for correct user rules in
float32 and float64, and names the wrong method of each deliberately wrong rule."""

from __future__ import annotations

import pytest
import torch
from hypothesis import strategies as st
from torch import nn

import exactrelu
from exactrelu import ElementwiseRule, InvalidInputError, _exact
from exactrelu.rules import RULES, AffineRule, LeakyReLURule, ReLURule
from exactrelu.testing import check_rule

N = 25  # examples per check: the `ci` profile's size


@pytest.mark.parametrize("key", list(RULES), ids=lambda k: getattr(k, "__name__", str(k)))
def test_check_rule_passes_for_every_builtin_rule(key) -> None:
    check_rule(key, max_examples=20)


def test_check_rule_accepts_a_module_instance() -> None:
    check_rule(nn.LeakyReLU(0.25), input_shape=(2, 3), max_examples=10)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_linear_as_created_passes_in_its_own_dtype(dtype) -> None:
    torch.manual_seed(0)
    check_rule(nn.Linear(3, 2).to(dtype), max_examples=N)  # nn.Linear(3, 2) is float32


# ----------------------------------------------------------------------------- user modules

class Scale(nn.Module):
    """y = scale * x with a parameter ``scale`` (1 by default, where abs(scale) is right too)."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * x


class PlainScale(nn.Module):
    """y = s * x with a plain float ``s``: only a strategy of modules varies it."""

    def __init__(self, s: float = 0.5) -> None:
        super().__init__()
        self.s = s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.s * x


class Affine(nn.Module):
    """y = w * x + b entrywise on 3 inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
        self.b = nn.Parameter(torch.tensor([0.25, 0.0, -1.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w * x + self.b


class Shifted(nn.Module):
    """y = relu(x - 1/4) entrywise."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x - 0.25)


class HalfLeaky(nn.Module):
    """y = x for x > 0, x / 2 otherwise."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.where(x > 0, x, 0.5 * x)


def _p(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return t.detach().to(like.dtype)


class ScaleRule(AffineRule):
    def linear(self, module, x):
        return _p(module.scale, x) * x

    def constant(self, module, zeros):
        return zeros


class AbsScaleRule(ScaleRule):  # right only where scale >= 0, as by default
    def linear(self, module, x):
        return _p(module.scale, x).abs() * x


class PlainScaleRule(AffineRule):
    def linear(self, module, x):
        return module.s * x

    def constant(self, module, zeros):
        return zeros


class AbsPlainScaleRule(PlainScaleRule):
    def linear(self, module, x):
        return abs(module.s) * x


class AffineOK(AffineRule):
    def linear(self, module, x):
        return _p(module.w, x) * x

    def constant(self, module, zeros):
        return zeros + _p(module.b, zeros)


class BiasIgnored(AffineOK):
    def constant(self, module, zeros):
        return zeros


class ShiftedRule(ElementwiseRule):
    def thresholds(self, module):
        return [0.25]

    def slopes_consts(self, module):
        return [(0.0, 0.0), (1.0, -0.25)]


class HalfLeakyRule(ElementwiseRule):
    def slopes_consts(self, module):
        return [(0.5, 0.0), (1.0, 0.0)]


class WrongSide(HalfLeakyRule):  # the slope below 0 is wrong
    def slopes_consts(self, module):
        return [(0.25, 0.0), (1.0, 0.0)]


class FlippedSwitching(ShiftedRule):  # float and exact switching functions negated
    def switching(self, module, m):
        w = super().switching(module, m)
        return type(w)(-w.W, -w.b)

    def exact_switching(self, module, m):
        e = super().exact_switching(module, m)
        return type(e)(-e.mat, e.shape)


class FlippedFloatSwitching(ShiftedRule):  # only the float switching functions negated
    def switching(self, module, m):
        w = super().switching(module, m)
        return type(w)(-w.W, -w.b)


class WrongConstraintList(ShiftedRule):  # the cell of state 0 described as the cell of state 1
    def constraint_list(self, module, state, in_shape, out_shape):
        return [(i, 1) for i, _ in enumerate(state)]


class WrongStateTuple(ShiftedRule):  # states flipped in the exact layer's plain form
    def state_tuple(self, module, signs, in_shape):
        return tuple(0 if s > 0 else 1 for s in signs)


class HandWritten(exactrelu.PiecewiseRule):
    """Shifted's rule with all eight methods of PiecewiseRule written out."""

    def num_switching(self, module, in_shape):
        return int(torch.tensor(in_shape).prod())

    def switching(self, module, m):
        n, k = m.W.shape[:2]
        size = m.b[0].numel()
        return exactrelu.FloatMap(m.W.reshape(n, k, size), m.b.reshape(n, size) - 0.25)

    def exact_switching(self, module, m):
        rows = [list(r) for r in m.mat.tolist()]
        for r in rows:
            r[-1] -= _exact.fmpq(1, 4)
        return _exact.from_rows(rows, m.mat.ncols(), (len(rows),))

    def state(self, module, x):
        return (x > 0.25).to(torch.int64)

    def state_from_signs(self, module, signs, in_shape):
        return (signs > 0).to(torch.int64).reshape(signs.shape[0], *in_shape)

    def cell_constraints(self, module, state, in_shape):
        st_ = state.reshape(-1).cpu()
        return torch.arange(st_.numel()), torch.where(st_ > 0, 1, -1)

    def apply(self, module, m, state):
        on = state.to(m.b.dtype)
        return exactrelu.FloatMap(m.W * on.unsqueeze(1), (m.b - 0.25) * on)

    def exact_apply(self, module, m, state):
        rows = []
        for r, on in zip(m.mat.tolist(), state.reshape(-1).tolist(), strict=True):
            r = list(r)
            if on:
                r[-1] -= _exact.fmpq(1, 4)
            rows.append(r if on else [_exact.fmpq(0)] * len(r))
        return _exact.from_rows(rows, m.mat.ncols(), tuple(state.shape))


RIGHT = [
    ("Scale float32", Scale(0.75), ScaleRule(), None),
    ("Scale float64", Scale(-0.75).double(), ScaleRule(), None),
    ("PlainScale strategy", st.builds(PlainScale, st.floats(-4, 4)), PlainScaleRule(), (3,)),
    ("Affine float32", Affine(), AffineOK(), (3,)),
    ("Affine float64", Affine().double(), AffineOK(), (3,)),
    ("Shifted", Shifted(), ShiftedRule(), (5,)),
    ("HalfLeaky", HalfLeaky(), HalfLeakyRule(), (2, 3)),
    ("HandWritten", Shifted(), HandWritten(), (4,)),
]


@pytest.mark.parametrize("module, rule, shape", [r[1:] for r in RIGHT], ids=[r[0] for r in RIGHT])
def test_correct_user_rules_pass(module, rule, shape) -> None:
    check_rule(module, rule, input_shape=shape, max_examples=N)


WRONG = [
    # (id, module, rule, input shape, the method the failure must name)
    ("flipped switching", Shifted(), FlippedSwitching(), (3,),
     r"FlippedSwitching\.switching or FlippedSwitching\.exact_switching is wrong"),
    ("flipped float switching", Shifted(), FlippedFloatSwitching(), (3,),
     r"FlippedFloatSwitching\.switching is wrong"),
    ("wrong slope below 0", HalfLeaky(), WrongSide(), (3,), r"WrongSide\.slopes_consts is wrong"),
    ("bias ignored", Affine(), BiasIgnored(), (3,), r"BiasIgnored\.constant is wrong"),
    ("wrong constraint_list", Shifted(), WrongConstraintList(), (3,),
     r"WrongConstraintList\.constraint_list is wrong"),
    ("wrong state_tuple", Shifted(), WrongStateTuple(), (3,),
     r"WrongStateTuple\.state_tuple is wrong"),
    ("abs(scale), parameter", Scale(1.0), AbsScaleRule(), (3,), r"AbsScaleRule\.linear is wrong"),
    ("abs(scale), strategy", st.builds(PlainScale, st.floats(-4, 4)), AbsPlainScaleRule(), (3,),
     r"AbsPlainScaleRule\.linear is wrong"),
]


@pytest.mark.parametrize("module, rule, shape, names", [w[1:] for w in WRONG],
                         ids=[w[0] for w in WRONG])
def test_wrong_user_rule_fails_naming_the_method(module, rule, shape, names) -> None:
    with pytest.raises(AssertionError, match=names) as info:
        check_rule(module, rule, input_shape=shape, max_examples=N)
    text = str(info.value)
    assert "at x = [" in text and "module: " in text  # a counterexample


def test_the_abs_rule_passes_at_its_default_parameter_alone() -> None:
    # what check_rule could not see before it redrew parameters: the given module passes
    from exactrelu.testing import _Case, _Checker

    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(RULES, Scale, AbsScaleRule())
        _Checker(_Case(Scale(1.0), (3,)), torch.tensor([[0.5, -1.0, 2.0]])).run()


class _WrongSlope(ReLURule):
    def slopes_consts(self, module):
        return [(0.0, 0.0), (0.5, 0.0)]


class _WrongExactMap(ReLURule):
    def exact_apply(self, module, m, state):
        out = super().exact_apply(module, m, state)
        rows = [[2 * v for v in row] for row in out.mat.tolist()]
        return _exact.from_rows(rows, m.mat.ncols(), m.shape)


class _WrongStateFromSigns(LeakyReLURule):
    def state_from_signs(self, module, signs, in_shape):
        return 1 - super().state_from_signs(module, signs, in_shape)


class _Crashes(ReLURule):
    def switching(self, module, m):
        raise RuntimeError("boom")


BUILTIN_WRONG = [
    (nn.ReLU, _WrongSlope(), r"_WrongSlope\.slopes_consts is wrong"),
    (nn.ReLU, _WrongExactMap(), r"_WrongExactMap\.exact_apply is wrong"),
    (nn.LeakyReLU, _WrongStateFromSigns(), r"_WrongStateFromSigns\.state_from_signs is wrong"),
    (nn.ReLU, _Crashes(), r"_Crashes\.switching is wrong: switching raised RuntimeError: boom"),
]


@pytest.mark.parametrize("key, rule, names", BUILTIN_WRONG,
                         ids=[type(r).__name__ for _, r, _ in BUILTIN_WRONG])
def test_wrong_rule_for_a_builtin_type_fails_naming_the_method(key, rule, names) -> None:
    before = RULES[key]
    with pytest.raises(AssertionError, match=names):
        check_rule(key, rule, max_examples=30)
    assert RULES[key] is before, "the temporary registration was not undone"


def test_wrong_rule_failure_shrinks_to_a_small_example() -> None:
    with pytest.raises(AssertionError) as info:
        check_rule(nn.ReLU, _WrongSlope(), max_examples=50)
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "Falsifying example" in notes or "Draw" in notes


def test_check_rule_rejects_bad_arguments() -> None:
    with pytest.raises(InvalidInputError):
        check_rule(nn.ReLU, max_examples=0)
    with pytest.raises(InvalidInputError):
        check_rule(nn.ReLU, rule="relu")
    with pytest.raises(InvalidInputError):
        check_rule(42)


def test_check_rule_registers_a_new_type_only_temporarily() -> None:
    check_rule(PlainScale(0.5), PlainScaleRule(), input_shape=(3,), max_examples=10)
    check_rule(st.builds(PlainScale, st.floats(-4, 4)), PlainScaleRule(), max_examples=5)
    assert PlainScale not in RULES


def test_elementwise_rule_with_bad_lists_is_refused_naming_them() -> None:
    class Backwards(ElementwiseRule):
        def thresholds(self, module):
            return [1.0, 0.0]

        def slopes_consts(self, module):
            return [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0)]

    with pytest.raises(AssertionError, match="must increase"):
        check_rule(Shifted(), Backwards(), input_shape=(2,), max_examples=5)
    with pytest.raises(exactrelu.UnsupportedModelError, match="must increase"), \
            pytest.MonkeyPatch.context() as mp:
        mp.setitem(RULES, Shifted, Backwards())
        exactrelu.capture(nn.Sequential(Shifted()), (2,))


class OneState(ShiftedRule):  # every cell labelled state 0 in the exact layer's plain form
    def state_tuple(self, module, signs, in_shape):
        return tuple(0 for _ in signs)


def test_a_self_contradicting_rule_makes_verify_name_it_and_check_rule(monkeypatch) -> None:
    import pickle

    monkeypatch.setitem(RULES, Shifted, OneState())
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 6), Shifted(), nn.Linear(6, 1))
    with pytest.raises(exactrelu.CertificationError) as info:
        exactrelu.verify(net, [(-1, 1), (-1, 1)], progress=False)
    err = info.value
    assert isinstance(err, exactrelu.ExactReluError) and err.rules == ("OneState for Shifted",)
    assert "OneState for Shifted" in str(err) and "exactrelu.testing.check_rule" in str(err)
    again = pickle.loads(pickle.dumps(err))  # as from a worker process: the same message
    assert str(again) == str(err) and again.rules == err.rules
    with pytest.raises(AssertionError, match=r"OneState\.state_tuple is wrong"):
        check_rule(Shifted(), OneState(), input_shape=(3,), max_examples=N)


def test_module_cases_redraw_an_instance_in_its_own_dtype() -> None:
    from hypothesis import given, settings

    from exactrelu.testing import module_cases

    base = nn.Linear(2, 3)
    seen = []

    @settings(max_examples=30, database=None)
    @given(module_cases(base))
    def draw(case) -> None:
        module, shape = case
        assert shape == (2,) and module.weight.dtype == torch.float32
        assert module is base or not module.training  # copies are put in eval mode
        seen.append(module is base or torch.equal(module.weight, base.weight))

    draw()
    assert True in seen and False in seen  # as given, and redrawn
    assert base.weight.requires_grad and base.training  # the given module is left untouched
