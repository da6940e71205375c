"""exactrelu.testing.check_rule: passes for every built-in rule, fails loudly for a wrong one."""

from __future__ import annotations

import pytest
from torch import nn

from exactrelu import InvalidInputError, _exact
from exactrelu.rules import RULES, LeakyReLURule, ReLURule
from exactrelu.testing import check_rule


@pytest.mark.parametrize("key", list(RULES), ids=lambda k: getattr(k, "__name__", str(k)))
def test_check_rule_passes_for_every_builtin_rule(key) -> None:
    check_rule(key, max_examples=20)


def test_check_rule_accepts_a_module_instance() -> None:
    check_rule(nn.LeakyReLU(0.25), input_shape=(2, 3), max_examples=10)


class _WrongSlope(ReLURule):
    def slopes_consts(self, module):
        return [(0.0, 0.0), (0.5, 0.0)]


class _WrongExactMap(ReLURule):
    def exact_apply(self, module, m, state):
        out = super().exact_apply(module, m, state)
        rows = [[2 * v for v in row] for row in out.mat.tolist()]
        return _exact.from_rows(rows, m.mat.ncols(), m.shape)


class _WrongSwitching(LeakyReLURule):
    def state_from_signs(self, module, signs, in_shape):
        return 1 - super().state_from_signs(module, signs, in_shape)


class _Crashes(ReLURule):
    def switching(self, module, m):
        raise RuntimeError("boom")


WRONG = [
    (nn.ReLU, _WrongSlope(), "float forward"),
    (nn.ReLU, _WrongExactMap(), "exact forward"),
    (nn.LeakyReLU, _WrongSwitching(), "state from signs"),
    (nn.ReLU, _Crashes(), "Jacobian"),
]


@pytest.mark.parametrize("key, rule, prop", WRONG, ids=[type(r).__name__ for _, r, _ in WRONG])
def test_wrong_rule_fails_naming_the_property(key, rule, prop) -> None:
    before = RULES[key]
    with pytest.raises(AssertionError, match=f"property '{prop}'"):
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
    class Twice(nn.Module):
        def forward(self, x):
            return 2 * x

    from exactrelu.rules import AffineRule

    class TwiceRule(AffineRule):
        def linear(self, module, x):
            return 2 * x

        def constant(self, module, zeros):
            return zeros

    check_rule(Twice, TwiceRule(), input_shape=(3,), max_examples=10)
    assert Twice not in RULES
