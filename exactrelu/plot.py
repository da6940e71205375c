"""Pictures of certificates (matplotlib, object-oriented: no pyplot state, works without a display).

Every function returns a :class:`matplotlib.figure.Figure` (the one holding ``ax`` when given) and
writes it to ``path`` when given. Geometry comes from the certificate's exact vertices; only the
drawing is in float.

- :func:`plot_regions`: 2-D region map, coloured per region, by predicted class or output value,
  with the certified decision boundary (:func:`exactrelu.decision_boundary`) and level sets
  (:func:`exactrelu.level_set`).
- :func:`plot_function_1d`: a 1-D function with its certified kinks and first-layer elbows.
- :func:`plot_surface`: a scalar output over a 2-D domain with the region edges drawn on it.
- :func:`plot_regions_3d`: the regions of a 3-D certificate as their exact facet polygons,
  one colour per region, optionally exploded apart or cut open.
- :func:`plot_counts`: region counts against training epochs.
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from ._deps import extra_missing

try:
    from matplotlib.axes import Axes
    from matplotlib.collections import LineCollection, PolyCollection
    from matplotlib.figure import Figure
except ImportError as err:
    raise extra_missing(err, "exactrelu.plot", "plot") from err

if TYPE_CHECKING:
    from mpl_toolkits.mplot3d import Axes3D

import itertools

from .boundary import class_cells, decision_boundary, level_set
from .certificate import Certificate, Region
from .errors import InvalidInputError

__all__ = ["plot_regions", "plot_function_1d", "plot_surface", "plot_regions_3d", "plot_counts",
           "kinks", "region_polygon", "region_colors", "region_facets_3d"]


# --------------------------------------------------------------------------------- helpers
def _figure(ax: Axes | None, projection: str | None = None,
            figsize: tuple[float, float] = (6.4, 5.6)) -> tuple[Figure, Axes]:
    if ax is not None:
        fig = ax.figure
        while not isinstance(fig, Figure):  # an axes of a SubFigure: the Figure holding it
            fig = fig.figure
        return fig, ax
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot(projection=projection)


def _figure_3d(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes3D]:
    if ax is not None and ax.name != "3d":
        raise InvalidInputError(f"ax: pass a 3-D axes (projection='3d'), got a {ax.name!r} one")
    fig, ax = _figure(ax, projection="3d", figsize=figsize)
    return fig, cast("Axes3D", ax)


def _finish(fig: Figure, path: str | Path | None) -> Figure:
    if path is not None:
        fig.savefig(path, dpi=150)
    return fig


def _need_dim(cert: Certificate, d: int, what: str) -> None:
    if cert.dim != d:
        raise InvalidInputError(f"{what} draws {d}-D certificates; this one has dimension "
                                f"{cert.dim} (use a Slice domain to look at a {d}-D section)")


def _need_bounded(cert: Certificate, what: str) -> None:
    if not cert.domain.is_bounded:
        raise InvalidInputError(
            f"{what} draws certificates on a bounded domain; this one is on {cert.domain!r}, "
            "whose regions have rays (certify on a box or polytope that holds what you want "
            "to see, e.g. verify(net, [(-4, 4)] * d), to draw it)")


def _names(cert: Certificate) -> list[str]:
    prefix = "t" if getattr(cert.domain, "kind", "") == "slice" else "x"
    return [f"${prefix}_{i + 1}$" for i in range(cert.dim)]


def region_polygon(cert: Certificate, region: Region) -> list[tuple[Fraction, ...]]:
    """The exact vertices of a 2-D region in counter-clockwise order (sorted by angle)."""
    pts = [cert.vertices[k] for k in region.vertices]
    cx = sum(float(p[0]) for p in pts) / len(pts)
    cy = sum(float(p[1]) for p in pts) / len(pts)
    return sorted(pts, key=lambda p: math.atan2(float(p[1]) - cy, float(p[0]) - cx))


def region_colors(n: int, seed: int = 0) -> np.ndarray:
    """``n`` well-spread RGBA colours (golden-ratio hues, shuffled so neighbours differ)."""
    rng = np.random.default_rng(seed)
    hues = (np.arange(n) * 0.618033988749895) % 1.0
    sat = 0.45 + 0.35 * rng.random(n)
    val = 0.75 + 0.2 * rng.random(n)
    rgb = [colorsys.hsv_to_rgb(h, s, v) for h, s, v in zip(hues, sat, val, strict=True)]
    out = np.ones((n, 4))
    out[:, :3] = np.array(rgb).reshape(n, 3) if n else np.zeros((0, 3))
    return out[rng.permutation(n)] if n else out


def _value(row: Sequence[Fraction], t: Sequence[Fraction]) -> Fraction:
    return sum((a * x for a, x in zip(row[:-1], t, strict=True)), Fraction(0)) + row[-1]


# --------------------------------------------------------------------------------- 2-D map
def _float_segments(segs: list[tuple[tuple[Fraction, ...], tuple[Fraction, ...]]]) -> list:
    return [[(float(p[0]), float(p[1])), (float(q[0]), float(q[1]))] for p, q in segs]


def plot_regions(cert: Certificate, *, color_by: str = "region", output: int = 0, net: Any = None,
                 boundary: bool | None = None, level: Any = None, edges: bool = True,
                 ax: Axes | None = None, path: str | Path | None = None,
                 title: str | None = None) -> Figure:
    """Every region of a 2-D certificate filled in its own colour, with its exact edges.

    ``color_by``: ``"region"`` (one colour each), ``"class"`` (the exact decision regions: each
    region cut where the argmax of its affine outputs changes, see
    :func:`exactrelu.boundary.class_cells`) or ``"output"`` (output ``output`` at the region's
    witness, with a colour bar). ``boundary`` draws the certified decision boundary
    (:func:`exactrelu.decision_boundary`; default: with ``color_by="class"``), ``level`` the
    certified level set ``{output = level}`` (:func:`exactrelu.level_set`). The regions are one
    PolyCollection (gid ``"regions"``; ``"classes"`` for the class cells), the edges one
    LineCollection (gid ``"edges"``), the boundary one LineCollection (gid
    ``"decision_boundary"``), the level set another (gid ``"level_set"``). ``net`` is not needed
    (the certificate holds the exact maps); it is accepted for symmetry with
    :func:`plot_function_1d`.

    >>> import torch, exactrelu
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    >>> cert = exactrelu.verify(net, [(-1, 1), (-1, 1)], progress=False)
    >>> fig = plot_regions(cert)
    >>> len(fig.axes[0].collections[0].get_paths()) == cert.num_regions
    True
    """
    _need_dim(cert, 2, "plot_regions")
    _need_bounded(cert, "plot_regions")
    if color_by not in ("region", "class", "output"):
        raise InvalidInputError(f"color_by={color_by!r}: pass 'region', 'class' or 'output'")
    fig, ax = _figure(ax)
    polys = [[(float(p[0]), float(p[1])) for p in region_polygon(cert, r)] for r in cert.regions]
    n = cert.num_regions
    if color_by == "region":
        colors: Any = region_colors(n)
        coll = PolyCollection(polys, facecolors=colors, edgecolors="none", gid="regions")
    elif color_by == "class":
        from matplotlib import colormaps

        cmap = colormaps["tab10"]
        cells = class_cells(cert)
        coll = PolyCollection([[(float(p[0]), float(p[1])) for p in c.vertices] for c in cells],
                              facecolors=[cmap(c.label % 10) for c in cells], edgecolors="none",
                              alpha=0.55, gid="classes")
        k = len(cert.regions[0].output) if n else 0
        from matplotlib.patches import Patch

        handles = [Patch(color=cmap(c % 10), alpha=0.55, label=f"class {c}") for c in range(k)]
        ax.legend(handles=handles, loc="upper right", fontsize="small", framealpha=0.8)
    else:
        n_out = len(cert.regions[0].output)
        if not 0 <= output < n_out:
            raise InvalidInputError(f"output={output}: the network has {n_out} outputs")
        vals = np.array([float(_value(r.output[output], r.witness)) for r in cert.regions])
        coll = PolyCollection(polys, array=vals, cmap="viridis", edgecolors="none", gid="regions")
        fig.colorbar(coll, ax=ax, label=f"output {output} at the region's witness")
    ax.add_collection(coll)
    if edges and n:
        segs = [[tuple(map(float, cert.vertices[u])), tuple(map(float, cert.vertices[v]))]
                for u, v in cert.edges()]
        ax.add_collection(LineCollection(segs, colors="black", linewidths=0.5, gid="edges"))
    if boundary is None:
        boundary = color_by == "class"
    if boundary and n and len(cert.regions[0].output) >= 2:
        ax.add_collection(LineCollection(_float_segments(decision_boundary(cert).segments()),
                                         colors="crimson", linewidths=2.0, gid="decision_boundary",
                                         label="decision boundary"))
    if level is not None:
        level_segs = _float_segments(level_set(cert, level, output=output).segments())
        ax.add_collection(LineCollection(level_segs,
                                         colors="black", linewidths=1.5, linestyles="dashed",
                                         gid="level_set", label=f"output {output} = {level}"))
    xs = [float(v[0]) for v in cert.domain.vertices()]
    ys = [float(v[1]) for v in cert.domain.vertices()]
    ax.set_xlim(min(xs), max(xs))
    ax.set_ylim(min(ys), max(ys))
    ax.set_aspect("equal", adjustable="box")
    names = _names(cert)
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.set_title(title if title is not None else
                 f"{cert.num_regions} linear regions, {cert.num_pieces} pieces (certified)")
    return _finish(fig, path)


# --------------------------------------------------------------------------------- 1-D
def _first_linear(net: Any) -> Any:
    from torch import nn

    if net is None:
        return None
    layers = (nn.Linear, nn.Conv1d, nn.Conv2d)
    first = next((m for m in net.modules() if isinstance(m, layers)), None)
    return first if isinstance(first, nn.Linear) and first.in_features == 1 else None


def _intervals(cert: Certificate) -> list[tuple[Fraction | None, Region]]:
    """A 1-D certificate's regions with their left ends, left to right (None: the region
    reaches left without end, a ray towards -x or a line; on all of R only the first)."""
    def left(r: Region) -> Fraction | None:
        if r.lines or any(v[0] < 0 for v in r.rays):
            return None
        return min(cert.vertices[k][0] for k in r.vertices)

    ends = [(left(r), r) for r in cert.regions]
    return sorted(ends, key=lambda t: (t[0] is not None, t[0] if t[0] is not None else 0))


def kinks(cert: Certificate, output: int = 0) -> list[Fraction]:
    """Exact positions where the 1-D function (output ``output``) changes slope."""
    _need_dim(cert, 1, "kinks")
    ivs = _intervals(cert)
    out = []
    for (_, r), (lo, s) in itertools.pairwise(ivs):
        if lo is not None and r.output[output][0] != s.output[output][0]:
            out.append(lo)
    return out


def plot_function_1d(cert: Certificate, *, net: Any = None, data: Any = None, truth: Any = None,
                     elbows: bool = True, output: int = 0, ax: Axes | None = None,
                     path: str | Path | None = None, title: str | None = None,
                     ylim: tuple[float, float] | None = None) -> Figure:
    """A 1-D network's function from its certificate, with every certified kink marked.

    ``net``: with a first ``nn.Linear(1, H)`` layer, each hidden unit's elbow ``-b/w`` (grey dot)
    and its ramp ``relu(w x + b)`` (dotted) are drawn, as in the EECS182 "Visualize ReLU" plot.
    ``data``: ``(X, y)`` training points; ``truth``: ``(X, y)`` or a function of ``x``.
    The function is drawn exactly (straight segments between certified vertices); kinks are the
    scatter with gid ``"kinks"``.
    """
    _need_dim(cert, 1, "plot_function_1d")
    _need_bounded(cert, "plot_function_1d")
    fig, ax = _figure(ax, figsize=(8.0, 5.6))
    lo_dom = float(min(v[0] for v in cert.domain.vertices()))
    hi_dom = float(max(v[0] for v in cert.domain.vertices()))
    ys_all: list[float] = []
    xs_line: list[float] = []
    ys_line: list[float] = []
    for lo, r in _intervals(cert):
        assert lo is not None  # a bounded domain (checked above)
        hi = max(cert.vertices[k][0] for k in r.vertices)
        row = r.output[output]
        for x in (lo, hi):
            xs_line.append(float(x))
            ys_line.append(float(row[0] * x + row[1]))
    ax.plot(xs_line, ys_line, "-", color="forestgreen", linewidth=2.0, label="network (exact)",
            zorder=3)
    ys_all += ys_line
    ks = kinks(cert, output)
    kx = [float(k) for k in ks]
    ky = [float(_eval_1d(cert, k, output)) for k in ks]
    ax.scatter(kx, ky, marker="o", s=36, facecolors="white", edgecolors="black", zorder=4,
               label=f"certified kinks ({len(ks)})", gid="kinks")
    if data is not None:
        X, y = (np.asarray(a, dtype=float).ravel() for a in data)
        ax.scatter(X, y, c="darkorange", s=30.0, label="training data", zorder=2)
        ys_all += list(y)
    if truth is not None:
        if callable(truth):
            tx = np.linspace(lo_dom, hi_dom, 400)
            ty = np.asarray(truth(tx), dtype=float).ravel()
        else:
            tx, ty = (np.asarray(a, dtype=float).ravel() for a in truth)
        ax.plot(tx, ty, "--", color="royalblue", linewidth=2.0, label="ground truth", zorder=2)
        ys_all += list(ty)
    first = _first_linear(net) if elbows else None
    if first is not None:
        w = first.weight.detach().double().cpu().numpy().ravel()
        b = (first.bias.detach().double().cpu().numpy().ravel() if first.bias is not None
             else np.zeros_like(w))
        ex, labelled = [], False
        for wi, bi in zip(w, b, strict=True):
            if wi == 0:
                continue
            e = -bi / wi
            xs = [lo_dom, hi_dom] if not lo_dom < e < hi_dom else [lo_dom, e, hi_dom]
            ax.plot(xs, [max(0.0, wi * x + bi) for x in xs], ":", linewidth=1.0, alpha=0.8,
                    label=None if labelled else "hidden-unit ramps", zorder=1)
            labelled = True
            if lo_dom <= e <= hi_dom:
                ex.append(e)
        ax.scatter(ex, [0.0] * len(ex), c="darkgrey", s=40.0, zorder=2, gid="elbows",
                   label=f"first-layer elbows ({len(ex)})")
    if ylim is None and ys_all:
        lo_y, hi_y = min(ys_all), max(ys_all)
        pad = 0.15 * (hi_y - lo_y or 1.0)
        ylim = (min(lo_y, 0.0) - pad, max(hi_y, 0.0) + pad)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_xlim(lo_dom, hi_dom)
    ax.set_xlabel(_names(cert)[0])
    ax.set_ylabel(f"output {output}")
    ax.legend(fontsize="small", loc="best")
    ax.set_title(title if title is not None else
                 f"{cert.num_regions} regions, {len(ks)} kinks (certified)")
    return _finish(fig, path)


def _eval_1d(cert: Certificate, x: Fraction, output: int) -> Fraction:
    for r in cert.regions:
        lo = min(cert.vertices[k][0] for k in r.vertices)
        hi = max(cert.vertices[k][0] for k in r.vertices)
        if lo <= x <= hi:
            row = r.output[output]
            return row[0] * x + row[1]
    raise InvalidInputError(f"{x} is outside the certificate's domain")


# --------------------------------------------------------------------------------- 3-D
def plot_surface(cert: Certificate, *, output: int = 0, ax: Axes | None = None,
                 path: str | Path | None = None, title: str | None = None) -> Figure:
    """Scalar output ``output`` over a 2-D domain: a flat facet per region, region edges on top."""
    from mpl_toolkits.mplot3d.art3d import Line3DCollection, Poly3DCollection

    _need_dim(cert, 2, "plot_surface")
    _need_bounded(cert, "plot_surface")
    fig, ax3 = _figure_3d(ax, figsize=(7.0, 6.0))
    z_at: dict[int, float] = {}
    polys, zs = [], []
    for r in cert.regions:
        row = r.output[output]
        poly = []
        for p in region_polygon(cert, r):
            z = _value(row, p)
            poly.append((float(p[0]), float(p[1]), float(z)))
        for k in r.vertices:
            z_at.setdefault(k, float(_value(row, cert.vertices[k])))
        polys.append(poly)
        zs.append(float(_value(row, r.witness)))
    from matplotlib import colormaps

    zs_arr = np.array(zs) if zs else np.zeros(1)
    norm = (zs_arr - zs_arr.min()) / ((zs_arr.max() - zs_arr.min()) or 1.0)
    faces = Poly3DCollection(polys, facecolors=colormaps["viridis"](norm), edgecolors="none",
                             alpha=0.9, gid="regions")
    ax3.add_collection3d(faces)
    lines = [[(*map(float, cert.vertices[u]), z_at[u]), (*map(float, cert.vertices[v]), z_at[v])]
             for u, v in cert.edges()]
    ax3.add_collection3d(Line3DCollection(lines, colors="black", linewidths=0.6, gid="edges"))
    xs = [float(v[0]) for v in cert.vertices]
    ys = [float(v[1]) for v in cert.vertices]
    zall = list(z_at.values()) or [0.0]
    ax3.set_xlim(min(xs), max(xs))
    ax3.set_ylim(min(ys), max(ys))
    ax3.set_zlim(min(zall), max(zall) + (1e-9 if max(zall) == min(zall) else 0.0))
    names = _names(cert)
    ax3.set_xlabel(names[0])
    ax3.set_ylabel(names[1])
    ax3.set_zlabel(f"output {output}")
    ax3.set_title(title if title is not None else
                 f"output {output} on {cert.num_regions} certified regions")
    return _finish(fig, path)


def region_facets_3d(cert: Certificate, region: Region) -> list[list[tuple[Fraction, ...]]]:
    """The exact boundary polygons of a bounded 3-D region: one per facet, its vertices (the
    complex's vertices on it, a neighbour's included) in cyclic order."""
    from ._geometry import planar_polygon_order

    return [planar_polygon_order([cert.vertices[k] for k in f.vertices], f.a)
            for f in region.facets]


def plot_regions_3d(cert: Certificate, *, regions: Sequence[int] | None = None,
                    explode: float = 0.0, cut: tuple[int, Any] | None = None,
                    alpha: float = 0.45, edges: bool = True, ax: Axes | None = None,
                    path: str | Path | None = None, title: str | None = None,
                    view: tuple[float, float] | None = None) -> Figure:
    """The regions of a bounded 3-D certificate, each drawn as its facets (exact polygons from
    the certified vertices, see :func:`region_facets_3d`) in one colour per region.

    ``regions``: the indices to draw (default all). ``explode``: each region moved away from the
    domain's centre by ``explode`` times its own centre's offset (0 draws the complex as it is;
    0.3 separates the cells). ``cut=(axis, value)`` cuts the complex open: only the regions lying
    where coordinate ``axis`` is at most ``value`` (every vertex, compared exactly) are drawn.
    ``view``: matplotlib's ``(elev, azim)``. The polygons are one ``Poly3DCollection`` (gid
    ``"regions"``), one polygon per facet of each drawn region, region by region in the
    certificate's order until it is drawn (drawing sorts them by depth).

    >>> import torch, exactrelu
    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    >>> cert = exactrelu.verify(net, [(-1, 1)] * 3, progress=False)
    >>> fig = plot_regions_3d(cert, explode=0.2)
    >>> fig.draw_without_rendering()  # projects the polygons (sorted by depth) to paths
    >>> faces = fig.axes[0].collections[0]
    >>> len(faces.get_paths()) == sum(len(r.facets) for r in cert.regions)
    True
    """
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    _need_dim(cert, 3, "plot_regions_3d")
    _need_bounded(cert, "plot_regions_3d")
    if not cert.domain.is_bounded:
        raise InvalidInputError("plot_regions_3d draws bounded regions; this certificate's "
                                "domain is unbounded (certify on a box to draw it)")
    if isinstance(explode, bool) or not isinstance(explode, (int, float)) \
            or not math.isfinite(explode) or explode < 0:
        raise InvalidInputError(f"explode must be a finite number >= 0, got {explode!r}")
    chosen = list(range(cert.num_regions)) if regions is None else list(regions)
    bad = [i for i in chosen if isinstance(i, bool) or not isinstance(i, int)
           or not 0 <= i < cert.num_regions]
    if bad:
        raise InvalidInputError(f"regions: {bad[:5]} are not indices of the certificate's "
                                f"{cert.num_regions} regions")
    if cut is not None:
        from .domain import to_fraction

        axis, value = cut
        if isinstance(axis, bool) or axis not in (0, 1, 2):
            raise InvalidInputError(f"cut=(axis, value): axis must be 0, 1 or 2, got {axis!r}")
        level = to_fraction(value, "cut's value")
        chosen = [i for i in chosen
                  if all(cert.vertices[k][axis] <= level for k in cert.regions[i].vertices)]
    fig, ax3 = _figure_3d(ax, figsize=(7.0, 6.4))
    corners = [[float(c) for c in v] for v in cert.domain.vertices()]
    centre = np.mean(np.array(corners), axis=0)
    colors = region_colors(cert.num_regions)
    polys: list[list[tuple[float, ...]]] = []
    face_colors = []
    for i in chosen:
        r = cert.regions[i]
        shift = np.zeros(3)
        if explode:
            own = np.mean(np.array([[float(c) for c in cert.vertices[k]] for k in r.vertices]),
                          axis=0)
            shift = explode * (own - centre)
        for poly in region_facets_3d(cert, r):
            polys.append([tuple(float(c) + float(s) for c, s in zip(p, shift, strict=True))
                          for p in poly])
            face_colors.append(colors[i])
    faces = Poly3DCollection(polys, facecolors=face_colors, alpha=alpha, gid="regions",
                             edgecolors="black" if edges else "none", linewidths=0.3)
    ax3.add_collection3d(faces)
    lo = np.min(np.array(corners), axis=0)
    hi = np.max(np.array(corners), axis=0)
    pad = explode * (hi - lo) / 2
    ax3.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
    ax3.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
    ax3.set_zlim(lo[2] - pad[2], hi[2] + pad[2])
    ax3.set_box_aspect(tuple(float(x) for x in (hi - lo) + 2 * pad))
    if view is not None:
        ax3.view_init(elev=view[0], azim=view[1])
    names = _names(cert)
    ax3.set_xlabel(names[0])
    ax3.set_ylabel(names[1])
    ax3.set_zlabel(names[2])
    shown = "" if len(chosen) == cert.num_regions else f" ({len(chosen)} drawn)"
    ax3.set_title(title if title is not None else
                 f"{cert.num_regions} linear regions{shown}, {cert.num_pieces} pieces (certified)")
    return _finish(fig, path)


# --------------------------------------------------------------------------------- counts
def plot_counts(epochs: Sequence[float], counts: Sequence[int] | dict[str, Sequence[int]], *,
                ax: Axes | None = None, path: str | Path | None = None,
                ylabel: str = "certified linear regions", title: str | None = None) -> Figure:
    """Region counts against training epochs (``counts``: one series, or a dict of named series).

    >>> fig = plot_counts([0, 1, 2], [10, 14, 19])
    >>> fig.axes[0].lines[0].get_ydata().tolist()
    [10, 14, 19]
    """
    fig, ax = _figure(ax, figsize=(6.4, 4.2))
    series = counts if isinstance(counts, dict) else {"": counts}
    for name, ys in series.items():
        if len(ys) != len(epochs):
            what = f" for {name}" if name else ""
            raise InvalidInputError(f"{len(epochs)} epochs but {len(ys)} counts{what}")
        ax.plot(list(epochs), list(ys), "o-", label=name or None)
    if isinstance(counts, dict):
        ax.legend()
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    return _finish(fig, path)
