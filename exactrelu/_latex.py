"""A certificate as a LaTeX piecewise definition (``\\begin{cases} ... \\end{cases}``).

Every piece's exact affine map is typeset with ``sympy.latex`` on exact rationals, next to its
region: an interval in 1-D, the region's facet inequalities (scaled to coprime integers) in 2-D.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from .errors import ExactReluError, InvalidInputError

__all__ = ["certificate_to_latex"]


def _rat(x: Fraction) -> Any:
    import sympy

    return sympy.Rational(x.numerator, x.denominator)


def _integer_row(a: Sequence[Fraction], b: Fraction) -> tuple[list[int], int]:
    """``a . t <= b`` scaled by a positive number to coprime integers."""
    vals = [*a, b]
    den = math.lcm(*(v.denominator for v in vals))
    ints = [int(v * den) for v in vals]
    g = math.gcd(*ints) or 1
    ints = [v // g for v in ints]
    return ints[:-1], ints[-1]


def certificate_to_latex(cert: Any, names: Sequence[str] | None = None, max_regions: int = 50, *,
                         output: int | None = None, function: str = "f") -> str:
    """The network of a 1-D or 2-D certificate as ``f(x) = \\begin{cases} ... \\end{cases}``.

    ``names``: the input symbols (default ``x_1, x_2``, or ``t_1, t_2`` on a slice); ``output``:
    one output index, or ``None`` for all (a column vector when there are several). More than
    ``max_regions`` regions raise :class:`~exactrelu.errors.ExactReluError`.

    >>> import torch, exactrelu
    >>> net = torch.nn.Sequential(torch.nn.Linear(1, 1), torch.nn.ReLU())
    >>> with torch.no_grad():
    ...     _ = net[0].weight.fill_(2.0), net[0].bias.fill_(-1.0)
    >>> print(certificate_to_latex(exactrelu.verify(net, [(0, 1)], progress=False)))
    ... # doctest: +NORMALIZE_WHITESPACE
    f(x_{1}) = \\begin{cases} 0 & \\text{if } 0 \\le x_{1} \\le \\frac{1}{2} \\\\
    2 x_{1} - 1 & \\text{if } \\frac{1}{2} \\le x_{1} \\le 1 \\end{cases}
    """
    import sympy

    d = cert.dim
    if d not in (1, 2):
        raise InvalidInputError(f"to_latex writes 1-D and 2-D certificates; this one has "
                                f"dimension {d}")
    if cert.num_regions > max_regions:
        raise ExactReluError(f"{cert.num_regions} regions is more than max_regions={max_regions} "
                             "for a LaTeX piecewise definition; pass a larger max_regions if you "
                             "really want it")
    if names is None:
        prefix = "t" if getattr(cert.domain, "kind", "") == "slice" else "x"
        names = [f"{prefix}_{i + 1}" for i in range(d)]
    if len(names) != d:
        raise InvalidInputError(f"names has {len(names)} entries for a {d}-D certificate")
    syms = [sympy.Symbol(n) for n in names]
    n_out = len(cert.regions[0].output) if cert.regions else 0
    outs = list(range(n_out)) if output is None else [output]
    if any(not 0 <= o < n_out for o in outs):
        raise InvalidInputError(f"output={output}: the network has {n_out} outputs")

    def value(row: Sequence[Fraction]) -> str:
        expr = sum((_rat(a) * s for a, s in zip(row[:-1], syms, strict=True)),
                   sympy.Integer(0)) + _rat(row[-1])
        return sympy.latex(sympy.expand(expr))

    def region_text(r: Any) -> tuple[Any, str]:
        if d == 1:
            xs = [cert.vertices[k][0] for k in r.vertices]
            lo, hi = min(xs), max(xs)
            return (lo,), (rf"\text{{if }} {sympy.latex(_rat(lo))} \le {sympy.latex(syms[0])} "
                           rf"\le {sympy.latex(_rat(hi))}")
        parts = []
        for f in r.facets:
            a, b = _integer_row(f.a, f.b)
            rel = r"\le"
            if next(v for v in a if v != 0) < 0:  # -x <= 1 reads better as x >= -1
                a, b, rel = [-v for v in a], -b, r"\ge"
            lhs = sympy.latex(sum((ai * s for ai, s in zip(a, syms, strict=True)),
                                  sympy.Integer(0)))
            parts.append(rf"{lhs} {rel} {b}")
        return tuple(r.witness), r"\text{if } " + r",\ ".join(parts)

    rows = []
    for _key, text, r in sorted(((*region_text(r), r) for r in cert.regions), key=lambda t: t[0]):
        if len(outs) == 1:
            val = value(r.output[outs[0]])
        else:
            column = r" \\ ".join(value(r.output[o]) for o in outs)
            val = r"\begin{pmatrix} " + column + r" \end{pmatrix}"
        rows.append(f"{val} & {text}")
    args = ", ".join(sympy.latex(s) for s in syms)
    return f"{function}({args}) = \\begin{{cases}} " + r" \\ ".join(rows) + r" \end{cases}"
