"""Capture: every unsupported op reported at once, bad input rejected, the model left untouched."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import Any

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
    assert [("1" in p and "Tanh" in p, "3" in p and "Softplus" in p)
            for p in info.value.problems] == \
        [(True, False), (False, True)]


def test_register_rule_makes_a_module_supported() -> None:
    class Double(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.stack([x, x]).sum(0)  # 2 x, through an op without a rule

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
        torch.testing.assert_close((g.weight * x[:, None]).sum(-1) + g.bias, net(x), rtol=1e-12,
                                   atol=1e-12)
    finally:
        del exactrelu.rules.RULES[Double]


# ----------------------------------------------------------------------------- bad input

def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).eval()


def _convnet() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(),
                         nn.Linear(12, 1)).eval()


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
    "shape does not fit": (lambda: (_mlp(), torch.randn(2, 5)), InvalidInputError,
                           ("(5,)", "does not fit")),
    "conv input without batch dim": (lambda: (_convnet(), torch.randn(2, 4, 4)),
                                     InvalidInputError,
                                     ("x of shape (2, 4, 4)", "batch of 2 samples of shape (4, 4)",
                                      "Conv2d")),
    "mlp input without batch dim": (lambda: (_mlp(), torch.randn(3)), InvalidInputError,
                                    ("batch",)),
    "integer dtype": (lambda: (_mlp(), torch.ones(2, 3, dtype=torch.int64)), InvalidInputError,
                      ("floating", "int64")),
    "bool dtype": (lambda: (_mlp(), torch.ones(2, 3, dtype=torch.bool)), InvalidInputError,
                   ("floating",)),
    "nan input": (lambda: (_mlp(), torch.full((2, 3), float("nan"))), InvalidInputError, ("NaN",)),
    "not a tensor": (lambda: (_mlp(), [[1.0, 2.0, 3.0]]), InvalidInputError, ("tensor",)),
}


def _snapshot(net: nn.Module) -> dict[str, Any]:
    return {
        "state": {k: v.detach().clone() for k, v in net.state_dict().items()},
        "training": {name: m.training for name, m in net.named_modules()},
        "requires_grad": {k: p.requires_grad for k, p in net.named_parameters()},
        "grads": {k: None if p.grad is None else p.grad.clone() for k, p in net.named_parameters()},
        "hooks": {name: (dict(m._forward_hooks), dict(m._forward_pre_hooks),
                         dict(m._backward_hooks), dict(m._backward_pre_hooks))
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
    with pytest.raises(InvalidInputError, match=r"torch\.nn\.Module"):
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


# ------------------------------------------------------------------- the model is left untouched

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
    # a CPU batch for a CUDA model: computed on the model's device
    g = exactrelu.affine_maps(net, x)
    assert g.weight.device.type == "cuda" and g.bias.device.type == "cuda"
    _assert_same(before, net)
    with torch.no_grad():
        y = net(x.cuda())
    torch.testing.assert_close((g.weight * x.cuda()[:, None]).sum((2, 3, 4)) + g.bias, y,
                               rtol=1e-9, atol=1e-12)


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
def test_empty_networks_and_zero_width_layers_are_one_clear_error(net: nn.Module,
                                                                  words: str) -> None:
    with pytest.raises(InvalidInputError, match=words):
        exactrelu.verify(net, [(-1, 1)] * 2, progress=False)


def test_a_claim_that_is_not_patterns_is_one_clear_error() -> None:
    net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    with pytest.raises(InvalidInputError, match="claimed must be"):
        exactrelu.verify(net, [(-1, 1)] * 2, progress=False, claimed="abc")


# ------------------------------------------------------- what capture cannot model is refused

def _seq() -> nn.Sequential:
    return nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1)).eval()


def _hooked(where: str, kind: str) -> nn.Module:
    net = _seq()
    target = net if where == "root" else net[0]
    if kind == "hook":
        target.register_forward_hook(lambda m, i, o: 2 * o)
    else:
        target.register_forward_pre_hook(lambda m, i: (2 * i[0],))
    return net


class _Square(nn.ReLU):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * x


class _ShiftedConv(nn.Conv1d):
    def _conv_forward(self, x: torch.Tensor, w: torch.Tensor, b: Any) -> torch.Tensor:
        return super()._conv_forward(x + 1, w, b)


class _Called(nn.Linear):
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return 2 * super().__call__(x)


class _Block(nn.Module):
    """A module torch.fx traces through (not a leaf)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc(x))


class _Outer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block, self.seq = _Block(), nn.Sequential(nn.Linear(2, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.seq(self.block(x))


def _outer_hooked(where: str) -> nn.Module:
    net = _Outer()
    {"leaf": net.block.fc, "traced": net.block, "sequential": net.seq}[where].register_forward_hook(
        lambda m, i, o: o)
    return net


class _InPlace(nn.Module):
    def __init__(self, how: str) -> None:
        super().__init__()
        self.fc, self.act, self.how = nn.Linear(2, 2), nn.ReLU(inplace=True), how

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x)
        if self.how == "module":
            return h + self.act(h)
        if self.how == "functional":
            return h + torch.nn.functional.relu(h, inplace=True)
        if self.how == "augmented":
            h2 = h
            h += x  # writes into h, which h2 still refers to
            return h + h2
        g = h.view(h.size(0), -1)  # an alias of h
        g += x
        return h + x


class _KwCall(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(input=x)


class _AddAlpha(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x).add(x, alpha=2)


class _FunctionalDropout(nn.Module):
    def __init__(self, how: str) -> None:
        super().__init__()
        self.fc, self.how = nn.Linear(2, 2), how

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.how == "default":  # F.dropout's training flag defaults to True
            return torch.nn.functional.dropout(self.fc(x), 0.3)
        return torch.nn.functional.dropout(self.fc(x), 0.3, self.training)


def _hooked_inside_a_ruled_module() -> nn.Module:
    exactrelu.register_rule(_Scaled, _ScaledRule())
    sc = _Scaled(0.5)
    sc.inner.register_forward_hook(lambda m, i, o: o)
    return nn.Sequential(nn.Linear(2, 1), sc)


def _graph_module_hooked() -> nn.Module:
    gm = torch.fx.symbolic_trace(_Block())
    gm.fc.register_forward_hook(lambda m, i, o: o)
    return gm


def _patched() -> nn.Module:
    net = _seq()
    net[2].forward = lambda x: x  # type: ignore[method-assign]
    return net


def _with(index: int, module: nn.Module) -> nn.Module:
    net = _seq()
    net[index] = module
    return net


def _complex() -> nn.Module:
    return _with(0, nn.Linear(2, 2, dtype=torch.complex64))


def _int_bias() -> nn.Module:
    net = _seq()
    del net[2].bias
    net[2].register_buffer("bias", torch.ones(1, dtype=torch.int64))
    return net


def _old_norm(which: str) -> nn.Module:
    net = _seq()
    norm = torch.nn.utils.weight_norm if which == "weight" else torch.nn.utils.spectral_norm
    net[0] = norm(net[0])
    return net


def _train_parametrization() -> nn.Module:
    net = _seq()
    net[0] = torch.nn.utils.parametrizations.spectral_norm(net[0])
    return net.train()


REFUSED: dict[str, tuple[Callable[[], nn.Module], tuple[str, ...]]] = {
    "forward hook":
        (lambda: _hooked("0", "hook"), ("0 (torch.nn.modules.linear.Linear)", "forward hook")),
    "forward pre-hook": (lambda: _hooked("0", "pre"), ("0 (", "forward pre-hook")),
    "hook on the net": (lambda: _hooked("root", "hook"), ("<root> (", "forward hook")),
    "pre-hook on the net": (lambda: _hooked("root", "pre"), ("<root> (", "forward pre-hook")),
    "hook on an fx leaf": (lambda: _outer_hooked("leaf"), ("block.fc (", "forward hook")),
    "hook on a traced-through module":
        (lambda: _outer_hooked("traced"), ("block (", "forward hook")),
    "hook on a Sequential inside fx":
        (lambda: _outer_hooked("sequential"), ("seq (", "forward hook")),
    "hook on a leaf of an fx GraphModule": (_graph_module_hooked, ("fc (", "forward hook")),
    "hook inside a module with a rule":
        (_hooked_inside_a_ruled_module, ("1.inner (", "forward hook")),
    "old weight_norm":
        (lambda: _old_norm("weight"), ("0 (", "weight_norm", "parametrizations.weight_norm")),
    "old spectral_norm": (lambda: _old_norm("spectral"), ("0 (", "spectral_norm", "pre-hook")),
    "parametrization in train mode":
        (_train_parametrization, ("0 (", "weight", "train mode", "eval")),
    "subclass redefining forward":
        (lambda: _with(1, _Square()), ("1 (", "_Square", "redefines forward", "ReLU")),
    "subclass redefining _conv_forward":
        (lambda: nn.Sequential(_ShiftedConv(1, 1, 1), nn.Flatten()),
         ("0 (", "_conv_forward", "Conv1d")),
    "class redefining __call__": (lambda: _with(0, _Called(2, 2)), ("0 (", "__call__")),
    "forward replaced on the instance": (_patched, ("2 (", "forward replaced on the instance")),
    "complex parameters": (_complex, ("0.weight", "complex", "imaginary")),
    "integer buffer": (_int_bias, ("2.bias", "int64")),
    "in-place module read again": (lambda: _InPlace("module"), ("act (", "in place", "add")),
    "in-place functional read again":
        (lambda: _InPlace("functional"), ("relu (", "in place", "add")),
    "in-place add through a view": (lambda: _InPlace("alias"), ("iadd (", "in place", "add")),
    "augmented assignment read again":
        (lambda: _InPlace("augmented"), ("iadd (", "in place", "add")),
    "module called with a keyword": (_KwCall, ("fc (", "keyword")),
    "functional dropout in train mode":
        (lambda: _FunctionalDropout("flag").train(), ("dropout (", "train mode")),
    "functional dropout with its default training=True":
        (lambda: _FunctionalDropout("default").eval(), ("dropout (", "train mode")),
    "add with alpha": (_AddAlpha, ("add", "alpha")),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_what_capture_cannot_model_is_refused_naming_module_and_reason(name: str) -> None:
    make, words = REFUSED[name]
    try:
        with pytest.raises(UnsupportedModelError) as info:
            capture(make(), (1, 2) if "conv" in name else (2,))
    finally:
        exactrelu.rules.RULES.pop(_Scaled, None)
    problems = info.value.problems
    assert any(all(w in p for w in words) for p in problems), f"{words} not in one of {problems}"
    assert all(w in str(info.value) for w in words)


@pytest.mark.parametrize("kind", ["forward", "pre"])
def test_global_forward_hooks_are_refused_and_backward_ones_are_not(kind: str) -> None:
    mm = torch.nn.modules.module
    name = f"register_module_{'forward' if kind == 'forward' else 'forward_pre'}_hook"
    register = getattr(mm, name)
    handle = register(lambda *a: None)
    try:
        with pytest.raises(UnsupportedModelError) as info:
            capture(_seq(), (2,))
        (problem,) = info.value.problems
        assert problem.startswith("<global>") and name in problem
    finally:
        handle.remove()
    handle = mm.register_module_full_backward_hook(lambda *a: None)
    try:
        assert capture(_seq(), (2,)).num_piecewise == 1
    finally:
        handle.remove()


def test_every_problem_is_reported_at_once() -> None:
    net = nn.Sequential(nn.Linear(2, 2, dtype=torch.complex64), _Square(), nn.Linear(2, 2),
                        nn.GELU())
    net[2].register_forward_hook(lambda m, i, o: o)
    with pytest.raises(UnsupportedModelError) as info:
        capture(net, (2,))
    problems = info.value.problems
    assert len(problems) == 5, problems  # complex weight and bias, subclass, hook, GELU
    for words in (("0.weight", "complex"), ("0.bias", "complex"), ("1 (", "redefines forward"),
                  ("2 (", "forward hook"), ("3 (", "GELU")):
        assert any(all(w in p for w in words) for p in problems), (words, problems)


def test_an_in_place_op_whose_input_is_not_read_again_is_captured() -> None:
    """Sequential(Linear, ReLU(inplace=True), ...) and y = relu_(fresh tensor) change nothing."""
    prog = capture(nn.Sequential(nn.Linear(2, 2), nn.ReLU(inplace=True), nn.Linear(2, 1)), (2,))
    assert prog.num_piecewise == 1


def test_functional_dropout_in_eval_mode_is_the_identity() -> None:
    net = _FunctionalDropout("flag").eval()
    prog = capture(net, (2,))
    assert [type(nd.module) for nd in prog.nodes] == [nn.Linear, nn.Dropout]
    x = torch.randn(4, 2)
    torch.testing.assert_close(prog.forward(x), net(x))


@pytest.mark.parametrize("call, kind, consts", [
    (lambda x: torch.nn.functional.leaky_relu(x, 0.2), nn.LeakyReLU, {"negative_slope": 0.2}),
    (lambda x: torch.nn.functional.leaky_relu(x, negative_slope=0.5, inplace=True), nn.LeakyReLU,
     {"negative_slope": 0.5, "inplace": True}),
    (lambda x: torch.nn.functional.hardtanh(x, -2.0, 3.0), nn.Hardtanh,
     {"min_val": -2.0, "max_val": 3.0}),
    (lambda x: torch.nn.functional.hardtanh(x, max_val=0.5), nn.Hardtanh,
     {"min_val": -1.0, "max_val": 0.5}),
    (lambda x: torch.nn.functional.relu(x, True), nn.ReLU, {"inplace": True}),
])
def test_functional_activations_take_their_arguments_where_torch_does(call, kind, consts) -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(2, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return call(self.fc(x))

    (act,) = [nd.module for nd in capture(Net(), (2,)).nodes if nd.piecewise]
    assert type(act) is kind
    assert {k: getattr(act, k) for k in consts} == consts


def test_a_program_unpickled_without_its_net_keeps_its_device_and_traces_alike():
    # a Dask task gets the client's program pickled (without ``net``): the device comes from
    # its ops' modules, and the trace finds what it finds on the program as captured
    import pickle

    from exactrelu.trace import trace

    net = nn.Sequential(nn.Linear(2, 6), nn.ReLU(), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 1))
    prog = capture(net, (2,))
    shipped = pickle.loads(pickle.dumps(prog))
    assert shipped.net is None and shipped.device() == prog.device() == torch.device("cpu")
    here = trace(prog, [(-1, 1), (-1, 1)], progress=False)
    there = trace(shipped, [(-1, 1), (-1, 1)], progress=False)
    assert here.num_regions == there.num_regions > 1
    assert set(here.packed_patterns()) == set(there.packed_patterns())


def test_float_entries_become_their_exact_rationals():
    # every float64 is a dyadic rational: Fraction(x) takes it exactly (subnormals, -0.0, huge)
    from exactrelu._exact import tensor_to_fmpq_list

    xs = [0.0, -0.0, 1.0, -2.5, 0.1, 1 / 3, 5e-324, -2.2250738585072014e-308,
          1.7976931348623157e308, 123456789.123456789]
    got = tensor_to_fmpq_list(torch.tensor(xs, dtype=torch.float64))
    assert [Fraction(int(q.p), int(q.q)) for q in got] == [Fraction(x) for x in xs]


@pytest.mark.parametrize("make, shape", [
    (lambda: nn.Linear(2, 4000), (5000, 2)),  # sized from the weight's shape
    (lambda: nn.Conv1d(2, 4000, 1), (2, 5000)),  # sized on the meta device
])
def test_an_op_whose_output_exceeds_the_entry_limit_is_refused_before_it_is_computed(
        make: Callable[[], nn.Module], shape: tuple[int, ...]) -> None:
    # 4000 x 5000 = 2 x 10^7 entries per sample, above rules.MAX_ENTRIES (2^24)
    net = nn.Sequential(make(), nn.ReLU()).eval()
    with pytest.raises(UnsupportedModelError, match="20000000 entries per sample"):
        capture(net, shape)
