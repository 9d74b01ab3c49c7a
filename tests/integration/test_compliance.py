# SPDX-License-Identifier: Apache-2.0
"""Compliance (issue 10): controls evaluated live from policy packs, signed reports an auditor
verifies offline with `difyguard report verify`, CSV and HTML renderings of the same results
(the HTML rendered by headless Chromium), scheduled runs audited and exported as metrics,
operator packs and parameter overrides, and the auditor's walk-through: pull the report, verify
it, export the trail, verify the export against the report's heads (an export cut back to an
earlier checkpoint fails)."""
import base64
import datetime
import json
import os
import re
import shutil
import stat
import struct
import subprocess
import time

import pytest

import conftest
from conftest import expect, new_text, poll_until, run_cli, uniq

DOMAIN = b"difyguard-compliance-report-v1\n"
PACKS = {"baseline", "pci-dss-4.0", "soc2", "iso27001-2022", "mlps-2.0"}
RESULTS = ("pass", "fail", "not_applicable", "manual")


# ----------------------------------------------------------------------------------------------
# helpers

def report(api, **params):
    r = api.get("/v1/compliance/report", params=params or None)
    expect(r, 200)
    return r


def signed_report(api, pack=None):
    """The JSON report's exact bytes and its parsed body."""
    r = report(api, **({"pack": pack} if pack else {}))
    assert r.headers["Content-Type"].split(";")[0] == "application/json"
    raw = r.content
    assert raw.startswith(b'{"report":') and raw.endswith(b"}\n"), raw[:80]
    return raw, json.loads(raw)["report"]


def report_bytes(api, path):
    r = api.get(path)
    expect(r, 200)
    return r.content


def save(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data if isinstance(data, bytes) else data.encode())
    return str(p)


def report_verify(path, *keys, json_out=False):
    args = ["report", "verify", path]
    for k in keys:
        args += ["--public-key", k]
    if json_out:
        args.append("--json")
    return run_cli(args)


def controls(body):
    """{(pack, control): result} of a report body."""
    return {(p["id"], c["id"]): c["result"] for p in body["packs"] for c in p["controls"]}


def metric_lines(srv, name):
    return [l for l in srv.client().get("/metrics").text.splitlines() if l.startswith(name + "{")]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A server with a keyring that never rotates, an app with no key (two failing controls),
    an app with a key, and a compliance reader."""
    conftest.require_binary()
    dd = conftest.DataDir(tmp_path_factory.mktemp("compliance"))
    srv = conftest.Server(dd.path, admin_key=dd.admin_key)
    srv.datadir = dd
    srv.start()
    w = type("World", (), {})()
    w.srv = srv
    w.kr = srv.create_keyring(rotation_period=0)
    w.lonely = uniq("nokey")
    expect(srv.admin.post("/v1/apps", {"name": w.lonely}), 201)
    w.api, _ = srv.issue_key(["encrypt", "decrypt"], keyrings=[w.kr])
    w.api.encrypt(w.kr, text=new_text("compliance"))
    w.reader, _ = srv.issue_key(["compliance:read"])
    w.auditor, _ = srv.issue_key(["audit:read"])
    yield w
    srv.stop()


# ----------------------------------------------------------------------------------------------
# the signed report

def test_report_verifies_offline_with_the_public_key_file(world, tmp_path):
    raw, body = signed_report(world.reader)
    assert {p["id"] for p in body["packs"]} == PACKS
    assert body["service"]["name"] == "difyguard" and body["service"]["version"]
    got = controls(body)
    assert got[("baseline", "key-rotation-policy")] == "fail"
    assert got[("baseline", "app-own-key")] == "fail"
    assert got[("baseline", "root-key-protection")] == "pass"
    assert got[("pci-dss-4.0", "pci-3.7.6-split-knowledge")] == "manual"
    assert got[("baseline", "cert-expiry")] == "not_applicable"   # no certificate inventory
    fail = next(c for p in body["packs"] if p["id"] == "baseline" for c in p["controls"]
                if c["id"] == "app-own-key")
    assert any(e["subject"] == f"app {world.lonely}" and not e["ok"] for e in fail["evidence"])
    # the evidence never holds a key's secret (conftest scans logs; here the report itself)
    for k in (world.api.token, world.reader.token, world.srv.admin_key):
        assert k.encode() not in raw and k[20:63].encode() not in raw
    keys = expect(world.reader.get("/v1/compliance/public-key"), 200)
    kpath = save(tmp_path, "keys.json", json.dumps(keys))
    rpath = save(tmp_path, "report.json", raw)
    proc = report_verify(rpath, f"@{kpath}")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"verified: report signed by key {keys['keys'][0]['key_id']}")
    proc = report_verify(rpath, keys["keys"][0]["public_key"], json_out=True)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["controls"] == body["summary"]["controls"] == len(got)
    for r in RESULTS:
        assert out[r] == body["summary"][r] == sum(1 for v in got.values() if v == r)
    assert out["heads"] == body["audit_heads"] and out["heads"], out


def test_any_changed_byte_a_removed_control_or_another_key_fails(world, tmp_path):
    from nacl.signing import SigningKey
    raw, body = signed_report(world.reader, pack="pci-dss-4.0")
    pk = expect(world.reader.get("/v1/compliance/public-key"), 200)["keys"][0]["public_key"]
    # flipped bytes all over the file, the signature member included (report_test.c flips
    # every byte in process; this runs the command on a spread of them)
    step = max(1, len(raw) // 120)
    for i in list(range(0, len(raw), step)) + list(range(len(raw) - 110, len(raw))):
        bad = bytearray(raw)
        bad[i] ^= 0x01
        proc = report_verify(save(tmp_path, "flip.json", bytes(bad)), pk)
        assert proc.returncode == 1, f"byte {i} flipped still verifies"
    # a control removed (still a well-formed report)
    text = raw.decode()
    m = re.search(r'\{"id":"pci-3\.7\.6-split-knowledge".*?"evaluated_at":"[^"]+"\},', text)
    assert m, "control not found"
    proc = report_verify(save(tmp_path, "cut.json", text[:m.start()] + text[m.end():]), pk)
    assert proc.returncode == 1 and "altered" in proc.stderr, proc.stderr
    # the documented format, re-signed with another key: verifies with that key only
    other = SigningKey.generate()
    start, end = len(b'{"report":'), raw.rindex(b',"signature":')
    rbody = raw[start:end]
    sig = other.sign(DOMAIN + rbody).signature
    kid = __import__("hashlib").sha256(bytes(other.verify_key)).hexdigest()[:16]
    forged = (b'{"report":' + rbody + b',"signature":{"algorithm":"ed25519","key_id":"'
              + kid.encode() + b'","sig":"' + base64.b64encode(sig) + b'"}}\n')
    fpath = save(tmp_path, "forged.json", forged)
    proc = report_verify(fpath, pk)
    assert proc.returncode == 1 and "not one of the given public keys" in proc.stderr
    assert report_verify(fpath, base64.b64encode(bytes(other.verify_key)).decode()).returncode == 0
    # ... and the service's key id on another key's signature
    own = json.loads(raw)["signature"]["key_id"]
    proc = report_verify(save(tmp_path, "claimed.json", forged.replace(kid.encode(),
                                                                       own.encode())), pk)
    assert proc.returncode == 1 and "altered" in proc.stderr, proc.stderr
    assert report_verify(save(tmp_path, "ok.json", raw), pk).returncode == 0


def test_report_verify_usage(world, tmp_path):
    raw, _ = signed_report(world.reader, pack="baseline")
    path = save(tmp_path, "r.json", raw)
    assert run_cli(["report", "verify", path]).returncode == 2
    assert run_cli(["report", "verify", "--public-key", "abc", path]).returncode == 2
    assert run_cli(["report", "verify", str(tmp_path / "missing.json"), "--public-key",
                    base64.b64encode(bytes(32)).decode()]).returncode == 1
    proc = run_cli(["report", "verify", "--help"])
    assert proc.returncode == 0 and "--public-key" in proc.stdout
    assert run_cli(["report"]).returncode == 2
    assert "report verify" in run_cli(["--help"]).stdout


def test_csv_and_html_carry_the_same_results(world):
    _, body = signed_report(world.reader)
    want = controls(body)
    csv = report(world.reader, format="csv")
    assert csv.headers["Content-Type"].startswith("text/csv")
    import csv as csvmod
    import io
    rows = list(csvmod.DictReader(io.StringIO(csv.content.decode())))
    assert {(r["pack"], r["control"]): r["result"] for r in rows} == want
    html = report(world.reader, format="html").content.decode()
    for (pack, ctl), result in want.items():
        assert f'<div class="control r-{result}" id="{pack}--{ctl}">' in html, (pack, ctl)
    one = report(world.reader, pack="soc2", format="csv").content.decode().splitlines()
    assert len(one) == 1 + sum(1 for p, _ in want if p == "soc2")


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", head[16:24])


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.fail("headless Chromium is needed to check the HTML report (scripts/deps.sh "
                "installs Debian's chromium)")


def test_html_renders_in_headless_chromium(world, tmp_path):
    """One self-contained page: no script, no external asset; rendered by Chromium to a PNG
    (non-trivial), and the failing controls are in the rendered text."""
    html = report(world.reader, format="html").content
    text = html.decode()
    assert "<script" not in text and " src=" not in text and "href=" not in text
    page = save(tmp_path, "report.html", html)
    png = str(tmp_path / "report.png")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             f"--user-data-dir={tmp_path / 'chromium'}"]
    subprocess.run([chromium()] + flags + [f"--screenshot={png}", "--window-size=1280,2000",
                                           f"file://{page}"],
                   capture_output=True, timeout=180, check=False)
    assert os.path.exists(png), "chromium wrote no screenshot"
    w, h = png_size(png)
    assert (w, h) == (1280, 2000) and os.path.getsize(png) > 20000, (w, h, os.path.getsize(png))
    dom = subprocess.run([chromium()] + flags + ["--dump-dom", f"file://{page}"],
                         capture_output=True, timeout=180, check=False).stdout.decode()
    visible = re.sub(r"<[^>]+>", " ", dom)
    assert "Every keyring rotates automatically, at least yearly" in visible
    assert "Every app has an API key of its own" in visible
    assert f"app {world.lonely}" in visible
    first_fail, first_pass = dom.find('r-fail"'), dom.find('r-pass"')
    assert 0 <= first_fail < first_pass, "failing controls come first"


def test_bad_requests(world):
    expect(world.reader.get("/v1/compliance/report", params={"pack": "nope"}), 404, "not_found")
    expect(world.reader.get("/v1/compliance/report", params={"format": "pdf"}), 400,
           "invalid_request")
    expect(world.reader.get("/v1/compliance/report", params={"pack": "Bad Pack"}), 400,
           "invalid_request")
    expect(world.api.get("/v1/compliance/report"), 403, "forbidden")


def test_the_report_request_is_audited_with_its_counts(world):
    _, body = signed_report(world.reader, pack="baseline")
    ev = poll_until(lambda: expect(world.auditor.get("/v1/audit/events", params={
        "op": "compliance.report", "limit": 1000}), 200)["events"], what="report event")
    last = ev[0]                      # newest first
    assert last["status"] == 200 and last["items"]["total"] == body["summary"]["controls"]
    assert last["items"]["ok"] == body["summary"]["pass"]
    assert last["items"]["failed"] == body["summary"]["fail"]


def test_root_key_mode_is_read_live(world):
    path = world.srv.datadir.root_key
    os.chmod(path, 0o640)
    try:
        _, body = signed_report(world.reader, pack="baseline")
        c = next(c for c in body["packs"][0]["controls"] if c["id"] == "root-key-protection")
        assert c["result"] == "fail" and "0640" in c["evidence"][0]["detail"], c
    finally:
        os.chmod(path, 0o600)
    _, body = signed_report(world.reader, pack="baseline")
    assert controls(body)[("baseline", "root-key-protection")] == "pass"


# ----------------------------------------------------------------------------------------------
# scheduled runs, metrics

def test_scheduled_runs_are_audited_and_exported_as_metrics(start_server):
    srv = start_server(args=["--compliance-interval", "1s"])
    auditor, _ = srv.issue_key(["audit:read"])

    def runs():
        evs = expect(auditor.get("/v1/audit/events", params={"op": "compliance.run",
                                                              "limit": 1000}), 200)["events"]
        return evs if len(evs) >= 2 else None

    evs = poll_until(runs, deadline=60, what="two scheduled compliance runs")
    for e in evs:
        assert e["method"] == "SYSTEM" and e["route"] == "janitor" and e["status"] == 200, e
        assert e["items"]["total"] > 0 and e["app"] is None, e
    status = metric_lines(srv, "difyguard_compliance_control_status")
    per = {}
    for line in status:
        labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
        assert set(labels) == {"pack", "control", "result"}, line
        assert labels["result"] in RESULTS and labels["pack"] in PACKS, line
        per.setdefault((labels["pack"], labels["control"]), []).append(float(line.split()[-1]))
    assert len(status) == 4 * len(per) and len(per) == evs[0]["items"]["total"]
    assert all(sorted(v) == [0, 0, 0, 1] for v in per.values()), "one current result each"
    counts = metric_lines(srv, "difyguard_compliance_controls")
    assert len(counts) == 4 * len(PACKS)
    text = srv.client().get("/metrics").text
    assert re.search(r"^difyguard_compliance_runs_total [1-9]", text, re.M)
    assert re.search(r"^difyguard_compliance_last_run_timestamp_seconds [1-9]", text, re.M)


# ----------------------------------------------------------------------------------------------
# operator packs and parameters

MY_PACK = {
    "format": "difyguard-policy-pack-v1", "id": "acme-internal", "name": "ACME internal",
    "framework": "ACME", "version": "3",
    "controls": [
        {"id": "acme-keys-30d", "title": "Keys rotate monthly", "refs": ["ACME-SEC 4.1"],
         "severity": "high", "check": "keyring_rotation_policy", "params": {"max_period": "30d"}},
        {"id": "acme-dpa", "title": "Data processing agreement on file", "refs": ["ACME-LEGAL 2"],
         "severity": "low", "check": "manual", "params": {"evidence": "the signed DPA"}}]}


def test_operator_pack_and_parameter_overrides(start_server, tmp_path):
    pdir = tmp_path / "policies"
    pdir.mkdir()
    (pdir / "acme.json").write_text(json.dumps(MY_PACK))
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"policy-params": {
        "pci-dss-4.0": {"pci-3.7.4-cryptoperiod": {"max_age": "180d"}},
        "acme-internal": {"acme-keys-30d": {"max_period": 2592000}}}}))
    srv = start_server(args=["--policy-dir", str(pdir), "--config", str(cfg)])
    reader, _ = srv.issue_key(["compliance:read"])
    srv.create_keyring(rotation_period="90d")
    _, body = signed_report(reader)
    packs = {p["id"]: p for p in body["packs"]}
    assert set(packs) == PACKS | {"acme-internal"}
    acme = {c["id"]: c for c in packs["acme-internal"]["controls"]}
    assert acme["acme-keys-30d"]["result"] == "fail", acme["acme-keys-30d"]
    assert acme["acme-keys-30d"]["params"] == {"max_period": "30d"}
    assert acme["acme-dpa"]["result"] == "manual"
    pci = {c["id"]: c for c in packs["pci-dss-4.0"]["controls"]}
    assert pci["pci-3.7.4-cryptoperiod"]["params"]["max_age"] == "180d"
    # a pack with a shipped pack's id replaces it
    (pdir / "baseline.json").write_text(json.dumps(dict(MY_PACK, id="baseline")))
    srv.restart()
    _, body = signed_report(srv.client(reader.token), pack="baseline")
    assert [c["id"] for c in body["packs"][0]["controls"]] == ["acme-keys-30d", "acme-dpa"]


@pytest.mark.parametrize("case", ["not-json", "unknown-check", "unknown-param", "bad-params",
                                  "unknown-pack", "duplicate-id", "missing-dir"])
def test_bad_packs_and_parameters_stop_serve_with_a_clear_line(new_datadir, tmp_path, case):
    pdir = tmp_path / "p"
    pdir.mkdir()
    args = ["--policy-dir", str(pdir)]
    want = {"not-json": "x.json: not JSON", "unknown-check": "unknown check \"frobnicate\"",
            "unknown-param": "has no parameter \"max_age\"",
            "bad-params": "--policy-params: ", "unknown-pack": "no pack \"nope\" is loaded",
            "duplicate-id": "pack id \"acme-internal\" is already loaded",
            "missing-dir": "--policy-dir "}[case]
    ctl = dict(MY_PACK["controls"][0])
    if case == "not-json":
        (pdir / "x.json").write_text("{")
    elif case == "unknown-check":
        (pdir / "x.json").write_text(json.dumps(dict(MY_PACK, controls=[
            dict(ctl, check="frobnicate")])))
    elif case == "unknown-param":
        (pdir / "x.json").write_text(json.dumps(dict(MY_PACK, controls=[
            dict(ctl, params={"max_age": "1d"})])))
    elif case == "bad-params":
        args += ["--policy-params", '{"baseline": {"api-key-unused": {"max_idle": "soon"}}}']
    elif case == "unknown-pack":
        args += ["--policy-params", '{"nope": {}}']
    elif case == "duplicate-id":
        (pdir / "a.json").write_text(json.dumps(MY_PACK))
        (pdir / "b.json").write_text(json.dumps(MY_PACK))
    elif case == "missing-dir":
        args = ["--policy-dir", str(tmp_path / "absent")]
    dd = new_datadir()
    rc, err, _ = conftest.run_serve_expecting_exit(dd.path, f"127.0.0.1:{conftest.free_port()}",
                                                   extra=args)
    assert rc in (1, 2) and want in err, (rc, err)
    assert len(err.strip().splitlines()) == 1, err


# ----------------------------------------------------------------------------------------------
# the auditor's walk-through (README): report, verify, export, verify against the heads

def test_an_export_cut_back_to_an_earlier_checkpoint_fails_against_a_later_report(world,
                                                                                   tmp_path):
    aud = world.auditor
    akeys = expect(aud.get("/v1/audit/public-key"), 200)
    apath = save(tmp_path, "audit-keys.json", json.dumps(akeys))
    old = report_bytes(aud, "/v1/audit/export")                 # an earlier, complete export
    old_cp = json.loads(old.decode().splitlines()[-1])["time"]       # its export checkpoint
    for i in range(3):
        world.api.encrypt(world.kr, text=new_text(f"walk{i}"))
    # the report's time has whole seconds: make it later than the old export's checkpoint
    stamp = datetime.datetime.strptime(old_cp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()
    poll_until(lambda: time.time() >= int(stamp) + 1, deadline=10, what="the next second")
    raw, body = signed_report(world.reader)
    ckeys = expect(world.reader.get("/v1/compliance/public-key"), 200)
    rpath = save(tmp_path, "report.json", raw)
    proc = report_verify(rpath, f"@{save(tmp_path, 'compliance-keys.json', json.dumps(ckeys))}")
    assert proc.returncode == 0, proc.stderr
    heads = [l.split(" ", 1)[1] for l in proc.stdout.splitlines() if l.startswith("head ")]
    assert heads and len(heads) == len(body["audit_heads"]), proc.stdout
    new = report_bytes(aud, "/v1/audit/export")
    opath, npath = save(tmp_path, "old.ndjson", old), save(tmp_path, "new.ndjson", new)
    expect_args = []
    for h in heads:
        expect_args += ["--expect-head", h]
    # both exports verify on their own ...
    assert run_cli(["audit", "verify", opath, "--public-key", f"@{apath}"]).returncode == 0
    proc = run_cli(["audit", "verify", npath, "--public-key", f"@{apath}"] + expect_args)
    assert proc.returncode == 0, proc.stderr
    mine = body["service"]["instance"]
    assert re.search(rf"^head {mine}:\d+:[0-9a-f]{{64}} \(last checkpoint ", proc.stdout, re.M)
    # ... but the earlier one does not reach the report's heads
    proc = run_cli(["audit", "verify", opath, "--public-key", f"@{apath}"] + expect_args)
    assert proc.returncode == 1 and "cut back to an earlier checkpoint" in proc.stderr, (
        proc.stdout, proc.stderr)
    # nor is it as recent as the report
    nb = ["--not-before", body["generated_at"]]
    assert run_cli(["audit", "verify", npath, "--public-key", f"@{apath}"] + nb).returncode == 0
    proc = run_cli(["audit", "verify", opath, "--public-key", f"@{apath}"] + nb)
    assert proc.returncode == 1 and "older than --not-before" in proc.stderr, proc.stderr
