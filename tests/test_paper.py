"""What a paper takes from a certificate: per-region tables (CSV, DataFrame), LaTeX tables of
counts, compressed certificates, 3-D pictures, and the top-level ``exactrelu.trace``."""

import csv
import doctest
import gzip
import math
import subprocess
import sys
import time
import zlib
from collections import Counter
from fractions import Fraction
from pathlib import Path

import matplotlib
import pytest
import torch
from torch import nn

import exactrelu
from exactrelu import CertificateError, InvalidInputError, MissingDependencyError
from exactrelu.analysis import region_statistics
from exactrelu.certificate import GZIP_MAX_RATIO, Certificate
from exactrelu.export import latex_table, pattern_text, region_table

matplotlib.use("Agg")
ROOT = Path(__file__).resolve().parent.parent
F = Fraction


def _net(rows: list[list[float]], bias: list[float], out: list[float]) -> nn.Sequential:
    net = nn.Sequential(nn.Linear(len(rows[0]), len(rows)), nn.ReLU(), nn.Linear(len(rows), 1))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor(rows))
        net[0].bias.copy_(torch.tensor(bias))
        net[2].weight.copy_(torch.tensor([out]))
        net[2].bias.zero_()
    return net.eval()


@pytest.fixture(scope="module")
def rectangles() -> Certificate:
    """relu(x1) + relu(x2 - 1/4) on [-1, 1] x [0, 1]: four rectangles of width 1, two of height
    1/4 (below x2 = 1/4) and two of height 3/4, four different affine maps."""
    return exactrelu.verify(_net([[1.0, 0.0], [0.0, 1.0]], [0.0, -0.25], [1.0, 1.0]),
                            [(-1, 1), (0, 1)], progress=False)


def _expected(height: Fraction) -> dict:
    """The statistics of a 1 x ``height`` rectangle (height < 1), by hand."""
    return {"volume": height, "num_vertices": 4, "num_facets": 4,
            "diameter_sq": 1 + height ** 2, "inradius_inf": height / 2,
            "inradius_lo": height / 2, "inradius_hi": height / 2,
            "eccentricity_sq": (1 + height ** 2) / height ** 2}


# --------------------------------------------------------------------------------- tables
def test_region_table_matches_hand_computed_rectangles(rectangles: Certificate) -> None:
    table = region_table(rectangles)
    assert list(table) == [
        "region", "piece", "pattern", "volume", "volume_exact", "num_vertices", "num_facets",
        "diameter_sq", "diameter_sq_exact", "diameter", "inradius_inf", "inradius_inf_exact",
        "inradius_lo", "inradius_lo_exact", "inradius_hi", "inradius_hi_exact",
        "eccentricity_sq", "eccentricity_sq_exact", "eccentricity"]
    assert table["region"] == list(range(4)) and rectangles.num_regions == 4
    assert sorted(table["piece"]) == [0, 1, 2, 3] and table["piece"] == rectangles.pieces
    for k, r in enumerate(rectangles.regions):
        x1, x2 = r.witness
        height = F(1, 4) if x2 < F(1, 4) else F(3, 4)
        # ReLU off at a tie: the state is 1 exactly where the unit is positive
        assert table["pattern"][k] == f"{int(x1 > 0)},{int(x2 > F(1, 4))}"
        for name, value in _expected(height).items():
            if isinstance(value, int):
                assert table[name][k] == value, name
            else:
                assert table[name + "_exact"][k] == (f"{value.numerator}/{value.denominator}"
                                                     if value.denominator != 1
                                                     else str(value.numerator)), name
                assert table[name][k] == value.numerator / value.denominator, name
        assert table["diameter"][k] == math.sqrt(1 + height ** 2)
        assert table["eccentricity"][k] == pytest.approx(math.sqrt(1 + 1 / height ** 2),
                                                         rel=1e-15)


def test_pattern_text_separates_ops_and_states() -> None:
    assert pattern_text([[1, 0, 12], [], [-1]]) == "1,0,12||-1"
    text = pattern_text([[1, 0, 12], [], [-1]])
    assert [[int(s) for s in op.split(",") if s] for op in text.split("|")] == [[1, 0, 12], [],
                                                                                [-1]]


def test_csv_round_trips_exact_rationals(tmp_path: Path) -> None:
    torch.manual_seed(7)
    net = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    cert = exactrelu.verify(net, [(-1, 1), ("-1/3", 1)], progress=False)
    path = tmp_path / "regions.csv"
    cert.to_csv(path)
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    stats = region_statistics(cert)
    assert len(rows) == cert.num_regions > 10
    assert sum(F(row["volume_exact"]) for row in rows) == F(2) * F(4, 3)  # the box's area
    for row, r in zip(rows, cert.regions, strict=True):
        assert int(row["region"]) == r.index
        assert int(row["piece"]) == cert.pieces[r.index]
        assert [[int(s) for s in op.split(",") if s] for op in row["pattern"].split("|")] == \
            r.pattern
        for name in ("volume", "diameter_sq", "inradius_inf", "inradius_lo", "inradius_hi",
                     "eccentricity_sq"):
            exact = getattr(stats, name)[r.index]
            assert F(row[name + "_exact"]) == exact, name
            assert float(row[name]) == float(exact), name
        assert int(row["num_facets"]) == len(r.facets)
    # some of these rationals are far from short decimals: the exact column is what round-trips
    assert any(F(row["volume_exact"]).denominator > 10 ** 6 for row in rows)


def test_csv_leaves_missing_values_empty(tmp_path: Path) -> None:
    cert = exactrelu.verify(_net([[1.0, 0.0]], [0.0], [1.0]), None, progress=False)
    cert.to_csv(tmp_path / "r.csv")
    with open(tmp_path / "r.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2
    assert all(row["volume"] == row["volume_exact"] == row["diameter"] == "" for row in rows)
    assert all(int(row["num_facets"]) == 1 for row in rows)


def test_dataframe_has_the_tables_columns_and_values(rectangles: Certificate) -> None:
    pandas = pytest.importorskip("pandas")
    df = rectangles.to_dataframe()
    table = region_table(rectangles)
    assert isinstance(df, pandas.DataFrame) and list(df.columns) == list(table)
    assert len(df) == 4
    assert df["volume"].sum() == 2.0
    assert [F(v) for v in df["volume_exact"]] == [r.volume for r in rectangles.regions]
    assert df["num_vertices"].dtype.kind == "i" and df["volume"].dtype.kind == "f"
    assert list(df["pattern"]) == table["pattern"]


def test_dataframe_without_pandas_names_the_paper_extra(rectangles: Certificate,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'exactrelu\[paper\]'"):
        rectangles.to_dataframe()


def test_latex_table_structure(rectangles: Certificate) -> None:
    other = exactrelu.verify(_net([[1.0, 0.0]], [0.0], [1.0]), [(-1, 1), (0, 1)],
                             progress=False)
    other.stats["seconds"]["total"] = 1234.5678
    del rectangles.stats["seconds"]
    text = latex_table([rectangles, other], names=["rect_4 & co", "half%"])
    assert text == "\n".join([
        r"\begin{tabular}{lrrrrr}",
        r"\toprule",
        r"network & regions & pieces & vertices & adjacent pairs & seconds \\",
        r"\midrule",
        r"rect\_4 \& co & 4 & 4 & 9 & 4 & -- \\",
        r"half\% & 2 & 2 & 6 & 1 & 1{,}234.57 \\",
        r"\bottomrule",
        r"\end{tabular}"])
    assert exactrelu.latex_table([other], columns=("dimension",), name_header="net",
                                 digits=0).splitlines()[2:5] == [
        r"net & dimension \\", r"\midrule", r"1 & 2 \\"]


@pytest.mark.parametrize("kwargs, message", [
    ({"names": ["a", "b"]}, "2 names for 1 certificates"),
    ({"columns": ("regions", "edges")}, "unknown column"),
    ({"digits": -1}, "digits must be"),
])
def test_latex_table_refuses_bad_arguments(rectangles: Certificate, kwargs: dict,
                                           message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        latex_table([rectangles], **kwargs)


def test_docstring_examples_run() -> None:
    import exactrelu.export

    result = doctest.testmod(exactrelu.export, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


# --------------------------------------------------------------------------------- gzip
def test_gzip_certificate_round_trips_and_is_detected_by_its_bytes(rectangles: Certificate,
                                                                    tmp_path: Path) -> None:
    plain, packed = tmp_path / "c.cert.json", tmp_path / "c.cert.json.gz"
    rectangles.save(plain)
    rectangles.save(packed)
    assert packed.read_bytes()[:2] == b"\x1f\x8b"
    assert gzip.decompress(packed.read_bytes()) == plain.read_bytes()
    back = Certificate.load(packed)
    assert back.to_json() == rectangles.to_json()
    renamed = tmp_path / "no-suffix.json"  # the magic bytes decide, not the name
    renamed.write_bytes(packed.read_bytes())
    assert Certificate.load(renamed).to_json() == rectangles.to_json()
    exactrelu.check(Certificate.load(renamed), _net([[1.0, 0.0], [0.0, 1.0]], [0.0, -0.25],
                                                     [1.0, 1.0]))
    rectangles.save(tmp_path / "again.gz")  # the same bytes: no time stamp
    assert (tmp_path / "again.gz").read_bytes() == packed.read_bytes()


def test_gzip_bomb_is_refused_at_once(tmp_path: Path) -> None:
    member = gzip.compress(bytes(1 << 20), compresslevel=9)  # 1 MiB of zeros in ~1 KB
    bomb = tmp_path / "bomb.cert.json.gz"
    bomb.write_bytes(member * 1024)  # a GiB once decompressed
    t0 = time.perf_counter()
    with pytest.raises(CertificateError, match="gzip bomb") as err:
        Certificate.load(bomb)
    assert time.perf_counter() - t0 < 1.0
    assert f"{GZIP_MAX_RATIO} times" in str(err.value)
    co = zlib.compressobj(9, zlib.DEFLATED, 31)  # one member of 64 MiB
    one = co.compress(bytes(64 << 20)) + co.flush()
    bomb.write_bytes(one)
    t0 = time.perf_counter()
    with pytest.raises(CertificateError, match="gzip bomb"):
        Certificate.load(bomb)
    assert time.perf_counter() - t0 < 1.0


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[: len(b) // 2], "truncated"),
    (lambda b: b[:10] + bytes(len(b) - 10), "corrupt gzip data"),
    (lambda b: b + b"trailing", "after the gzip stream"),
])
def test_damaged_gzip_is_one_certificate_error(rectangles: Certificate, tmp_path: Path,
                                               damage, message: str) -> None:
    path = tmp_path / "c.json.gz"
    rectangles.save(path)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(CertificateError, match=message):
        Certificate.load(path)


def test_gzip_of_something_else_is_a_certificate_error(tmp_path: Path) -> None:
    path = tmp_path / "c.json.gz"
    path.write_bytes(gzip.compress(b"[1, 2]") + gzip.compress(b""))
    with pytest.raises(CertificateError, match="malformed certificate"):
        Certificate.load(path)
    path.write_bytes(gzip.compress(b"\xff\xfe"))
    with pytest.raises(CertificateError, match="not UTF-8"):
        Certificate.load(path)


def test_command_line_writes_checks_and_plots_gzip(tmp_path: Path) -> None:
    net = _net([[1.0, 0.0, 0.0], [0.0, 1.0, -1.0]], [0.0, 0.25], [1.0, -1.0])
    model = tmp_path / "m.pt"
    torch.jit.script(net).save(str(model))
    cert = tmp_path / "m.cert.json.gz"

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "exactrelu.cli", *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)

    made = run("verify", str(model), "--bounds", "-1", "1", "-1", "1", "-1", "1", "-o",
               str(cert), "--quiet")
    assert made.returncode == 0, made.stderr
    assert cert.read_bytes()[:2] == b"\x1f\x8b"
    assert Certificate.load(cert).num_regions == 4
    checked = run("check", str(cert), "--model", str(model))
    assert checked.returncode == 0 and checked.stdout.startswith("OK: 4 regions"), checked.stdout
    png = tmp_path / "m.png"
    drawn = run("plot", str(cert), "-o", str(png))
    assert drawn.returncode == 0, drawn.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    refused = run("plot", str(cert), "-o", str(png), "--color-by", "class")
    assert refused.returncode == 2 and "colour by region" in refused.stderr


# --------------------------------------------------------------------------------- 3-D
def test_plot_regions_3d_draws_every_facet_of_every_region(tmp_path: Path) -> None:
    from exactrelu.plot import plot_regions_3d, region_colors

    torch.manual_seed(2)
    net = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 1))
    cert = exactrelu.verify(net, [(-1, 1)] * 3, progress=False)
    assert cert.num_regions > 5
    fig = plot_regions_3d(cert, explode=0.3)
    [faces] = [c for c in fig.axes[0].collections if c.get_gid() == "regions"]
    n_facets = sum(len(r.facets) for r in cert.regions)
    colours = region_colors(cert.num_regions)
    expected = [tuple(colours[r.index][:3]) for r in cert.regions for _ in r.facets]
    assert len(set(expected)) == cert.num_regions  # one colour each: the counts say whose face
    fig.savefig(tmp_path / "r.png")  # drawing projects the polygons, sorted by depth
    assert len(faces.get_paths()) == n_facets
    assert Counter(tuple(c[:3]) for c in faces.get_facecolor()) == Counter(expected)
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
    # each facet polygon is the facet's own vertices, in a cyclic (convex, simple) order
    from exactrelu.plot import region_facets_3d
    for r in cert.regions:
        for f, poly in zip(r.facets, region_facets_3d(cert, r), strict=True):
            assert sorted(poly) == sorted({cert.vertices[k] for k in f.vertices})
            assert all(sum(a * x for a, x in zip(f.a, p, strict=True)) == f.b for p in poly)
            n = len(poly)
            turns = [_cross_dot(poly[i], poly[(i + 1) % n], poly[(i + 2) % n], f.a)
                     for i in range(n)]
            assert all(t > 0 for t in turns) or all(t < 0 for t in turns)
    below = [r for r in cert.regions if all(cert.vertices[k][0] <= 0 for k in r.vertices)]
    cut = plot_regions_3d(cert, cut=(0, 0))
    cut.draw_without_rendering()
    assert 0 < len(below) < cert.num_regions
    assert len(cut.axes[0].collections[0].get_paths()) == sum(len(r.facets) for r in below)
    some = plot_regions_3d(cert, regions=[0, 2])
    some.draw_without_rendering()
    assert len(some.axes[0].collections[0].get_paths()) == \
        len(cert.regions[0].facets) + len(cert.regions[2].facets)


def _cross_dot(p: tuple, q: tuple, r: tuple, normal: tuple) -> Fraction:
    """((q - p) x (r - q)) . normal: its sign is the turn at q seen along the normal."""
    u = [b - a for a, b in zip(p, q, strict=True)]
    v = [b - a for a, b in zip(q, r, strict=True)]
    cross = (u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0])
    return sum((c * n for c, n in zip(cross, normal, strict=True)), Fraction(0))


@pytest.mark.parametrize("kwargs, message", [
    ({"explode": -1.0}, "explode must be"),
    ({"regions": [99]}, "are not indices"),
    ({"cut": (3, 0)}, "axis must be 0, 1 or 2"),
])
def test_plot_regions_3d_refuses_bad_arguments(kwargs: dict, message: str) -> None:
    from exactrelu.plot import plot_regions_3d

    cert = exactrelu.verify(_net([[1.0, 0.0, 0.0]], [0.0], [1.0]), [(-1, 1)] * 3,
                            progress=False)
    with pytest.raises(InvalidInputError, match=message):
        plot_regions_3d(cert, **kwargs)
    with pytest.raises(InvalidInputError, match="draws 3-D certificates"):
        plot_regions_3d(exactrelu.verify(_net([[1.0, 0.0]], [0.0], [1.0]), [(-1, 1)] * 2,
                                         progress=False))


# --------------------------------------------------------------------------------- trace
def test_trace_is_callable_from_the_top_level_and_still_the_module() -> None:
    import exactrelu.trace as module
    from exactrelu.trace import Trace, trace

    net = _net([[1.0, 0.0], [0.0, 1.0]], [0.0, -0.25], [1.0, 1.0])
    tr = exactrelu.trace(net, [(-1, 1), (0, 1)], progress=False)
    assert isinstance(tr, Trace) and tr.num_regions == 4
    assert module is exactrelu.trace and exactrelu.trace.Trace is Trace
    assert exactrelu.trace.trace is trace
    assert "trace" in exactrelu.__all__
    import inspect
    assert "max_regions" in inspect.signature(exactrelu.trace).parameters


def test_regions_3d_example_draws_its_certified_net(tmp_path: Path) -> None:
    import os
    import re

    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "regions_3d.py"), "--fast",
                           "--out", str(tmp_path)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = re.search(r"certified: (\d+) regions", proc.stdout)
    assert found is not None, proc.stdout
    torch.manual_seed(5)
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    assert int(found.group(1)) == exactrelu.verify(net, [(-1, 1)] * 3,
                                                   progress=False).num_regions
    assert (tmp_path / "regions_3d.png").read_bytes()[:4] == b"\x89PNG"
