"""Hostile input is data, never work: certificates, arguments and the command line.

Every malformed certificate field is a CertificateError naming the field; every bad argument an
InvalidInputError; nothing hangs, nothing exhausts memory, the command line prints no traceback.
Cases that would hang on a regression run in a subprocess with a timeout (a hang fails the test
instead of stalling the suite).
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from fractions import Fraction as F
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn

import exactrelu
from exactrelu import (
    Certificate,
    CertificateError,
    ExactReluError,
    InvalidInputError,
    RegionLimitError,
    Slice,
    UnsupportedModelError,
    VerificationError,
)
from exactrelu.domain import as_domain

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 60  # seconds for a whole subprocess of cases: each should take well under a second


def _net(d: int = 2, hidden: int = 3, out: int = 2, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, out)).eval()


def _slice_net() -> nn.Sequential:
    torch.manual_seed(1)
    return nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 1)).eval()


def _slice() -> Slice:
    e = np.eye(4).reshape(4, 1, 2, 2)
    return Slice.plane(np.zeros((1, 2, 2)), e[0], e[1], bounds=[(-1, 1), (-1, 1)])


@pytest.fixture(scope="module")
def genuine() -> dict[str, tuple[dict, nn.Module]]:
    """Small genuine certificates (box, all of R^2 with rays, a slice) as JSON, with their nets."""
    out = {}
    for name, net, dom in (("box", _net(), [(-1, 1), (-1, 1)]), ("realspace", _net(), None),
                           ("slice", _slice_net(), _slice())):
        cert = exactrelu.verify(net, dom, progress=False)
        out[name] = (json.loads(json.dumps(cert.to_json())), net)
    return out


def _set(doc: Any, path: tuple, value: Any) -> None:
    *head, last = path
    for k in head:
        doc = doc[k]
    if value is _DELETE:
        del doc[last]
    else:
        doc[last] = value


_DELETE = object()

# (where, value, the path the error must name): one field of the box certificate at a time
FIELDS = [
    (("regions", 0, "facets", 0, "a", 1), "1e1000000000", "regions[0].facets[0].a[1]"),
    (("regions", 0, "facets", 0, "a", 1), "0.5", "regions[0].facets[0].a[1]"),
    (("regions", 0, "facets", 0, "a", 1), " 1/2", "regions[0].facets[0].a[1]"),
    (("regions", 0, "facets", 0, "a", 1), "1_000", "regions[0].facets[0].a[1]"),
    (("regions", 0, "facets", 0, "a", 1), "\u0661", "regions[0].facets[0].a[1]"),  # Arabic 1
    (("regions", 0, "facets", 0, "a", 1), "1/-2", "regions[0].facets[0].a[1]"),
    (("regions", 0, "facets", 0, "a", 1), "1/0", "regions[0].facets[0].a[1]"),
    (("regions", 0, "facets", 0, "a", 1), "", "regions[0].facets[0].a[1]"),
    (("regions", 0, "facets", 0, "a", 1), "inf", "regions[0].facets[0].a[1]"),
    (("regions", 0, "facets", 0, "a", 1), 0.5, "regions[0].facets[0].a[1]"),
    (("regions", 0, "facets", 0, "a", 1), True, "regions[0].facets[0].a[1]"),
    (("regions", 0, "facets", 0, "a", 1), None, "regions[0].facets[0].a[1]"),
    (("regions", 0, "facets", 0, "a", 1), ["1"], "regions[0].facets[0].a[1]"),
    (("regions", 0, "facets", 0, "a", 1), "9" * 1_000_001, "regions[0].facets[0].a[1]"),
    (("regions", 0, "facets", 0, "a"), ["1"], "regions[0].facets[0].a"),
    (("regions", 0, "facets", 0, "a"), "1", "regions[0].facets[0].a"),
    (("regions", 0, "facets", 0, "b"), {"p": 1}, "regions[0].facets[0].b"),
    (("regions", 0, "facets", 0, "ids"), [[1]], "regions[0].facets[0].ids[0]"),
    (("regions", 0, "facets", 0, "ids", 0), 10 ** 9, "regions[0].facets[0].ids[0]"),
    (("regions", 0, "facets", 0, "ids", 0), -1, "regions[0].facets[0].ids[0]"),
    (("regions", 0, "facets", 0, "vertices", 0), 10 ** 500, "regions[0].facets[0].vertices[0]"),
    (("regions", 0, "facets", 0, "vertices", 0), False, "regions[0].facets[0].vertices[0]"),
    (("regions", 0, "facets", 0, "rays"), [0], "regions[0].facets[0].rays[0]"),
    (("regions", 0, "facets", 0), [], "regions[0].facets[0]"),
    (("regions", 0, "facets"), {}, "regions[0].facets"),
    (("regions", 0, "vertices", 0), [1], "regions[0].vertices[0]"),
    (("regions", 0, "vertices", 0), True, "regions[0].vertices[0]"),
    (("regions", 0, "vertices", 0), "0", "regions[0].vertices[0]"),
    (("regions", 0, "vertices", 0), 1.0, "regions[0].vertices[0]"),
    (("regions", 0, "witness"), ["1"], "regions[0].witness"),
    (("regions", 0, "witness"), ["0"] * 100_000, "regions[0].witness"),
    (("regions", 0, "witness"), _DELETE, "regions[0].witness"),
    (("regions", 0, "witness", 0), "1e-5", "regions[0].witness[0]"),
    (("regions", 0, "output"), [], "regions[0].output"),
    (("regions", 0, "output", 0), ["1"], "regions[0].output[0]"),
    (("regions", 0, "pattern"), {"0": [1]}, "regions[0].pattern"),
    (("regions", 0, "pattern", 0), [2 ** 40], "regions[0].pattern[0][0]"),
    (("regions", 0, "pattern", 0), [True], "regions[0].pattern[0][0]"),
    (("regions", 0, "volume"), "1.5", "regions[0].volume"),
    (("regions", 0, "volume"), 1.5, "regions[0].volume"),
    (("regions", 0, "repaired"), "no", "regions[0].repaired"),
    (("regions", 0, "rays"), [["1"]], "regions[0].rays[0]"),
    (("regions", 0, "lines"), "x", "regions[0].lines"),
    (("regions", 0), [], "regions[0]"),
    (("regions",), [], "regions"),
    (("regions",), {}, "regions"),
    (("regions",), None, "regions"),
    (("vertices", 0), ["1", "2", "3"], "vertices[0]"),
    (("vertices", 0, 0), "3e3", "vertices[0][0]"),
    (("vertices",), {}, "vertices"),
    (("adjacency", 0, "i"), -1, "adjacency[0].i"),
    (("adjacency", 0, "j"), 10 ** 6, "adjacency[0].j"),
    (("adjacency", 0, "i"), True, "adjacency[0].i"),
    (("adjacency", 0, "a"), [], "adjacency[0].a"),
    (("adjacency", 0, "ids"), [10 ** 18], "adjacency[0].ids[0]"),
    (("adjacency", 0), "0-1", "adjacency[0]"),
    (("pieces",), [0], "pieces"),
    (("pieces", 0), -1, "pieces[0]"),
    (("pieces", 0), "0", "pieces[0]"),
    (("num_regions",), True, "num_regions"),
    (("num_regions",), 10 ** 6, "num_regions"),
    (("num_regions",), "7", "num_regions"),
    (("num_pieces",), 1.0, "num_pieces"),
    (("num_pieces",), 10 ** 6, "num_pieces"),
    (("constraint_offsets",), [4, 2], "constraint_offsets"),
    (("constraint_offsets",), [0, 7], "constraint_offsets"),
    (("constraint_offsets",), [], "constraint_offsets"),
    (("constraint_offsets",), [4, 10 ** 30], "constraint_offsets[1]"),
    (("input_shape",), [100_000_000, 2], "input_shape"),
    (("input_shape",), [3], "input_shape"),
    (("input_shape",), [2, 0], "input_shape[1]"),
    (("input_shape",), [1] * 100 + [2], "input_shape"),
    (("input_shape",), "2", "input_shape"),
    (("output_shape",), [10 ** 9], "output_shape"),
    (("output_shape",), [3], "regions[0].output"),
    (("output_shape",), [True, 2], "output_shape[0]"),
    (("domain",), {"type": "realspace", "dim": 100_000}, "domain.dim"),
    (("domain",), {"type": "realspace", "dim": 2.0}, "domain.dim"),
    (("domain",), {"type": "box", "bounds": [["0", "1"]] * 100_000}, "domain.bounds"),
    (("domain",), {"type": "box", "bounds": [["0", "1"]] * 11}, "domain.bounds"),
    (("domain",), {"type": "box", "bounds": [["1", "0"], ["0", "1"]]}, "domain"),
    (("domain",), {"type": "box", "bounds": [["0", "1e9"], ["0", "1"]]}, "domain.bounds[0][1]"),
    (("domain",), {"type": "box", "bounds": [["0"], ["0", "1"]]}, "domain.bounds[0]"),
    (("domain",), {"type": "box"}, "domain.bounds"),
    (("domain",), {"type": "ball"}, "domain.type"),
    (("domain",), {"type": ["box"]}, "domain.type"),
    (("domain",), [], "domain"),
    (("domain",), {"type": "polytope", "A": [["1", "0"]] * 300, "b": ["1"] * 300}, "domain.A"),
    (("domain",), {"type": "polytope", "A": [["1", "0"]] * 3, "b": ["1"] * 2}, "domain.b"),
    (("domain",), {"type": "polytope", "A": [["1", "0"], ["1"]], "b": ["1"] * 2}, "domain.A[1]"),
    (("domain",), {"type": "polytope", "A": [["1"] * 10] * 30, "b": ["1"] * 30},
     "domain"),  # up to 63,756 vertices by the upper bound theorem
    (("domain",), {"type": "slice", "input_shape": [4096, 4096, 2], "origin": [],
                   "directions": [], "region": {"type": "realspace", "dim": 2}},
     "domain.input_shape"),
    (("domain",), {"type": "slice", "input_shape": [2], "origin": ["0", "0"],
                   "directions": [["1", "0"], ["0", "1"]],
                   "region": {"type": "slice", "input_shape": [2]}}, "domain.region.type"),
    (("format",), "exactrelu-certificate/99", "format"),
    (("format",), _DELETE, "format"),
    (("digest",), 5, "digest"),
    (("digest",), "x" * 100_000, "digest"),
    (("notes",), [1], "notes[0]"),
    (("version",), ["0.1"], "version"),
    (("stats",), [], "stats"),
    (("stats",), {"a": json.loads("[" * 20 + "]" * 20)}, "stats"),
    (("stats",), {"a": 10 ** 1000}, "stats"),
]


@pytest.mark.parametrize("where, value, path", FIELDS,
                         ids=[f"{p}={type(v).__name__}" for _, v, p in FIELDS])
def test_each_malformed_field_is_a_certificate_error_naming_it(genuine, where, value, path):
    doc = copy.deepcopy(genuine["box"][0])
    _set(doc, where, value)
    with pytest.raises(CertificateError) as info:
        Certificate.from_json(doc)
    message = str(info.value)
    assert f": {path}: " in message or message.startswith(f"malformed certificate: {path}"), message
    assert len(message) < 1000  # a reason, not the hostile value echoed back


@pytest.mark.parametrize("doc", [[], {}, None, "x", 3, [{}], True])
def test_any_json_shape_as_the_whole_file(doc):
    with pytest.raises(CertificateError):
        Certificate.from_json(doc)


def test_every_genuine_field_is_needed_and_the_genuine_files_load(genuine):
    # the loader reads back what verify writes, entry by entry ...
    for doc, net in genuine.values():
        back = Certificate.from_json(copy.deepcopy(doc))
        assert json.loads(json.dumps(back.to_json())) == doc
        exactrelu.check(back, net)
    # ... and a missing required field is named
    doc = genuine["box"][0]
    for key in ("format", "digest", "domain", "input_shape", "output_shape", "constraint_offsets",
                "num_regions", "num_pieces", "vertices", "regions", "adjacency", "pieces"):
        broken = {k: v for k, v in doc.items() if k != key}
        with pytest.raises(CertificateError, match=f"{key}: missing"):
            Certificate.from_json(broken)


# --------------------------------------------------------------------------------- files
def _run_cases(script: str, timeout: float = TIMEOUT) -> list[dict]:
    """Run ``script`` (which prints one JSON line per case) in a fresh interpreter."""
    code = textwrap.dedent(script)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=timeout, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    return [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]


def _write_hostile_files(d: Path, base: dict) -> dict[str, str]:
    """name -> a word the error must contain; files written to ``d``."""
    text = json.dumps(base)
    a1 = json.dumps(base["regions"][0]["facets"][0]["a"][1])
    files = {
        "exponent": (text.replace(a1, '"1e1000000000"', 1), "not a rational"),
        "deep_list": ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        "deep_object": ('{"a":' * 100_000 + "1" + "}" * 100_000, "nested too deeply"),
        "deep_in_field": (text.replace('"stats": {', '"stats": {"x": ' + "[" * 50_000 + "]" * 50_000
                                       + ", ", 1), "nested too deeply"),
        "int_5000_digits": (text.replace('"num_regions": ', '"num_regions": ' + "7" * 5000
                                         + ', "x": ', 1), "digits"),
        "number_10mb_string": (text.replace(a1, '"' + "3" * 10_000_000 + '"', 1), "digits"),
        "number_10mb_literal": (text.replace(a1, "3" * 10_000_000, 1), "digits"),
        "float_10mb_literal": (text.replace(a1, "3." + "3" * 10_000_000, 1), "float"),
        "float_huge_exponent": (text.replace(a1, "1e1000000000", 1), "out of range"),
        "nan": (text.replace(a1, "NaN", 1), "NaN"),
        "realspace_100000": (text.replace(json.dumps(base["domain"]),
                                          '{"type": "realspace", "dim": 100000}', 1), "domain.dim"),
        "box_100000": (text.replace(json.dumps(base["domain"]), json.dumps(
            {"type": "box", "bounds": [["0", "1"]] * 100_000}), 1), "domain.bounds"),
        "box_60": (text.replace(json.dumps(base["domain"]), json.dumps(
            {"type": "box", "bounds": [["0", "1"]] * 60}), 1), "domain.bounds"),
        "input_shape": (text.replace('"input_shape": [2]', '"input_shape": [100000000, 2]', 1),
                        "input_shape"),
        "polytope_10d": (text.replace(json.dumps(base["domain"]), json.dumps(
            {"type": "polytope", "b": ["1"] * 40,
             "A": [[str(int(i == j % 10)) for i in range(10)] for j in range(40)]}), 1),
                         "upper bound theorem"),
        "empty_list": ("[]", "expected an object"),
        "empty_object": ("{}", "format: missing"),
        "not_json": ("{'format': 1}", "not JSON"),
        "empty_file": ("", "not JSON"),
    }
    out = {}
    for name, (content, word) in files.items():
        (d / f"{name}.json").write_text(content)
        out[name] = word
    (d / "not_utf8.json").write_bytes(b"\xff\xfe\x00{")
    out["not_utf8"] = "UTF-8"
    (d / "directory.json").mkdir(exist_ok=True)
    out["directory"] = "not a sharded certificate: no manifest.json"
    out["missing"] = "no such file"
    return out


def test_hostile_files_load_as_one_certificate_error_each(genuine, tmp_path):
    words = _write_hostile_files(tmp_path, genuine["box"][0])
    results = _run_cases(f"""
        import json, time
        from exactrelu import Certificate
        for name in {sorted(words)!r}:
            t = time.perf_counter()
            try:
                Certificate.load({str(tmp_path)!r} + "/" + name + ".json")
                got = ("loaded", "")
            except Exception as exc:
                got = (type(exc).__name__, str(exc)[:2000])
            print(json.dumps({{"name": name, "error": got[0], "message": got[1],
                               "seconds": time.perf_counter() - t}}), flush=True)
        """)
    assert sorted(r["name"] for r in results) == sorted(words)
    for r in results:
        assert r["error"] == "CertificateError", r
        assert words[r["name"]] in r["message"], r
        assert len(r["message"]) < 1000, r


# --------------------------------------------------------------------------------- fuzzing
HOSTILE = ["1e1000000000", "1/0", "0.5", " 1", "+3", "-0", "1_0", "\u0661", "", "nan", "Infinity",
           "9" * 5000, "1/" + "3" * 3000, "x" * 1000, 10 ** 600, -1, 2 ** 63, 0, 1, 7, True, False,
           None, [], {}, [[[]]], 1.5, float("nan"), float("inf"),
           {"type": "realspace", "dim": 10 ** 9},
           json.loads("[" * 60 + "]" * 60), ["0", "0"], ["1/3", "-2"], [0, 1]]


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for k, v in enumerate(doc[:3]):  # the first few items of each list: enough shapes
            out += _paths(v, (*prefix, k))
    return out


def _retype(v: Any) -> Any:
    """The same content in another JSON type."""
    if isinstance(v, str):
        return [v]
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, (int, float)):
        return str(v) if not isinstance(v, bool) else [v]
    if isinstance(v, list):
        return {str(k): x for k, x in enumerate(v)}
    if isinstance(v, dict):
        return list(v.values())
    return "null"


@st.composite
def _mutated(draw: Any, genuine: dict) -> tuple[str, dict]:
    name = draw(st.sampled_from(sorted(genuine)))
    doc = copy.deepcopy(genuine[name][0])
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        op = draw(st.sampled_from(["hostile", "delete", "retype", "copy"]))
        parent = doc
        for k in path[:-1]:
            parent = parent[k]
        key = path[-1]
        if op == "delete":
            if isinstance(parent, dict):
                del parent[key]
            else:
                parent.pop(key)
        elif op == "retype":
            parent[key] = _retype(parent[key])
        elif op == "copy":  # a genuine value from elsewhere in the file: right type, wrong place
            other = draw(st.sampled_from(paths))
            src = doc
            for k in other:
                src = src[k]
            parent[key] = copy.deepcopy(src)
        else:
            parent[key] = copy.deepcopy(draw(st.sampled_from(HOSTILE)))
    return name, doc


@settings(max_examples=int(os.environ.get("HOSTILE_FUZZ", "150")))
@given(data=st.data())
def test_fuzzed_certificates_load_or_fail_with_certificate_error(genuine, data):
    name, doc = data.draw(_mutated(genuine))
    try:
        cert = Certificate.from_json(doc)
    except CertificateError:
        return
    if json.loads(json.dumps(cert.to_json())) == genuine[name][0]:
        return  # the mutation did not change what the certificate says (e.g. stats)
    # rejected, or accepted: a certificate the checker accepts says something equivalent
    with contextlib.suppress(CertificateError):
        exactrelu.check(cert, genuine[name][1])


# --------------------------------------------------------------------------------- big numbers
def test_numbers_of_any_size_round_trip(genuine, tmp_path):
    cert = Certificate.from_json(copy.deepcopy(genuine["box"][0]))
    big = F(3 ** 9000 + 1, 2 ** 20000 + 1)  # 4,294 and 6,021 digits
    cert.regions[0].volume = big
    cert.vertices[0] = (F(-(10 ** 5000) - 7, 3), cert.vertices[0][1])
    path = tmp_path / "big.json"
    limit = sys.get_int_max_str_digits()
    try:
        for digits in (limit, 640, 0):  # the interpreter's limit plays no part
            sys.set_int_max_str_digits(digits)
            cert.save(path)
            back = Certificate.load(path)
            assert back.regions[0].volume == big and back.vertices[0] == cert.vertices[0]
            assert back.to_json() == cert.to_json()
        # written in decimal digits, as any other rational (read here with the limit lifted)
        data = json.loads(path.read_text())
        num, den = data["regions"][0]["volume"].split("/")
        assert int(num) == 3 ** 9000 + 1 and int(den) == 2 ** 20000 + 1
    finally:
        sys.set_int_max_str_digits(limit)


def test_a_deep_net_with_huge_exact_numbers_round_trips(tmp_path):
    # 240 LeakyReLU layers: every layer multiplies float64 weights (53-bit mantissas) into the
    # exact output map, whose entries end with thousands of digits
    torch.manual_seed(3)
    layers: list[nn.Module] = []
    for _ in range(240):
        layers += [nn.Linear(2, 2), nn.LeakyReLU(1 / 3)]
    net = nn.Sequential(nn.Linear(1, 2), nn.ReLU(), *layers, nn.Linear(2, 1)).eval()
    cert = exactrelu.verify(net, [(F(-1, 3), F(2, 7))], progress=False)
    bits = max(max(abs(x.numerator).bit_length(), x.denominator.bit_length())
               for r in cert.regions for row in r.output for x in row)
    assert bits * math.log10(2) > 4300  # more digits than Python writes by default
    path = tmp_path / "deep.json"
    cert.save(path)
    back = Certificate.load(path)
    assert back.to_json() == cert.to_json()
    exactrelu.check(back, net)


# --------------------------------------------------------------------------------- arguments
def _hardtanh(lo: float, hi: float) -> nn.Module:
    h = nn.Hardtanh()
    h.min_val, h.max_val = lo, hi  # torch checks only in __init__
    return nn.Sequential(nn.Linear(2, 3), h, nn.Linear(3, 1))


BOX = [(-1, 1), (-1, 1)]
ARGUMENTS = [
    ("workers 0", {"workers": 0}, InvalidInputError, "workers"),
    ("workers -3", {"workers": -3}, InvalidInputError, "workers"),
    ("workers 1.5", {"workers": 1.5}, InvalidInputError, "workers"),
    ("workers True", {"workers": True}, InvalidInputError, "workers"),
    ("workers huge", {"workers": 10 ** 6}, InvalidInputError, "workers"),
    ("workers str", {"workers": "2"}, InvalidInputError, "workers"),
    ("progress yes", {"progress": "yes"}, InvalidInputError, "progress"),
    ("progress 1", {"progress": 1}, InvalidInputError, "progress"),
    ("engine fast", {"engine": "fast"}, InvalidInputError, "engine"),
    ("engine None", {"engine": None}, InvalidInputError, "engine"),
    ("engine list", {"engine": ["python"]}, InvalidInputError, "engine"),
    ("executor int", {"executor": 3}, InvalidInputError, "executor"),
    ("max_regions 0", {"max_regions": 0}, InvalidInputError, "max_regions"),
    ("max_regions -1", {"max_regions": -1}, InvalidInputError, "max_regions"),
    ("max_regions True", {"max_regions": True}, InvalidInputError, "max_regions"),
    ("max_regions 2.0", {"max_regions": 2.0}, InvalidInputError, "max_regions"),
    ("claimed 10**5000", {"claimed": 10 ** 5000}, VerificationError, "about 5,000 digits"),
    ("claimed -1", {"claimed": -1}, InvalidInputError, "claimed"),
    ("claimed str", {"claimed": "7"}, InvalidInputError, "claimed"),
    ("claimed float", {"claimed": 7.0}, InvalidInputError, "claimed"),
    ("claimed bool", {"claimed": True}, InvalidInputError, "claimed"),
    ("claimed dict", {"claimed": {"n": 7}}, InvalidInputError, "claimed"),
    ("claimed short pattern", {"claimed": [[0, 1]]}, InvalidInputError, "pattern 0 has 2 states"),
    ("claimed junk patterns", {"claimed": [["a", "b", "c"]]}, InvalidInputError, "claimed"),
    ("input_shape huge", {"input_shape": (100_000_000, 2)}, InvalidInputError, "input_shape"),
    ("input_shape str", {"input_shape": "2"}, InvalidInputError, "input_shape"),
    ("input_shape zero", {"input_shape": (0,)}, InvalidInputError, "input_shape"),
    ("input_shape float", {"input_shape": (2.0,)}, InvalidInputError, "input_shape"),
    ("input_shape wrong", {"input_shape": (3,)}, InvalidInputError, "input"),
]


@pytest.mark.parametrize("kwargs, error, words", [a[1:] for a in ARGUMENTS],
                         ids=[a[0] for a in ARGUMENTS])
def test_verify_arguments_one_clear_error_each(kwargs, error, words):
    kw = {"progress": False, **kwargs}
    with pytest.raises(error, match=words) as info:
        exactrelu.verify(_net(out=1), BOX, **kw)
    assert len(str(info.value)) < 1000


DOMAINS = [
    ("lo == hi", [(0, 0), (0, 1)], "lo < hi"),
    ("lo > hi", [(1, 0), (0, 1)], "lo < hi"),
    ("nan", [(0, float("nan")), (0, 1)], "NaN"),
    ("inf", [(-math.inf, 0), (0, 1)], "inf"),
    ("huge exponent", [("0", "1e1000000000"), (0, 1)], "exponent"),
    ("huge lo >= hi", [(10 ** 5000, 1), (0, 1)], "about 5,000 digits"),
    ("flat", [0, 1, 0, 1], "flat list"),
    ("triples", [(0, 1, 2), (0, 1, 2)], "exactly"),
    ("wrong dimension", [(0, 1)] * 3, "dimension"),
    ("11-D", [(0, 1)] * 11, "at most 10"),
    ("string", "[-1, 1]", "str"),
]


@pytest.mark.parametrize("domain, words", [d[1:] for d in DOMAINS], ids=[d[0] for d in DOMAINS])
def test_verify_domains_one_clear_error_each(domain, words):
    with pytest.raises(InvalidInputError, match=words):
        exactrelu.verify(_net(out=1), domain, progress=False)


@pytest.mark.parametrize("lo, hi", [(1.0, -1.0), (0.5, 0.5)])
def test_hardtanh_with_min_not_below_max_is_refused(lo, hi):
    with pytest.raises(ExactReluError, match="min_val < max_val"):
        exactrelu.verify(_hardtanh(lo, hi), BOX, progress=False)


@pytest.mark.parametrize("lo, hi", [(-math.inf, 1.0), (-1.0, math.inf), (math.nan, 1.0)])
def test_hardtanh_with_a_bound_not_finite_is_refused(lo, hi):
    with pytest.raises(UnsupportedModelError, match="finite min_val and max_val"):
        exactrelu.verify(_hardtanh(lo, hi), BOX, progress=False)


def test_high_dimensional_inputs_are_refused_before_any_work():
    # each of these hung (vertex enumeration of 2^d corners, d^2 input maps) or took gigabytes
    results = _run_cases("""
        import json, math
        import numpy as np
        import torch
        from torch import nn
        import exactrelu
        from exactrelu.domain import Box, Polytope, RealSpace, to_fraction
        from exactrelu.trace import trace

        def net(d):
            return nn.Sequential(nn.Linear(d, 3), nn.ReLU(), nn.Linear(3, 1))

        cases = {
            "verify 60-D box": lambda: exactrelu.verify(net(60), [(0, 1)] * 60, progress=False),
            "verify 12-D box": lambda: exactrelu.verify(net(12), [(0, 1)] * 12, progress=False),
            "trace 60-D box": lambda: trace(net(60), [(0, 1)] * 60, progress=False),
            "RealSpace 100000": lambda: RealSpace(100_000),
            "Box 100000 bounds": lambda: Box([(0, 1)] * 100_000),
            "Polytope 10-D, 40 rows": lambda: Polytope(
                [[int(i == j % 10) - int(j >= 20) * 2 * int(i == j % 10) for i in range(10)]
                 for j in range(40)], [1] * 40),
            "verify input_shape": lambda: exactrelu.verify(net(2), None, progress=False,
                                                           input_shape=(100_000_000, 2)),
            "to_fraction exponent": lambda: to_fraction("1e1000000000"),
            "bounds exponent": lambda: exactrelu.verify(net(1), [("0", "1e1000000000")],
                                                        progress=False),
        }
        for name, make in cases.items():
            try:
                make()
                got = ("none", "")
            except Exception as exc:
                got = (type(exc).__name__, str(exc)[:500])
            print(json.dumps({"name": name, "error": got[0], "message": got[1]}), flush=True)
        """)
    assert len(results) == 9
    for r in results:
        assert r["error"] == "InvalidInputError", r
    by = {r["name"]: r["message"] for r in results}
    assert "at most 10" in by["verify 60-D box"] and "2^d" in by["verify 60-D box"]
    assert "at most 10" in by["verify 12-D box"] and "at most 10" in by["trace 60-D box"]
    assert "upper bound theorem" in by["Polytope 10-D, 40 rows"]
    assert "exponent" in by["to_fraction exponent"] and "exponent" in by["bounds exponent"]


# ------------------------------------------------------------------------ interrupts and limits
@pytest.mark.parametrize("phase", ["trace", "exact"])
def test_python_engine_is_interruptible(phase):
    # a SIGALRM handler that raises fires within a fraction of a second, in the float trace and
    # in the exact work: no long C call holds the GIL
    from exactrelu.trace import trace

    class Stop(Exception):
        pass

    def raise_stop(signum, frame):
        raise Stop()

    torch.manual_seed(5)
    net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 1))
    tr = trace(net, [(-1, 1)] * 4, progress=False) if phase == "exact" else None
    old = signal.signal(signal.SIGALRM, raise_stop)
    try:
        t0 = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        with pytest.raises(Stop):
            exactrelu.verify(net, [(-1, 1)] * 4, progress=False, engine="python", workers=1,
                             trace=tr)
        elapsed = time.perf_counter() - t0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert elapsed < 2.0  # either phase takes seconds uninterrupted


@pytest.mark.parametrize("engine", ["compiled", "python"])
def test_max_regions_stops_each_engine(engine):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 12), nn.ReLU(), nn.Linear(12, 12), nn.ReLU(), nn.Linear(12, 1))
    full = exactrelu.verify(net, BOX, progress=False, engine=engine)
    n = full.num_regions
    assert n > 20
    # a limit the float trace passes (it stops at twice the limit) but the exact engine does not
    with pytest.raises(RegionLimitError) as info:
        exactrelu.verify(net, BOX, progress=False, engine=engine, max_regions=n - 1)
    assert info.value.found > n - 1 and "float trace" not in str(info.value)  # an exact engine
    assert info.value.found <= n  # a lower bound of the count: never more than there are
    # a limit far below: the trace stops
    with pytest.raises(RegionLimitError) as info:
        exactrelu.verify(net, BOX, progress=False, engine=engine, max_regions=3)
    assert info.value.found > 3 and "float trace" in str(info.value)
    # the exact count passes
    assert exactrelu.verify(net, BOX, progress=False, engine=engine, max_regions=n).num_regions == n


def test_max_regions_bounds_the_work_of_the_exact_engines_themselves():
    # without the float trace's limit in front: each engine stops near the limit, far from the
    # tens of thousands of regions of the whole net (memory stays what that many need)
    from exactrelu import certify
    from exactrelu.capture import capture
    from exactrelu.engines import compiled as compiled_engine

    torch.manual_seed(4)
    net = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                        nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))
    dom = as_domain(BOX)
    prog = capture(net, (2,))
    plan = compiled_engine.plan(prog, dom)
    with pytest.raises(RegionLimitError) as info:
        compiled_engine.certify(prog, dom, plan, None, 2, max_regions=50)
    assert 50 < info.value.found < 2000
    with pytest.raises(RegionLimitError) as info:
        certify.run(prog, dom, None, max_regions=50)
    assert 50 < info.value.found < 2000
    # all of R^2, where there is no float trace at all: the compiled engine makes the first
    # layer's cells at once (64 lines in general position: 1 + 64 + C(64, 2) = 2,081 of them)
    # and stops there
    with pytest.raises(RegionLimitError) as info:
        exactrelu.verify(net, None, progress=False, max_regions=50)
    assert 50 < info.value.found <= 2081


def test_region_limit_error_survives_pickling():
    import pickle

    err = pickle.loads(pickle.dumps(RegionLimitError("more than 5", 6)))
    assert isinstance(err, RegionLimitError) and err.found == 6 and str(err) == "more than 5"


# --------------------------------------------------------------------------------- command line
@pytest.fixture(scope="module")
def cli_files(tmp_path_factory: pytest.TempPathFactory, genuine) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("hostile_cli")
    net = _net()
    torch.jit.script(net).save(str(d / "model.pt"))
    text = json.dumps(genuine["box"][0])
    a1 = json.dumps(genuine["box"][0]["regions"][0]["facets"][0]["a"][1])
    (d / "exponent.json").write_text(text.replace(a1, '"1e1000000000"', 1))
    (d / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (d / "ok.json").write_text(text)
    return {"dir": d, "model": d / "model.pt", "exponent": d / "exponent.json",
            "deep": d / "deep.json", "ok": d / "ok.json"}


def _cli_processes(runs: dict[str, tuple[list[str], str]]) -> Any:
    """Start every command at once (each a fresh interpreter running the console entry, after
    the Python code ``pre``); the function returned waits for all (TIMEOUT each)."""
    procs = {}
    for name, (args, pre) in runs.items():
        code = (pre + "\nimport sys\nfrom exactrelu.cli import console\n"
                + f"sys.argv = ['exactrelu'] + {[str(a) for a in args]!r}\nconsole()\n")
        procs[name] = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True, cwd=ROOT)

    def wait() -> dict[str, subprocess.CompletedProcess]:
        out = {}
        for name, p in procs.items():
            stdout, stderr = p.communicate(timeout=TIMEOUT)
            out[name] = subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr)
        return out

    return wait


def _cli_in_one_process(runs: dict[str, list[str]]) -> dict[str, subprocess.CompletedProcess]:
    """``main(args)`` for every run, in turn, in one fresh interpreter (a hang fails the test);
    a run named "bug" (put it last) replaces verify with a function that raises TypeError."""
    script = f"""
        import io, json, sys
        from exactrelu.cli import main
        for name, args in {list(runs.items())!r}:
            if name == "bug":
                def broken(*a, **k):
                    raise TypeError("simulated bug")
                sys.modules["exactrelu.verify"].verify = broken
            out, err = io.StringIO(), io.StringIO()
            sys.stdout, sys.stderr = out, err
            try:
                rc = main(args)
            finally:
                sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
            print(json.dumps({{"name": name, "rc": rc, "out": out.getvalue(),
                               "err": err.getvalue()}}), flush=True)
        """
    return {r["name"]: subprocess.CompletedProcess([], r["rc"], r["out"], r["err"])
            for r in _run_cases(script)}


def test_command_line_hostile_input_one_line_and_exit_status(cli_files):
    m, box = cli_files["model"], ["--bounds", "-1", "1", "-1", "1"]
    runs = {
        "bounds exponent": ["verify", m, "--bounds", "0", "1e1000000000", "-1", "1"],
        "bounds 60 pairs": ["verify", m, "--bounds"] + ["0", "1"] * 60,
        "input shape": ["verify", m, *box, "--input-shape", "100000000,2"],
        "check exponent": ["check", cli_files["exponent"], "--model", m],
        "check deep": ["check", cli_files["deep"], "--model", m],
        "plot deep": ["plot", cli_files["deep"], "-o", cli_files["dir"] / "x.png"],
        "claimed wrong": ["verify", m, *box, "--claimed", "1", "--quiet"],
        "max regions": ["verify", m, *box, "--max-regions", "2", "--quiet"],
        "bug": ["verify", m, *box, "--quiet"],
    }
    no_module = "import sys\nsys.modules[{!r}] = None"
    missing = {
        "no cdd.gmp": (["verify", m, *box, "--quiet"], no_module.format("cdd.gmp")),
        "no flint": (["check", cli_files["ok"], "--model", m], no_module.format("flint")),
        "no matplotlib": (["verify", m, *box, "--quiet", "--plot", cli_files["dir"] / "p.png"],
                          no_module.format("matplotlib")),
    }
    want = {  # exit status, words of the error line
        "bounds exponent": (2, "exponent"),
        "bounds 60 pairs": (2, "at most 10"),
        "input shape": (2, "--input-shape"),
        "check exponent": (1, "not a rational"),
        "check deep": (1, "nested too deeply"),
        "plot deep": (2, "nested too deeply"),
        "claimed wrong": (1, "claimed region count 1"),
        "max regions": (2, "max_regions=2"),
        "bug": (3, "internal error: TypeError: simulated bug"),
        "no cdd.gmp": (2, "apt-get install libcdd-dev libgmp-dev"),
        "no flint": (2, "pip install python-flint"),
        "no matplotlib": (2, "pip install 'exactrelu[plot]'"),
    }
    waiting = _cli_processes(missing)  # three fresh interpreters, beside the one for the others
    results = _cli_in_one_process({k: [str(a) for a in v] for k, v in runs.items()})
    results.update(waiting())
    assert sorted(results) == sorted(want)
    for name, r in results.items():
        status, words = want[name]
        text = r.stdout + r.stderr
        assert "Traceback" not in text, (name, text[-3000:])
        assert r.returncode == status, (name, r.returncode, text[-2000:])
        assert words in text, (name, text[-2000:])
        if status != 1 or name.startswith("claimed"):  # check's verdict is on stdout
            errors = [ln for ln in r.stderr.splitlines() if ln.startswith("exactrelu: error:")]
            assert len(errors) == 1, (name, r.stderr)
            assert all(ln.startswith(("exactrelu: error:", "  ")) for ln in r.stderr.splitlines()
                       if ln.strip()), (name, r.stderr)
        else:
            assert r.stdout.startswith("FAILED: "), (name, r.stdout)
    assert not (cli_files["dir"] / "x.png").exists()


def test_help_documents_the_exit_codes(capsys):
    from exactrelu.cli import main

    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for line in ("0    success", "1    the certificate or claim does not hold",
                 "2    usage or input error", "130  interrupted"):
        assert line in out


def test_a_stopped_pool_leaves_no_resource_sharer_traceback(monkeypatch):
    """After verify stops its process pool, what multiprocessing's resource sharer reports
    through sys.excepthook (the other side gone in its handshake) goes nowhere near stderr; any
    other exception still reaches the hook that was there."""
    from exactrelu.engines import python as engine

    seen: list[BaseException] = []
    monkeypatch.setattr(sys, "excepthook", lambda kind, value, tb: seen.append(value))
    engine._quiet_resource_sharer()
    engine._quiet_resource_sharer()  # installed once
    # _serve's own handler, as CPython writes it: sys.excepthook(*sys.exc_info())
    sharer = compile("import sys\n"
                     "def _serve():\n"
                     "    try:\n"
                     "        raise ConnectionResetError('handshake')\n"
                     "    except Exception:\n"
                     "        sys.excepthook(*sys.exc_info())\n",
                     os.path.join("lib", "multiprocessing", "resource_sharer.py"), "exec")
    space: dict[str, Any] = {}
    exec(sharer, space)
    space["_serve"]()
    try:
        raise ValueError("a real error")
    except ValueError:
        sys.excepthook(*sys.exc_info())
    assert [type(e) for e in seen] == [ValueError]


def _wait_mapped(p: subprocess.Popen, name: str, timeout: float = 60.0) -> None:
    """Wait until the running process ``p`` has a file whose path holds ``name`` mapped (read
    from /proc every millisecond)."""
    maps = Path(f"/proc/{p.pid}/maps")
    deadline = time.monotonic() + timeout
    while name not in maps.read_text():
        assert p.poll() is None, "the command ended before it imported numpy"
        assert time.monotonic() < deadline, f"{name} not mapped after {timeout} s"
        time.sleep(0.001)


def test_ctrl_c_exits_130_at_once(cli_files, tmp_path):
    # a run of a minute or more (the Python engine, whose process pool certifies a 4-D net slowly),
    # interrupted after it started (and once while it loads): the whole process group gets
    # SIGINT, as from a terminal; verify's worker processes stay quiet
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 20), nn.ReLU(), nn.Linear(20, 20), nn.ReLU(),
                        nn.Linear(20, 20), nn.ReLU(), nn.Linear(20, 1)).eval()
    torch.jit.script(net).save(str(tmp_path / "m4.pt"))
    # the waits count from the moment numpy's library is mapped: the package imports it right
    # after it set the command's handler (exactrelu._command), and torch after it, so the first
    # ones land while torch is imported; a fixed wait from the start could land in the
    # interpreter's own start-up on a loaded machine, before any code of the package runs
    for wait in (0.0, 0.1, 0.25, 0.55, 0.95, 6.0):
        args = ["verify", str(tmp_path / "m4.pt"), "--bounds"] + ["-1", "1"] * 4 + \
            ["--quiet", "--engine", "python"]
        p = subprocess.Popen([sys.executable, "-m", "exactrelu.cli", *args], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd=ROOT, start_new_session=True)
        _wait_mapped(p, "_multiarray_umath")
        time.sleep(wait)
        t0 = time.perf_counter()
        os.killpg(p.pid, signal.SIGINT)
        try:
            _out, err = p.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            raise
        seconds = time.perf_counter() - t0
        assert p.returncode == 130, (wait, p.returncode, err[-2000:])
        assert err.strip() == "exactrelu: interrupted", (wait, err[-4000:])
        assert seconds < 20
