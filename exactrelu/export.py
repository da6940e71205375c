"""Certificates as tables for papers: per-region statistics as CSV or a pandas DataFrame, and
counts across runs as a LaTeX (booktabs) table.

Per-region tables (:func:`region_table`, :func:`to_csv`, :func:`to_dataframe`) have one row per
region, in the certificate's order:

- ``region`` (its index), ``piece`` (its linear piece's index) and ``pattern``: its states as
  text, the ops' states separated by ``|`` and each op's by ``,`` (``"1,0,1|0,1"``; read back
  with ``[[int(s) for s in op.split(",") if s] for op in text.split("|")]``);
- the columns of :func:`exactrelu.analysis.region_statistics`, in its order (volume, numbers of
  vertices and facets, squared diameter and diameter, inscribed cube, Euclidean inradius bounds,
  squared eccentricity and eccentricity). An exact column ``x`` (a rational) is written twice:
  ``x`` as the nearest float (correctly rounded; ``inf`` past the float range) and
  ``x_exact`` as the exact rational ``"p/q"`` (or ``"p"``), of any size. A missing value (an
  unbounded region's volume) is empty in CSV, NaN or None in a DataFrame.

>>> import torch, exactrelu
>>> net = torch.nn.Sequential(torch.nn.Linear(2, 1), torch.nn.ReLU(), torch.nn.Linear(1, 1))
>>> with torch.no_grad():
...     _ = net[0].weight.copy_(torch.tensor([[1.0, 0.0]])), net[0].bias.fill_(-0.5)
>>> cert = exactrelu.verify(net, [(0, 1), (0, 1)], progress=False)
>>> columns = region_table(cert)
>>> columns["volume_exact"], columns["volume"], columns["pattern"]
(['1/2', '1/2'], [0.5, 0.5], ['1', '0'])
"""

from __future__ import annotations

import csv
import dataclasses
import math
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

from . import _parse
from ._deps import extra_missing
from .certificate import Certificate
from .errors import InvalidInputError

__all__ = ["region_table", "to_csv", "to_dataframe", "latex_table", "TABLE_COLUMNS",
           "pattern_text"]


def pattern_text(pattern: Sequence[Sequence[int]]) -> str:
    """A region's pattern as text: ops separated by ``|``, states by ``,``."""
    return "|".join(",".join(str(s) for s in op) for op in pattern)


def _float(x: Fraction | None) -> float | None:
    """The float nearest ``x`` (Python's int division rounds correctly), ``+-inf`` past range."""
    if x is None:
        return None
    try:
        return float(x)
    except OverflowError:
        return math.inf if x > 0 else -math.inf


def region_table(cert: Certificate, *, euclidean: bool = True, bits: int = 40
                 ) -> dict[str, list[Any]]:
    """Every per-region column by name, in order (see the module docstring); ``euclidean`` and
    ``bits`` are :func:`~exactrelu.analysis.region_statistics`'s (two exact LPs per region for
    the Euclidean inradius bounds; without them those columns are empty)."""
    from .analysis.statistics import RegionStatistics, region_statistics

    stats = region_statistics(cert, euclidean=euclidean, bits=bits)
    out: dict[str, list[Any]] = {
        "region": [r.index for r in cert.regions],
        "piece": list(cert.pieces),
        "pattern": [pattern_text(r.pattern) for r in cert.regions],
    }
    for f in dataclasses.fields(RegionStatistics):
        if f.name == "index":
            continue
        values = getattr(stats, f.name)
        if "Fraction" in str(f.type):
            out[f.name] = [_float(v) for v in values]
            out[f.name + "_exact"] = [None if v is None else _parse.text(v) for v in values]
        else:
            out[f.name] = list(values)
    return out


def to_csv(cert: Certificate, path: str | Path, **kwargs: Any) -> None:
    """Write :func:`region_table` as CSV (a header row, then one row per region; floats as
    Python's shortest round-trip text, missing values empty). ``kwargs`` go to
    :func:`region_table`."""
    columns = region_table(cert, **kwargs)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(list(columns))
        for row in zip(*columns.values(), strict=True):
            writer.writerow(["" if v is None else repr(v) if isinstance(v, float) else v
                             for v in row])


def to_dataframe(cert: Certificate, **kwargs: Any) -> Any:
    """:func:`region_table` as a ``pandas.DataFrame`` (the ``paper`` extra: ``pip install
    'exactrelu[paper]'``); ``kwargs`` go to :func:`region_table`."""
    try:
        import pandas
    except ImportError as err:
        raise extra_missing(err, "Certificate.to_dataframe", "paper") from err
    return pandas.DataFrame(region_table(cert, **kwargs))


# --------------------------------------------------------------------------------- LaTeX table
def _seconds(cert: Certificate) -> float | None:
    seconds = cert.stats.get("seconds") if isinstance(cert.stats, dict) else None
    total = seconds.get("total") if isinstance(seconds, dict) else None
    return float(total) if isinstance(total, (int, float)) and not isinstance(total, bool) \
        else None


#: The columns :func:`latex_table` knows: name -> the value of one certificate (None: "--").
#: ``seconds`` is the certificate's recorded ``stats["seconds"]["total"]`` (trace and
#: certification, as verify measured it: not proved, unlike the counts).
TABLE_COLUMNS: dict[str, Any] = {
    "regions": lambda c: c.num_regions,
    "pieces": lambda c: c.num_pieces,
    "vertices": lambda c: c.num_vertices,
    "adjacent pairs": lambda c: len(c.adjacency),
    "dimension": lambda c: c.dim,
    "seconds": _seconds,
}

_TEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                "^": r"\textasciicircum{}"}


def _tex(text: str) -> str:
    """``text`` with LaTeX's special characters escaped (for text mode)."""
    return "".join(_TEX_SPECIAL.get(ch, ch) for ch in text)


def latex_table(certs: Sequence[Certificate], names: Sequence[str] | None = None,
                columns: Sequence[str] = ("regions", "pieces", "vertices", "adjacent pairs",
                                          "seconds"), *,
                name_header: str = "network", digits: int = 2) -> str:
    """A booktabs ``tabular`` of counts, one row per certificate (needs
    ``\\usepackage{booktabs}``): the first column ``names`` (default ``1``, ``2``, ...; escaped
    for LaTeX) under ``name_header``, then one right-aligned column per name in ``columns``
    (keys of :data:`TABLE_COLUMNS`). Integers are written with thousands separators
    (``1{,}151``), seconds with ``digits`` decimals, a missing value as ``--``.

    >>> import torch, exactrelu
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    >>> cert = exactrelu.verify(net, [(-1, 1), (-1, 1)], progress=False)
    >>> print(latex_table([cert], ["tiny_net"], ("regions", "dimension")))
    \\begin{tabular}{lrr}
    \\toprule
    network & regions & dimension \\\\
    \\midrule
    tiny\\_net & ... & 2 \\\\
    \\bottomrule
    \\end{tabular}
    """
    certs = list(certs)
    names = [str(k + 1) for k in range(len(certs))] if names is None else list(names)
    if len(names) != len(certs):
        raise InvalidInputError(f"{len(names)} names for {len(certs)} certificates")
    unknown = [c for c in columns if c not in TABLE_COLUMNS]
    if unknown:
        raise InvalidInputError(f"unknown column(s) {', '.join(map(repr, unknown))}; "
                                f"latex_table knows {', '.join(map(repr, TABLE_COLUMNS))}")
    if isinstance(digits, bool) or not isinstance(digits, int) or not 0 <= digits <= 9:
        raise InvalidInputError(f"digits must be an int from 0 to 9, got {digits!r}")

    def cell(value: Any) -> str:
        if value is None:
            return "--"
        if isinstance(value, int):
            return f"{value:,}".replace(",", "{,}")
        return f"{value:,.{digits}f}".replace(",", "{,}")

    lines = [r"\begin{tabular}{l" + "r" * len(columns) + "}", r"\toprule",
             " & ".join([_tex(name_header)] + [_tex(c) for c in columns]) + r" \\",
             r"\midrule"]
    for name, cert in zip(names, certs, strict=True):
        if not isinstance(cert, Certificate):
            raise InvalidInputError(f"latex_table takes Certificates, got "
                                    f"{type(cert).__name__} for {name!r}")
        values = [cell(TABLE_COLUMNS[c](cert)) for c in columns]
        lines.append(" & ".join([_tex(str(name)), *values]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines)
