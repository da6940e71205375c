"""``Certificate.load`` of JSON reads the long lists straight into columns
(:mod:`exactrelu._jsoncolumns`): the certificate is columnar, as ``verify`` returns it, and says
exactly what the object reader (``Certificate.from_json``) makes of the same JSON; ``check``
reads its columns; anything the columnar reader does not take is read as objects, so that a
malformed file is the same :class:`~exactrelu.errors.CertificateError` naming the same field,
and a tampered one is rejected by ``check`` with the same message."""

from __future__ import annotations

import copy
import gzip
import json
import os
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st
from torch import nn

import exactrelu
from exactrelu import Certificate, CertificateError, _columns, certificate
from exactrelu.engines import canonical

from test_columnar import CASES
from test_hostile import FIELDS, HOSTILE, _paths, _set

CHECK = sys.modules["exactrelu.check"]  # the module (exactrelu.check is the function)


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> tuple[str, nn.Module, Certificate]:
    net, dom = CASES[request.param]()
    return request.param, net, exactrelu.verify(net, dom, progress=False, workers=1)


def is_columnar(cert: Certificate) -> bool:
    """Are the certificate's sequences views of one Complex, unchanged (what ``check``'s
    columnar path takes)?"""
    regions, vertices, adjacency = cert.regions, cert.vertices, cert.adjacency
    return (type(regions) is _columns.Regions and type(vertices) is _columns.Vertices
            and type(adjacency) is _columns.Adjacencies and vertices.cx is regions.cx
            and adjacency.cx is regions.cx and regions.pristine() and vertices.pristine()
            and adjacency.pristine())


def same_as_objects(cert: Certificate, objects: Certificate) -> None:
    assert list(cert.regions) == list(objects.regions)
    assert list(cert.vertices) == list(objects.vertices)
    assert list(cert.adjacency) == list(objects.adjacency)
    assert list(cert.pieces) == list(objects.pieces)
    assert cert.to_json() == objects.to_json()


def both_readers(doc: Any) -> tuple[Any, Any]:
    """What the columnar and the object reader make of ``doc`` (a certificate, or the message
    of the CertificateError raised)."""
    out = []
    for columns in (True, False):
        try:
            out.append(certificate._certificate(copy.deepcopy(doc), columns=columns))
        except CertificateError as exc:
            out.append(str(exc))
    return out[0], out[1]


def test_a_loaded_certificate_is_columnar_and_what_was_saved(
        case: tuple[str, nn.Module, Certificate], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Plain and gzip: the loaded certificate is columnar, its canonical form and JSON are the
    certificate's, its items the object reader's, and ``check`` accepts it reading its columns
    (never turning objects into columns)."""
    _, net, cert = case
    doc = cert.to_json()
    objects = Certificate.from_json(copy.deepcopy(doc))
    assert isinstance(objects.regions, list)
    for file in ("c.json", "c.json.gz"):
        cert.save(tmp_path / file, progress=False)
        back = Certificate.load(tmp_path / file)
        assert is_columnar(back), file
        assert canonical(back) == canonical(cert)
        same_as_objects(back, objects)
        assert back.regions[-1] == objects.regions[-1] and back.regions[0:2] == objects.regions[0:2]
    # written again from its columns: the same bytes, and the same certificate as Parquet
    back.save(tmp_path / "d.json", progress=False)
    assert (tmp_path / "d.json").read_bytes() == (tmp_path / "c.json").read_bytes()
    back.save(tmp_path / "d.parquet", shard_rows=7, progress=False)
    assert Certificate.load(tmp_path / "d.parquet").to_json() == doc

    def no_objects(*args: Any) -> Any:
        raise AssertionError("the loaded certificate's objects were turned into columns")

    monkeypatch.setattr(CHECK, "_object_source", no_objects)
    back = Certificate.load(tmp_path / "c.json")
    assert exactrelu.check(back, net, progress=False) is back
    assert is_columnar(back)


def test_non_canonical_texts_are_read_as_the_object_reader_reads_them(tmp_path: Path) -> None:
    """Rationals not in lowest terms, with a plus sign, leading zeros or a signed zero are in
    the grammar: read into columns, to the values the object reader gives."""
    net, dom = CASES["2d"]()
    cert = exactrelu.verify(net, dom, progress=False)
    doc = cert.to_json()
    r = doc["regions"][3]

    def scaled(s: str, k: int) -> str:
        x = Fraction(s)
        return f"{x.numerator * k}/{x.denominator * k}"

    r["witness"][0] = scaled(r["witness"][0], 6)
    r["facets"][0]["b"] = scaled(r["facets"][0]["b"], 3)
    out = r["output"][0][0]
    r["output"][0][0] = "-00" + out[1:] if out.startswith("-") else "+" + out
    r["volume"] = "000" + r["volume"]  # a volume is positive
    doc["vertices"][0] = ["-0", "+000"] if doc["vertices"][0] == ["0", "0"] else \
        [scaled(x, 10 ** 3) for x in doc["vertices"][0]]
    doc["adjacency"][0]["b"] = scaled(doc["adjacency"][0]["b"], 2 ** 70)
    path = tmp_path / "c.json"
    path.write_text(json.dumps(doc))
    back = Certificate.load(path)
    assert is_columnar(back)
    same_as_objects(back, Certificate.from_json(doc))
    assert canonical(back) == canonical(cert)  # the same numbers, written otherwise
    exactrelu.check(back, net, progress=False)


def test_valid_forms_outside_the_columns_are_read_as_objects(tmp_path: Path) -> None:
    """A rational written as a JSON integer, an op whose width differs from region to region,
    numbers of more than 600 digits: the certificate the object reader makes (lists of
    objects where the columnar reader declined, columns for long numbers)."""
    net, dom = CASES["2d"]()
    cert = exactrelu.verify(net, dom, progress=False)
    base = cert.to_json()
    corner = next(k for k, v in enumerate(base["vertices"]) if all("/" not in x for x in v))
    changes = [
        (lambda doc: doc["vertices"][corner].__setitem__(0, int(doc["vertices"][corner][0])),
         False),
        (lambda doc: doc["regions"][2]["pattern"][0].append(0), False),
        (lambda doc: doc["regions"][1].__setitem__("volume", "1" + "0" * 700 + "/" + "3" * 650),
         True),
    ]
    for n, (change, columnar) in enumerate(changes):
        doc = copy.deepcopy(base)
        change(doc)
        path = tmp_path / f"c{n}.json"
        path.write_text(json.dumps(doc))
        back = Certificate.load(path)
        assert is_columnar(back) == columnar, n
        assert columnar or isinstance(back.regions, list)
        same_as_objects(back, Certificate.from_json(doc))


TEXTS = ["2/4", "1/+2", "1/-2", "3/", "/3", "1/2/3", "+-1", "--1", "1 ", " 1", "\n1", "1\n",
         "1\t", "0x1", "1e3", "1_0", "\u0663", "\u0967", "\uff11", "", "-", "+", "/", "1/0",
         "0/5", "-0/7", "007/014", "+12/-0", "9" * 601, "-" + "7" * 700 + "/" + "3" * 600,
         "1/" + "0" * 700, "1.5", "½", "¹", "1//2", "1/2 ", "1/٢"]
SPOTS = [("vertices", 1, 0), ("regions", 2, "witness", 1), ("regions", 0, "output", 0, 2),
         ("regions", 1, "facets", 0, "a", 0), ("regions", 1, "facets", 1, "b"),
         ("regions", 0, "volume"), ("adjacency", 0, "a", 1), ("adjacency", 1, "b")]


@pytest.mark.parametrize("text", TEXTS, ids=[repr(t)[:20] for t in TEXTS])
def test_each_text_is_read_as_the_object_reader_reads_it(text: str, box_doc: dict) -> None:
    """A rational's text in each place the columns hold rationals: the same certificate or the
    same error naming the same field."""
    for spot in SPOTS:
        doc = copy.deepcopy(box_doc)
        _set(doc, spot, text)
        col, obj = both_readers(doc)
        if isinstance(obj, str):
            assert col == obj, spot
        else:
            assert not isinstance(col, str), (spot, col)
            same_as_objects(col, obj)


@pytest.fixture(scope="module")
def box_doc() -> dict:
    net, dom = CASES["2d"]()
    return exactrelu.verify(net, dom, progress=False).to_json()


@pytest.fixture(scope="module")
def docs() -> dict[str, tuple[dict, nn.Module]]:
    """Genuine certificates as JSON: a box, all of R^2 (rays), lines, three states per unit."""
    out = {}
    for name in ("2d", "r2", "r2-lines", "hardtanh"):
        net, dom = CASES[name]()
        out[name] = (exactrelu.verify(net, dom, progress=False).to_json(), net)
    return out


@pytest.mark.parametrize("where, value, path", FIELDS,
                         ids=[f"{p}={type(v).__name__}" for _, v, p in FIELDS])
def test_a_malformed_file_is_the_object_readers_error(docs: dict, where: tuple, value: Any,
                                                      path: str, tmp_path: Path) -> None:
    """Each malformed field of tests/test_hostile.py, written to a file: ``load`` raises the
    error ``from_json`` raises, naming the field."""
    doc = copy.deepcopy(docs["2d"][0])
    _set(doc, where, value)
    with pytest.raises(CertificateError) as want:
        Certificate.from_json(copy.deepcopy(doc))
    file = tmp_path / "c.json.gz"
    with gzip.open(file, "wt") as f:
        json.dump(doc, f)
    with pytest.raises(CertificateError) as got:
        Certificate.load(file)
    assert str(got.value) == str(want.value)
    assert path in str(got.value)


@settings(max_examples=int(os.environ.get("HOSTILE_FUZZ", "150")))
@given(data=st.data())
def test_fuzzed_json_is_read_as_the_object_reader_reads_it(docs: dict, data: Any) -> None:
    """One to three values anywhere in a genuine certificate replaced (by a hostile value, a
    genuine value from elsewhere, a deletion or a text of :data:`TEXTS`): the columnar reader
    gives the object reader's certificate or its error, message for message."""
    doc = copy.deepcopy(docs[data.draw(st.sampled_from(sorted(docs)))][0])
    for _ in range(data.draw(st.integers(1, 3))):
        paths = _paths(doc)
        path = data.draw(st.sampled_from(paths))
        parent = doc
        for k in path[:-1]:
            parent = parent[k]
        op = data.draw(st.sampled_from(["hostile", "text", "delete", "copy"]))
        if op == "delete":
            del parent[path[-1]]
        elif op == "copy":
            src = doc
            for k in data.draw(st.sampled_from(paths)):
                src = src[k]
            parent[path[-1]] = copy.deepcopy(src)
        else:
            pool = HOSTILE if op == "hostile" else TEXTS
            parent[path[-1]] = copy.deepcopy(data.draw(st.sampled_from(pool)))
    col, obj = both_readers(doc)
    if isinstance(obj, str):
        assert col == obj
    else:
        assert not isinstance(col, str), col
        same_as_objects(col, obj)


def tamper(doc: dict, name: str) -> None:
    """A claim of ``doc`` made false, every value still well-formed."""
    r = doc["regions"][len(doc["regions"]) // 2]
    if name == "vertex":
        doc["vertices"][2][0] = str(Fraction(doc["vertices"][2][0]) + Fraction(1, 7))
    elif name == "witness":
        r["witness"][0] = str(Fraction(r["witness"][0]) + 5)
    elif name == "output":
        r["output"][0][-1] = str(Fraction(r["output"][0][-1]) + Fraction(1, 3))
    elif name == "facet b":
        r["facets"][0]["b"] = str(Fraction(r["facets"][0]["b"]) + Fraction(1, 9))
    elif name == "facet vertices":
        r["facets"][0]["vertices"] = r["facets"][0]["vertices"][:-1]
    elif name == "pattern":
        r["pattern"][-1][0] = 1 - r["pattern"][-1][0]
    elif name == "volume":
        r["volume"] = str(Fraction(r["volume"]) * 2) if r["volume"] is not None else "1"
    elif name == "pair":
        doc["adjacency"][0]["b"] = str(Fraction(doc["adjacency"][0]["b"]) + 1)
    elif name == "pieces":
        doc["pieces"] = [0] * len(doc["pieces"])  # one linear piece
        doc["num_pieces"] = 1
    elif name == "rays":
        rays = next(x for x in doc["regions"] if x["rays"])["rays"]
        rays[0] = [str(Fraction(c) * 2 + 1) for c in rays[0]]


_TAMPERED = ["vertex", "witness", "output", "facet b", "facet vertices", "pattern", "volume",
             "pair", "pieces"]


@pytest.mark.parametrize("domain, name", [(dom, name) for dom in ("2d", "r2") for name in _TAMPERED]
                         + [("r2", "rays")])  # rays only on R^2
def test_a_tampered_file_loads_as_columns_and_check_rejects_it_as_objects(
        docs: dict, domain: str, name: str, tmp_path: Path) -> None:
    """A false claim in well-formed JSON: the loaded certificate is columnar, and ``check``
    rejects it with the message it gives for the object reader's certificate (the Python
    pass's, which names the false claim)."""
    doc, net = docs[domain]
    doc = copy.deepcopy(doc)
    tamper(doc, name)
    path = tmp_path / "c.json"
    path.write_text(json.dumps(doc))
    back = Certificate.load(path)
    assert is_columnar(back)
    with pytest.raises(CertificateError) as want:
        exactrelu.check(Certificate.from_json(copy.deepcopy(doc)), net, progress=False)
    with pytest.raises(CertificateError) as got:
        exactrelu.check(back, net, progress=False)
    assert str(got.value) == str(want.value)


def test_an_equal_value_of_another_type_set_in_a_view_is_a_change(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``True`` where a view had ``1``, ``Fraction(1)`` where it had the int ``1``: equal, yet
    a change that ``check`` sees, in the window of kept views and after leaving it (compared
    with a fresh view, types too); the Python pass then names it."""
    net, dom = CASES["2d"]()
    cert = exactrelu.verify(net, dom, progress=False)
    k = next(i for i, r in enumerate(cert.regions) if 1 in r.pattern[0])
    monkeypatch.setattr(_columns.Regions, "keep", 2)
    changes = [lambda r: r.pattern[0].__setitem__(r.pattern[0].index(1), True),
               lambda r: r.vertices.__setitem__(0, Fraction(r.vertices[0])),
               lambda r: r.facets[0].__setattr__("b", float(r.facets[0].b))]
    for n, change in enumerate(changes):
        for leave in (False, True):
            cert = exactrelu.verify(net, dom, progress=False)
            change(cert.regions[k])
            if leave:  # out of the window of kept views
                cert.regions[k + 1], cert.regions[k + 2]
            assert not cert.regions.pristine(), (n, leave)
            with pytest.raises(CertificateError):
                exactrelu.check(cert, net, progress=False)
