"""Capture: every unsupported op reported at once, bad input rejected, the model left untouched."""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Callable

import pytest
import torch
from torch import nn

import exactrelu
from exactrelu import ExactReluError, InvalidInputError, UnsupportedModelError, capture


class ThreeUnsupported(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 3)
        self.block = nn.Sequential(nn.Linear(3, 3), nn.GELU())
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.gate(self.block(self.fc(x))))


def test_unsupported_ops_are_all_reported_at_once() -> None:
    with pytest.raises(UnsupportedModelError) as info:
        capture(ThreeUnsupported(), (3,))
    err = info.value
    assert len(err.problems) == 3, err.problems
    gelu, sigmoid, sin = err.problems
    assert "block.1" in gelu and "GELU" in gelu
    assert "gate" in sigmoid and "Sigmoid" in sigmoid
    assert "sin" in sin
    message = str(err)
    for part in ("block.1", "GELU", "gate", "Sigmoid", "sin", "register_rule"):
        assert part in message, f"{part!r} missing from: {message}"
    assert isinstance(err, ExactReluError)


def test_unsupported_ops_in_a_sequential_are_all_reported() -> None:
    net = nn.Sequential(nn.Linear(2, 2), nn.Tanh(), nn.Linear(2, 2), nn.Softplus())
    with pytest.raises(UnsupportedModelError) as info:
        capture(net, (2,))
    assert [("1" in p and "Tanh" in p, "3" in p and "Softplus" in p) for p in info.value.problems] == \
        [(True, False), (False, True)]


def test_register_rule_makes_a_module_supported() -> None:
    class Double(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return 2 * x

    net = nn.Sequential(nn.Linear(2, 2), Double())
    with pytest.raises(UnsupportedModelError):
        capture(net, (2,))

    class DoubleRule(exactrelu.AffineRule):
        def linear(self, module: Any, x: torch.Tensor) -> torch.Tensor:
            return 2 * x

    exactrelu.register_rule(Double, DoubleRule())
    try:
        x = torch.randn(3, 2, dtype=torch.float64)
        g = exactrelu.affine_maps(net.double(), x)
        torch.testing.assert_close((g.weight * x[:, None]).sum(-1) + g.bias, net(x), rtol=1e-12, atol=1e-12)
    finally:
        del exactrelu.rules.RULES[Double]


# ----------------------------------------------------------------------------- bad input

def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).eval()


def _convnet() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(12, 1)).eval()


def _train_bn() -> tuple[nn.Module, torch.Tensor]:
    net = _convnet()
    net[1].train()
    return net, torch.randn(2, 2, 4, 4)


def _nan_param() -> tuple[nn.Module, torch.Tensor]:
    net = _mlp()
    with torch.no_grad():
        net[2].weight[0, 1] = float("nan")
    return net, torch.randn(2, 3)


def _inf_buffer() -> tuple[nn.Module, torch.Tensor]:
    net = _convnet()
    with torch.no_grad():
        net[1].running_mean[0] = float("inf")
    return net, torch.randn(2, 2, 4, 4)


BAD_INPUTS: dict[str, tuple[Callable[[], tuple[nn.Module, Any]], type, tuple[str, ...]]] = {
    "batchnorm in train mode": (_train_bn, UnsupportedModelError, ("1", "BatchNorm", "eval")),
    "nan parameter": (_nan_param, UnsupportedModelError, ("2.weight", "NaN")),
    "inf buffer": (_inf_buffer, UnsupportedModelError, ("1.running_mean", "inf")),
    "shape does not fit": (lambda: (_mlp(), torch.randn(2, 5)), InvalidInputError, ("(5,)", "does not fit")),
    "conv input without batch dim": (lambda: (_convnet(), torch.randn(2, 4, 4)), InvalidInputError,
                                     ("x of shape (2, 4, 4)", "batch of 2 samples of shape (4, 4)", "Conv2d")),
    "mlp input without batch dim": (lambda: (_mlp(), torch.randn(3)), InvalidInputError, ("batch",)),
    "integer dtype": (lambda: (_mlp(), torch.ones(2, 3, dtype=torch.int64)), InvalidInputError, ("floating", "int64")),
    "bool dtype": (lambda: (_mlp(), torch.ones(2, 3, dtype=torch.bool)), InvalidInputError, ("floating",)),
    "nan input": (lambda: (_mlp(), torch.full((2, 3), float("nan"))), InvalidInputError, ("NaN",)),
    "not a tensor": (lambda: (_mlp(), [[1.0, 2.0, 3.0]]), InvalidInputError, ("tensor",)),
}


def _snapshot(net: nn.Module) -> dict[str, Any]:
    return {
        "state": {k: v.detach().clone() for k, v in net.state_dict().items()},
        "training": {name: m.training for name, m in net.named_modules()},
        "requires_grad": {k: p.requires_grad for k, p in net.named_parameters()},
        "grads": {k: None if p.grad is None else p.grad.clone() for k, p in net.named_parameters()},
        "hooks": {name: (dict(m._forward_hooks), dict(m._forward_pre_hooks), dict(m._backward_hooks),
                         dict(m._backward_pre_hooks))
                  for name, m in net.named_modules()},
        "modules": {name: type(m) for name, m in net.named_modules()},
        "attrs": {name: sorted(vars(m)) for name, m in net.named_modules()},
    }


def _assert_same(before: dict[str, Any], net: nn.Module) -> None:
    after = _snapshot(net)
    assert after["training"] == before["training"]
    assert after["requires_grad"] == before["requires_grad"]
    assert after["hooks"] == before["hooks"]
    assert after["modules"] == before["modules"]
    assert after["attrs"] == before["attrs"]
    assert before["state"].keys() == after["state"].keys()
    for k, v in before["state"].items():
        w = after["state"][k]
        assert v.dtype == w.dtype and v.device == w.device
        assert torch.equal(v.view(torch.uint8) if v.is_floating_point() else v,
                           w.view(torch.uint8) if w.is_floating_point() else w), f"{k} changed"
    for k, g in before["grads"].items():
        assert (g is None) == (after["grads"][k] is None)


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_raises_a_clear_error_and_changes_nothing(name: str) -> None:
    make, err_type, words = BAD_INPUTS[name]
    net, x = make()
    before = _snapshot(net)
    with pytest.raises(err_type) as info:
        exactrelu.affine_maps(net, x)
    message = str(info.value)
    for w in words:
        assert w in message, f"{w!r} missing from: {message}"
    assert isinstance(info.value, ExactReluError)
    _assert_same(before, net)


@pytest.mark.parametrize("shape", [(), (0,), (3, -1), "abc", None, (3.5,), (3.0,)])
def test_capture_rejects_bad_input_shapes(shape: Any) -> None:
    with pytest.raises(InvalidInputError, match="input_shape"):
        capture(_mlp(), shape)


def test_capture_rejects_a_non_module() -> None:
    with pytest.raises(InvalidInputError, match="torch.nn.Module"):
        capture(lambda x: x, (2,))  # type: ignore[arg-type]


def test_exact_forward_rejects_a_point_of_the_wrong_size() -> None:
    with pytest.raises(InvalidInputError, match="3"):
        exactrelu.exact_forward(_mlp(), [Fraction(1)] * 2, (3,))


def test_exact_affine_maps_rejects_a_pattern_of_the_wrong_shape() -> None:
    with pytest.raises(InvalidInputError, match="pattern"):
        exactrelu.exact_affine_maps(_mlp(), [torch.zeros(5, dtype=torch.int64)], (3,))
    with pytest.raises(InvalidInputError, match="pattern"):
        exactrelu.exact_affine_maps(_mlp(), [], (3,))


def test_train_mode_dropout_is_rejected_but_p0_is_fine() -> None:
    net = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)).train()
    with pytest.raises(UnsupportedModelError, match="Dropout"):
        capture(net, (2,))
    capture(nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.0)).train(), (2,))


# ----------------------------------------------------------------------------- the model is left untouched

class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(2, 2, 3, padding=1)
        self.bn = nn.BatchNorm2d(2)
        self.conv2 = nn.Conv2d(2, 2, 3, padding=1)
        self.drop = nn.Dropout(0.0)
        self.head = nn.Linear(32, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x + self.conv2(torch.relu(self.bn(self.conv1(x))))
        return self.head(self.drop(y).flatten(1))


def _prepared_model() -> nn.Module:
    torch.manual_seed(3)
    net = Residual()
    net.train()
    net(torch.randn(4, 2, 4, 4)).sum().backward()  # grads and running stats present
    net.eval()
    net.drop.train()  # a mixed training state must survive as it is
    net.conv1.weight.requires_grad_(False)
    calls: list = []  # backward hooks do not change net(x): capture accepts and never runs them
    net.conv2.register_full_backward_hook(lambda *a: calls.append("hook"))
    net.register_full_backward_pre_hook(lambda *a: calls.append("pre"))
    net.calls = calls  # type: ignore[assignment]
    return net


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_affine_maps_leaves_the_model_as_it_found_it(dtype: torch.dtype) -> None:
    net = _prepared_model()
    before = _snapshot(net)
    x = torch.randn(3, 2, 4, 4, dtype=dtype)
    g = exactrelu.affine_maps(net, x)
    _assert_same(before, net)
    assert net.calls == []  # type: ignore[attr-defined]
    assert g.weight.grad_fn is None and g.bias.grad_fn is None
    assert not g.weight.requires_grad and not g.bias.requires_grad
    assert g.weight.dtype == dtype
    exactrelu.exact_forward(net, x[0].double())
    _assert_same(before, net)


def test_affine_maps_builds_no_graph_even_with_grad_enabled() -> None:
    net = _prepared_model()
    x = torch.randn(2, 2, 4, 4, requires_grad=True)
    with torch.enable_grad():
        g = exactrelu.affine_maps(net, x)
    assert g.weight.grad_fn is None and g.bias.grad_fn is None
    assert x.grad is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_affine_maps_runs_on_the_model_device() -> None:
    net = _prepared_model().double().cuda()
    before = _snapshot(net)
    x = torch.randn(3, 2, 4, 4, dtype=torch.float64)
    g = exactrelu.affine_maps(net, x)  # a CPU batch for a CUDA model: computed on the model's device
    assert g.weight.device.type == "cuda" and g.bias.device.type == "cuda"
    _assert_same(before, net)
    with torch.no_grad():
        y = net(x.cuda())
    torch.testing.assert_close((g.weight * x.cuda()[:, None]).sum((2, 3, 4)) + g.bias, y, rtol=1e-9, atol=1e-12)


def test_affine_maps_follows_the_model_device_for_cpu_models() -> None:
    net = _prepared_model()
    g = exactrelu.affine_maps(net, torch.randn(2, 2, 4, 4))
    assert g.weight.device == next(net.parameters()).device


def test_run_nodes_resumes_the_program_loop_and_frees_dead_values() -> None:
    """Program.run_nodes, the one node loop: running the nodes in two pieces (as the checker and
    the certifier do between piecewise ops) gives the output of exact_run, and a value is gone
    once its last user has run."""

    class Res(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.r, self.b = nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2)

        def forward(self, x):
            return self.b(self.r(self.a(x))) + x

    torch.manual_seed(0)
    prog = capture(Res().double(), (2,))
    x = [Fraction(1, 3), Fraction(-2, 7)]
    m0 = exactrelu._exact.constant_map(x, prog.input_shape)
    want, states = prog.exact_run(m0)
    seen: list[int] = []

    def step(i, nd, ins):
        seen.append(i)
        if nd.piecewise:
            return nd.rule.exact_apply(nd.module, ins[0], states[0].reshape(nd.out_shape))
        return nd.rule.exact_forward(nd.module, ins, nd.out_shape)

    p = prog.piecewise[0]
    values = prog.run_nodes({-1: m0}, 0, p, step)
    assert set(values) == {-1, p - 1}  # the input is still used by the residual add
    got = prog.run_nodes(dict(values), p, len(prog.nodes), step)
    assert seen == list(range(len(prog.nodes)))
    assert set(got) == {-1, prog.output}  # the input is never dropped
    assert got[prog.output].mat == want.mat



# ------------------------------------------------------- a module changed between two runs

class _Scaled(nn.Module):
    """``s * inner(x)``: a plain float attribute and a nested layer, both read by its rule."""

    def __init__(self, s: float) -> None:
        super().__init__()
        self.s = s
        self.inner = nn.Linear(1, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.s * self.inner(x)


class _ScaledRule(exactrelu.AffineRule):
    def linear(self, module: Any, x: torch.Tensor) -> torch.Tensor:
        return module.s * (x @ module.inner.weight.T)

    def constant(self, module: Any, zeros: torch.Tensor) -> torch.Tensor:
        return zeros + module.s * module.inner.bias


def _patterns_at_witnesses(cert: Any, net: nn.Module) -> list[tuple[list, list]]:
    """(claimed pattern, the pattern plain float64 torch computes at the region's witness)."""
    out = []
    for r in cert.regions:
        x = torch.tensor([[float(v) for v in r.witness]], dtype=torch.float64)
        pre = net[0](x)[0]
        out.append((r.pattern, [[int(v > 0) for v in pre.tolist()]]))
    return out


@pytest.mark.parametrize("change", ["attribute", "nested weight"])
def test_a_changed_custom_module_is_certified_as_it_is_now(change: str) -> None:
    """Exact maps are cached per module; a change the tensors of the module itself do not show
    (a plain attribute, a submodule's weight) must not leave a stale map behind, and the
    certificate's digest must tell the two networks apart."""
    exactrelu.register_rule(_Scaled, _ScaledRule())
    try:
        sc = _Scaled(0.5)
        with torch.no_grad():
            sc.inner.weight[:] = 1.0
            sc.inner.bias[:] = torch.tensor([0.0, -1.0, -2.0])
        net = nn.Sequential(sc, nn.ReLU(), nn.Linear(3, 1)).double().eval()
        first = exactrelu.verify(net, [(-4, 4)], progress=False)
        if change == "attribute":
            sc.s = -1.0
        else:
            with torch.no_grad():
                sc.inner.weight[:] = -1.0
        again = exactrelu.verify(net, [(-4, 4)], progress=False)
        # breakpoints at 0, 1, 2 (first) and at 0, -1, -2 (again): the patterns of again's
        # regions are those the current network has at their witnesses
        for claimed, actual in _patterns_at_witnesses(again, net):
            assert claimed == actual
        def left_to_right(cert: Any) -> list:
            return [r.pattern for r in sorted(cert.regions, key=lambda r: r.witness)]

        assert left_to_right(again) != left_to_right(first)
        assert again.digest != first.digest
    finally:
        del exactrelu.rules.RULES[_Scaled]


def test_maxpool_windows_follow_a_changed_kernel_size() -> None:
    pool = nn.MaxPool2d(2)
    rule = exactrelu.rules.find_rule(nn.MaxPool2d)
    _, shape2 = rule.windows(pool, (1, 4, 4))
    pool.kernel_size = pool.stride = 4
    win, shape4 = rule.windows(pool, (1, 4, 4))
    assert (shape2, shape4) == ((1, 2, 2), (1, 1, 1))
    assert sorted(win.tolist()[0]) == list(range(16))


def test_module_state_sees_a_tensor_in_a_list_attribute_to_the_last_bit() -> None:
    """A list's ``repr`` would print a tensor to 4 digits; its bytes are compared instead."""
    from exactrelu.rules import _state_stamp

    m = nn.Linear(2, 2)
    m.extra = [torch.tensor([1.0], dtype=torch.float64), (2, 3)]
    before = _state_stamp(m)
    m.extra[0] += 2.0 ** -52
    assert _state_stamp(m) != before


@pytest.mark.parametrize("net, words", [
    (nn.Sequential(), "no layers"),
    (nn.Sequential(nn.Linear(2, 0), nn.ReLU(), nn.Linear(0, 1)), "size zero"),
])
def test_empty_networks_and_zero_width_layers_are_one_clear_error(net: nn.Module, words: str) -> None:
    with pytest.raises(InvalidInputError, match=words):
        exactrelu.verify(net, [(-1, 1)] * 2, progress=False)


def test_a_claim_that_is_not_patterns_is_one_clear_error() -> None:
    net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    with pytest.raises(InvalidInputError, match="claimed must be"):
        exactrelu.verify(net, [(-1, 1)] * 2, progress=False, claimed="abc")
