"""The exactrelu command line end to end: verify, check, trace, plot, and every bad input."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from exactrelu.cli import main


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 6), nn.ReLU(), nn.Linear(6, 2)).eval()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("cli")
    net = _net()
    torch.jit.script(net).save(str(d / "model.pt"))
    torch.save(net.state_dict(), d / "weights.pt")
    (d / "clinet_factory.py").write_text(
        "from torch import nn\n\n"
        "def build():\n"
        "    return nn.Sequential(nn.Linear(2, 6), nn.ReLU(), nn.Linear(6, 2))\n")
    for i in range(3):
        torch.save(torch.randn(2), d / f"x{i}.pt")
    torch.save({"not": "a tensor"}, d / "dict.pt")
    (d / "garbage.pt").write_bytes(b"not a model")
    return {"dir": d, "model": d / "model.pt", "weights": d / "weights.pt"}


def _run(args: list, capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def test_verify_writes_certificate_and_picture(files, capsys):
    cert, png = files["dir"] / "c.json", files["dir"] / "c.png"
    rc, out, err = _run(["verify", files["model"], "--bounds", -1, 1, -1, 1, "-o", cert, "--plot",
                         png, "--workers", 1, "--quiet"], capsys)
    assert rc == 0, err
    assert out.startswith("certified: ") and "regions" in out and "pieces" in out \
        and "vertices" in out
    assert json.loads(cert.read_text())["num_regions"] > 1
    assert png.stat().st_size > 1000


def test_engines_give_the_same_certificate(files, capsys):
    out = {}
    for engine in ("compiled", "python"):
        path = files["dir"] / f"{engine}.json"
        rc, _, err = _run(["verify", files["model"], "--bounds", -1, 1, -1, 1, "-o", path,
                           "--engine", engine, "--workers", 1, "--quiet"], capsys)
        assert rc == 0, err
        data = json.loads(path.read_text())
        assert data["stats"].pop("engine") == engine
        for key in ("seconds", "compiled_ms", "compiled_limbs"):
            data["stats"].pop(key, None)
        out[engine] = data
    assert out["compiled"] == out["python"]


def test_check_ok_and_tampered(files, capsys):
    cert = files["dir"] / "ok.json"
    assert _run(["verify", files["model"], "--bounds", -1, 1, -1, 1, "-o", cert, "--quiet"],
                capsys)[0] == 0
    rc, out, _ = _run(["check", cert, "--model", files["model"]], capsys)
    assert rc == 0 and out.startswith("OK")
    data = json.loads(cert.read_text())
    w = data["regions"][0]["witness"]
    data["regions"][0]["witness"] = [w[0], "1000"]
    bad = files["dir"] / "tampered.json"
    bad.write_text(json.dumps(data))
    rc, out, err = _run(["check", bad, "--model", files["model"]], capsys)
    assert rc == 1 and out.startswith("FAILED") and "Traceback" not in out + err


def test_check_requires_the_domain_given(files, capsys):
    cert = files["dir"] / "domain.json"
    rc, _, _ = _run(["verify", files["model"], "--bounds", -1, 1, -1, 1, "-o", cert, "--quiet"],
                    capsys)
    assert rc == 0
    check = ["check", cert, "--model", files["model"]]
    rc, out, _ = _run([*check, "--bounds", "-1", "1", "-1", "1"], capsys)
    assert rc == 0 and out.startswith("OK")
    # a valid certificate about another domain than the one the reader asks about does not hold
    rc, out, _ = _run([*check, "--bounds", "-1", "1", "-1", "2"], capsys)
    assert rc == 1 and out.startswith("FAILED") and "domain" in out
    d = files["dir"]
    rc, out, _ = _run([*check, "--line", d / "x0.pt", d / "x1.pt"], capsys)
    assert rc == 1 and "domain" in out


def test_factory_with_weights_and_plane(files, capsys, monkeypatch):
    monkeypatch.chdir(files["dir"])
    rc, out, err = _run(["verify", "clinet_factory:build", "--weights", files["weights"],
                         "--bounds", -1, 1, -1, 1, "--quiet"], capsys)
    assert rc == 0, err
    _rc2, out2, _ = _run(["verify", files["model"], "--bounds", -1, 1, -1, 1, "--quiet"], capsys)
    assert out.split(" in ")[0] == out2.split(" in ")[0]  # same network, same counts
    d = files["dir"]
    rc, out, err = _run(["verify", files["model"], "--plane", d / "x0.pt", d / "x1.pt",
                         d / "x2.pt", "--quiet"], capsys)
    assert rc == 0, err
    rc, out, err = _run(["verify", files["model"], "--line", d / "x0.pt", d / "x1.pt", "--bounds",
                         -1, 2, "--quiet", "--plot", d / "line.png"], capsys)
    assert rc == 0, err
    assert (d / "line.png").stat().st_size > 0


def test_plot_command(files, capsys):
    cert = files["dir"] / "p.json"
    _run(["verify", files["model"], "--bounds", -1, 1, -1, 1, "-o", cert, "--quiet"], capsys)
    rc, _out, err = _run(["plot", cert, "-o", files["dir"] / "p.png", "--color-by", "class"],
                         capsys)
    assert rc == 0, err
    assert (files["dir"] / "p.png").stat().st_size > 1000


def test_trace_command(files, capsys):
    rc, out, err = _run(["trace", files["model"], "--bounds", -1, 1, -1, 1, "--quiet"], capsys)
    if rc != 0:  # the float tracer is optional while it is being written
        assert err.startswith("exactrelu: error: the float tracer")
    else:
        assert "regions" in out


BAD = [
    ["verify", "{model}", "--bounds", "-1", "1", "-1"],  # odd count
    ["verify", "{model}", "--bounds", "1", "-1", "-1", "1"],  # lo >= hi
    ["verify", "{model}", "--bounds", "a", "1", "-1", "1"],  # not a number
    ["verify", "{model}", "--bounds", "0", "1"],  # wrong dimension
    ["verify", "{model}"],  # no domain
    ["verify", "{dir}/nope.pt", "--bounds", "0", "1", "0", "1"],  # missing file
    ["verify", "{dir}/garbage.pt", "--bounds", "0", "1", "0", "1"],  # not TorchScript
    ["verify", "{model}", "--plane", "{dir}/x0.pt", "{dir}/x1.pt", "{dir}/dict.pt"],  # not a tensor
    # degenerate plane
    ["verify", "{model}", "--plane", "{dir}/x0.pt", "{dir}/x0.pt", "{dir}/x1.pt"],
    ["verify", "clinet_factory:build", "--bounds", "0", "1", "0", "1"],  # factory without weights
    ["verify", "no_such_module_xyz:build", "--weights", "{dir}/weights.pt", "--bounds", "0", "1",
     "0", "1"],
    ["verify", "clinet_factory:build", "--weights", "{dir}/dict.pt", "--bounds", "0", "1", "0",
     "1"],
    ["verify", "{model}", "--bounds", "0", "1", "0", "1", "--workers", "0"],
    ["verify", "{model}", "--bounds", "0", "1", "0", "1", "--engine", "fast"],  # no such engine
    ["verify", "{model}", "--line", "{dir}/x0.pt", "{dir}/x1.pt", "--engine", "compiled"],  # 1-D
    ["check", "{dir}/nope.json", "--model", "{model}"],
    ["plot", "{dir}/nope.json", "-o", "{dir}/x.png"],
    ["frobnicate"],
    [],
]


@pytest.mark.parametrize("args", BAD, ids=[" ".join(a[:1] + a[2:4]) or "empty" for a in BAD])
def test_bad_input_gives_one_error_line(files, capsys, monkeypatch, args):
    monkeypatch.chdir(files["dir"])
    rc, out, err = _run([a.format(model=files["model"], dir=files["dir"]) for a in args], capsys)
    assert rc == 2
    lines = [ln for ln in err.splitlines() if ln.startswith("exactrelu: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err + out


def test_console_entry_via_subprocess(files):
    r = subprocess.run([sys.executable, "-m", "exactrelu.cli", "verify", str(files["model"]),
                        "--bounds", "-1/2", "1/2", "-1", "1", "--quiet"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("certified: ")
    r = subprocess.run([sys.executable, "-m", "exactrelu.cli", "verify", "missing.pt", "--bounds",
                        "0", "1"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("exactrelu: error:") \
        and "Traceback" not in r.stderr


def test_json_summary_parses_and_matches_the_certificate(files, capsys):
    from exactrelu.certificate import Certificate
    from exactrelu.domain import read_json

    path = files["dir"] / "summary.json"
    rc, out, err = _run(["verify", files["model"], "--bounds", -1, 1, -1, 1, "-o", path,
                         "--workers", 1, "--json"], capsys)
    assert rc == 0, err
    summary = json.loads(out)  # one object, nothing else on stdout
    cert = Certificate.load(path)
    assert summary["ok"] is True and summary["failed"] is None and summary["command"] == "verify"
    assert (summary["regions"], summary["pieces"], summary["vertices"],
            summary["adjacent_pairs"]) == (cert.num_regions, cert.num_pieces, cert.num_vertices,
                                           len(cert.adjacency))
    assert summary["regions"] > 1 and summary["certificate"] == str(path)
    assert read_json(summary["domain"]) == cert.domain and summary["engine"] == "compiled"
    assert summary["seconds"] >= 0 and summary["claimed"] is None

    rc, out, _ = _run(["check", path, "--model", files["model"], "--json"], capsys)
    checked = json.loads(out)
    assert rc == 0 and checked["ok"] is True and checked["command"] == "check"
    assert checked["regions"] == cert.num_regions and checked["certificate"] == str(path)

    wrong = cert.num_regions + 1
    rc, out, err = _run(["verify", files["model"], "--bounds", -1, 1, -1, 1, "--workers", 1,
                         "--json", "--claimed", wrong], capsys)
    failed = json.loads(out)
    assert rc == 1 and failed["ok"] is False and failed["claimed"] == wrong
    assert failed["regions"] == cert.num_regions
    assert f"claimed region count {wrong}" in failed["failed"]
    assert err == ""

    data = json.loads(path.read_text())
    data["num_regions"] += 1
    bad = files["dir"] / "summary-bad.json"
    bad.write_text(json.dumps(data))
    rc, out, _ = _run(["check", bad, "--model", files["model"], "--json"], capsys)
    refused = json.loads(out)
    assert rc == 1 and refused["ok"] is False and "num_regions" in refused["failed"]

    rc, out, err = _run(["verify", files["dir"] / "nothing.pt", "--bounds", 0, 1, "--json"], capsys)
    error = json.loads(out)
    assert rc == 2 and error["exit_status"] == 2 and error["ok"] is False
    assert error["failed"] in err and "nothing.pt" in error["failed"]


def test_an_interrupt_wrapped_by_a_library_is_an_interrupt(monkeypatch, capsys):
    """Ctrl-C turned into another error by C++ code (the interrupt as its cause or context, even
    suppressed) exits 130 with the one line, as a plain KeyboardInterrupt does; other errors
    do not."""
    import exactrelu.cli as cli

    def wrapped(args):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise RuntimeError("interrupted in C++") from exc

    def context(args):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise RuntimeError("while handling it") from None

    def plain(args):
        raise RuntimeError("no interrupt")

    for func, status in ((wrapped, 130), (context, 130), (plain, 2)):
        monkeypatch.setattr(cli, "_cmd_trace", func)
        assert main(["trace", "m.pt", "--bounds", "0", "1"]) == status
        err = capsys.readouterr().err
        assert ("exactrelu: interrupted" in err) == (status == 130), err
