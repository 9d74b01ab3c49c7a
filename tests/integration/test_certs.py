# SPDX-License-Identifier: Apache-2.0
"""The certificate inventory (issue 9) on the real binary: sources from --cert-sources and the
API (files, bundles, Kubernetes-style secret directories, uploaded PEM, TLS endpoints), every
status and weak reason on certificates made here, chains against --cert-ca-bundle, errors kept
with their reason, rotation of a probed endpoint in history, metrics and the audit trail, the
admin CLI, and the metrics clean under promtool."""
import json
import os
import shutil
import socket
import subprocess

import pytest

import certkit
import conftest
from conftest import expect, poll_until, run_cli


# ----------------------------------------------------------------------------------------------
# one server watching a directory of certificates made here

class Lab:
    """The module's server, its PKI and the files it watches."""

    @property
    def admin(self):
        return self.srv.admin       # the port changes when the server restarts


def config_sources(lab, d):
    """Write every kind of certificate the issue names, return the --cert-sources entries."""
    p = lab.pki
    certs = {
        "valid": p.chain_pem(p.leaf("valid.test")),
        "expiring-5": p.leaf("five.test", days=6).pem,
        "expiring-20": p.leaf("twenty.test", days=21).pem,
        "expired": p.leaf("expired.test", start=-100, days=30).pem,
        "not-yet-valid": p.leaf("future.test", start=2, days=30).pem,
        "self-signed": certkit.make("self.test").pem,
        "rsa-1024": p.leaf("rsa.test", k=certkit.key("rsa", 1024)).pem,
        "sha1": p.leaf("sha1.test", digest="sha1").pem,
        "no-san": p.leaf("nosan.test", sans=()).pem,
        "long": p.leaf("long.test", days=800).pem,
        "leaf-alone": p.leaf("alone.test").pem,           # no intermediate: no chain
        "bundle": p.root.pem + p.inter.pem + certkit.make("other.test").pem,
        "garbage": "this is not a certificate\n",
    }
    entries = []
    for name, text in certs.items():
        path = certkit.write(os.path.join(d, f"{name}.pem"), text)
        entries.append({"id": name, "kind": "file", "path": path})
    # a Kubernetes secret mount: tls.crt/ca.crt are links into a ..data directory
    sec = os.path.join(d, "secret")
    os.makedirs(os.path.join(sec, "..2026_01_01_00_00_00.1", "sub"), exist_ok=True)
    real = os.path.join(sec, "..2026_01_01_00_00_00.1")
    certkit.write(os.path.join(real, "tls.crt"), p.chain_pem(p.leaf("mounted.test")))
    certkit.write(os.path.join(real, "ca.crt"), p.root.pem)
    os.symlink("..2026_01_01_00_00_00.1", os.path.join(sec, "..data"))
    for f in ("tls.crt", "ca.crt"):
        os.symlink(f"..data/{f}", os.path.join(sec, f))
    os.makedirs(os.path.join(d, "empty"))
    entries += [{"id": "secret", "kind": "dir", "path": sec, "recursive": True},
                {"id": "empty-dir", "kind": "dir", "path": os.path.join(d, "empty")}]
    return entries


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    conftest.require_binary()
    lab = Lab()
    lab.dir = str(tmp_path_factory.mktemp("certs"))
    lab.pki = certkit.Pki()
    bundle = certkit.write(os.path.join(lab.dir, "ca-bundle.pem"), lab.pki.root.pem)
    sources = certkit.write(os.path.join(lab.dir, "sources.json"),
                            json.dumps({"sources": config_sources(lab, lab.dir)}))
    dd = conftest.DataDir(tmp_path_factory.mktemp("certs-data"))
    srv = conftest.Server(dd.path, admin_key=dd.admin_key,
                          args=["--cert-sources", sources, "--cert-ca-bundle", bundle,
                                "--cert-check-interval", "1s", "--cert-probe-timeout", "2s"])
    srv.datadir = dd
    srv.start()
    lab.srv = srv
    yield lab
    srv.stop()


def source(lab, sid):
    return expect(lab.admin.get(f"/v1/certificates/{sid}"), 200)


def leaf_of(src):
    leaves = [c for c in src["certificates"] if c.get("leaf")]
    assert len(leaves) == 1, src
    return leaves[0]


def metrics(srv):
    return srv.client().get("/metrics").text


# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sid,status", [
    ("valid", "ok"), ("expiring-5", "critical"), ("expiring-20", "warning"),
    ("expired", "expired"), ("not-yet-valid", "not_yet_valid"), ("self-signed", "ok"),
    ("rsa-1024", "ok"), ("sha1", "ok"), ("no-san", "ok"), ("long", "ok")])
def test_status_by_date_and_thresholds(lab, sid, status):
    leaf = leaf_of(source(lab, sid))
    assert leaf["status"] == status, leaf


@pytest.mark.parametrize("sid,weak", [
    ("valid", []), ("self-signed", ["self_signed_leaf"]), ("rsa-1024", ["rsa_lt_2048"]),
    ("sha1", ["sha1_signature"]), ("no-san", ["no_san"]), ("long", ["validity_over_398d"])])
def test_weak_reasons(lab, sid, weak):
    assert leaf_of(source(lab, sid))["weak"] == weak


def test_facts_and_chains(lab):
    src = source(lab, "valid")
    assert src["status"] == "ok" and src["origin"] == "config" and src["error"] is None
    leaf, inter = leaf_of(src), [c for c in src["certificates"] if not c.get("leaf")][0]
    assert leaf["subject_cn"] == "valid.test" and leaf["issuer_cn"] == "Test Intermediate CA"
    assert leaf["sans"] == ["DNS:valid.test"] and leaf["key_type"] == "ec"
    assert leaf["key_curve"] == "P-256" and leaf["key_bits"] == 256
    assert leaf["signature_algorithm"] == "ecdsa-with-SHA256"
    assert leaf["chain"] == {"verified": True, "error": None}
    assert inter["is_ca"] and inter["slot"] == "#CN=Test Intermediate CA"
    alone = leaf_of(source(lab, "leaf-alone"))
    assert alone["chain"]["verified"] is False
    assert alone["chain"]["error"] == "unable to get local issuer certificate"
    selfs = leaf_of(source(lab, "self-signed"))
    assert selfs["self_signed"] and selfs["chain"]["verified"] is False
    expired = source(lab, "expired")
    assert expired["status"] == "expired" and len(expired["certificates"]) == 1


def test_bundle_and_secret_directory(lab):
    bundle = source(lab, "bundle")
    assert len(bundle["certificates"]) == 3
    assert sum(c["is_ca"] for c in bundle["certificates"]) == 2
    sec = source(lab, "secret")
    slots = sorted(c["slot"] for c in sec["certificates"])
    # the ..data directory is not walked a second time
    assert slots == ["ca.crt|#CN=Test Root CA", "tls.crt|#CN=Test Intermediate CA",
                     "tls.crt|leaf"], slots
    assert leaf_of(sec)["chain"]["verified"] is True


def test_errors_stay_listed_with_their_reason(lab):
    garbage = source(lab, "garbage")
    assert garbage["status"] == "error"
    assert "neither PEM nor a DER X.509 certificate" in garbage["error"]
    assert garbage["certificates"] == [] and garbage["read_errors"] >= 1
    empty = source(lab, "empty-dir")
    assert empty["status"] == "error" and "no tls.crt or ca.crt" in empty["error"]
    listed = {s["id"]: s["status"] for s in
              expect(lab.admin.get("/v1/certificates"), 200)["sources"]}
    assert listed["garbage"] == "error" and listed["expired"] == "expired"
    text = metrics(lab.srv)
    assert 'difyguard_cert_read_errors_total{source_id="garbage"}' in text
    assert 'difyguard_cert_source_error{source_id="empty-dir"} 1' in text
    expired = [ln for ln in text.splitlines() if ln.startswith("difyguard_cert_expired{")
               and 'source_id="expired"' in ln]
    assert expired and expired[0].endswith(" 1"), expired


def test_metrics_are_clean_under_promtool(lab):
    assert shutil.which("promtool"), "promtool (Debian package prometheus) is required"
    text = metrics(lab.srv)
    for family in ("not_after_timestamp_seconds", "not_before_timestamp_seconds",
                   "renewal_due_timestamp_seconds", "expired", "weak", "read_errors_total",
                   "rotations_total"):
        assert f"# TYPE difyguard_cert_{family} " in text
    p = subprocess.run(["promtool", "check", "metrics"], input=text, text=True,
                       capture_output=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr


def test_zero_state_without_sources(start_server):
    """Nothing configured: every family present with zero series, a zero count to alert on."""
    srv = start_server()
    text = metrics(srv)
    assert "\ndifyguard_cert_sources 0\n" in text
    assert 'difyguard_certs{status="error"} 0' in text
    assert "# TYPE difyguard_cert_not_after_timestamp_seconds gauge" in text
    assert "difyguard_cert_not_after_timestamp_seconds{" not in text
    assert "\ndifyguard_tls_reloads_total 0\n" in text
    p = subprocess.run(["promtool", "check", "metrics"], input=text, text=True,
                       capture_output=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert expect(srv.admin.get("/v1/certificates"), 200) == {"sources": []}


# ----------------------------------------------------------------------------------------------
# the API: add, read, remove; refusals

def test_api_sources_add_read_remove(lab):
    leaf = lab.pki.leaf("api.test")
    path = certkit.write(os.path.join(lab.dir, "api-added.pem"), lab.pki.chain_pem(leaf))
    src = expect(lab.admin.post("/v1/certificates", {"id": "api-file", "kind": "file",
                                                     "path": path, "warning": "100d"}), 201)
    assert src["origin"] == "api" and src["warning"] == 100 * 86400
    assert src["status"] == "warning"                   # 89 days left, warning at 100 days
    assert leaf_of(src)["serial"] == leaf.serial        # read at once
    pem = expect(lab.admin.post("/v1/certificates", {"kind": "pem", "pem": leaf.pem}), 201)
    assert pem["id"].startswith("cert-") and pem["kind"] == "pem" and pem["path"] is None
    assert leaf_of(pem)["sha256_fingerprint"] == leaf.fingerprint
    listed = [s["id"] for s in expect(lab.admin.get("/v1/certificates"), 200)["sources"]]
    assert "api-file" in listed and pem["id"] in listed and "valid" in listed
    hist = expect(lab.admin.get(f"/v1/certificates/{pem['id']}/history"), 200)
    assert [h["sha256_fingerprint"] for h in hist["history"]] == [leaf.fingerprint]
    assert hist["history"][0]["rotation"] is False
    expect(lab.admin.delete(f"/v1/certificates/{pem['id']}"), 204)
    expect(lab.admin.get(f"/v1/certificates/{pem['id']}"), 404, "not_found")
    expect(lab.admin.get(f"/v1/certificates/{pem['id']}/history"), 404, "not_found")
    expect(lab.admin.delete(f"/v1/certificates/{pem['id']}"), 404, "not_found")
    # sources added over the API are kept in the database
    lab.srv.restart()
    assert leaf_of(source(lab, "api-file"))["serial"] == leaf.serial


@pytest.mark.parametrize("body,why", [
    ({"kind": "file"}, "give path"),
    ({"kind": "file", "path": "relative.pem"}, "absolute"),
    ({"kind": "dir", "path": "/tmp", "pem": "x"}, "give path"),
    ({"kind": "endpoint", "endpoint": "example.test"}, "host:port"),
    ({"kind": "endpoint", "endpoint": "example.test:99999"}, "host:port"),
    ({"kind": "pem", "pem": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"},
     "at least one PEM certificate"),
    ({"kind": "file", "path": "/x", "warning": "2d", "critical": "3d"}, "critical at most"),
    ({"kind": "file", "path": "/x", "recursive": True}, "recursive is for dir"),
    ({"kind": "file", "path": "/x", "id": "Not A Name"}, "id must match"),
    ({"kind": "file", "path": "/x", "id": "listener-x"}, "listener"),
    ({"kind": "pkcs12", "path": "/x"}, "kind is required"),
    ({"kind": "file", "path": "/x", "extra": 1}, "unknown field"),
])
def test_bad_sources_are_400(lab, body, why):
    before = [s["id"] for s in expect(lab.admin.get("/v1/certificates"), 200)["sources"]]
    err = expect(lab.admin.post("/v1/certificates", body), 400, "invalid_request")
    assert why in err["error"]["message"], err
    after = [s["id"] for s in expect(lab.admin.get("/v1/certificates"), 200)["sources"]]
    assert after == before


def test_conflicts_and_scopes(lab):
    err = expect(lab.admin.post("/v1/certificates", {"id": "valid", "kind": "file",
                                                     "path": "/x"}), 409, "conflict")
    assert "exists" in err["error"]["message"]
    err = expect(lab.admin.delete("/v1/certificates/valid"), 409, "conflict")
    assert "configured" in err["error"]["message"]
    reader, _ = lab.srv.issue_key(["certs:read"])
    expect(reader.get("/v1/certificates/valid"), 200)
    err = expect(reader.post("/v1/certificates", {"kind": "file", "path": "/x"}), 403,
                 "forbidden")
    assert err["error"]["message"] == "scope: needs certs:write"
    expect(reader.delete("/v1/certificates/api-file"), 403, "forbidden")
    writer, _ = lab.srv.issue_key(["certs:write"])
    expect(writer.get("/v1/certificates"), 403, "forbidden")


def test_changes_are_audited_with_the_source(lab):
    expect(lab.admin.post("/v1/certificates", {"id": "audited", "kind": "file",
                                               "path": "/nonexistent/a.pem"}), 201)
    expect(lab.admin.delete("/v1/certificates/audited"), 204)
    events = expect(lab.admin.get("/v1/audit/events", params={"op": "cert.delete"}),
                    200)["events"]
    assert events, "no cert.delete event"
    text = lab.admin.get("/v1/audit/export").text
    lines = [json.loads(ln) for ln in text.splitlines() if '"cert.' in ln]
    assert any(e["op"] == "cert.create" and e.get("cert_id") == "audited" for e in lines)
    assert any(e["op"] == "cert.delete" and e.get("cert_id") == "audited" for e in lines)
    assert expect(lab.admin.get("/v1/audit/verify"), 200)["valid"] is True


# ----------------------------------------------------------------------------------------------
# endpoints: probed, rotated, dead

def test_endpoint_rotation_in_history_metrics_and_trail(lab, tmp_path):
    a, b = lab.pki.leaf("localhost"), lab.pki.leaf("localhost")
    ep = certkit.TlsEndpoint(tmp_path, a)
    try:
        expect(lab.admin.post("/v1/certificates", {
            "id": "ep", "kind": "endpoint", "endpoint": f"127.0.0.1:{ep.port}",
            "server_name": "localhost"}), 201)

        def served(serial):
            src = source(lab, "ep")
            certs = src["certificates"]
            served.last = src
            return src if certs and leaf_of(src)["serial"] == serial else None
        src = poll_until(lambda: served(a.serial), what=f"the first probe of {a.serial}")
        assert src["status"] == "ok" and leaf_of(src)["chain"]["verified"] is False  # no inter
        ep.serve(b, chain=lab.pki.inter.pem)     # the server rotates (with its chain now)
        src = poll_until(lambda: served(b.serial), what="the rotated certificate")
        assert leaf_of(src)["chain"]["verified"] is True
        assert src["rotations"] == 1 and leaf_of(src)["rotated_at"] is not None
        hist = expect(lab.admin.get("/v1/certificates/ep/history"), 200)["history"]
        leaves = [h for h in hist if h["slot"] == "leaf"]
        assert [h["serial"] for h in leaves] == [b.serial, a.serial]   # newest first
        assert leaves[0]["rotation"] is True and leaves[1]["rotation"] is False
        assert 'difyguard_cert_rotations_total{source_id="ep"} 1' in metrics(lab.srv)
        rot = expect(lab.admin.get("/v1/audit/events", params={"op": "cert.rotation"}),
                     200)["events"]
        assert rot, "no cert.rotation event"
        text = lab.admin.get("/v1/audit/export").text
        ev = [json.loads(ln) for ln in text.splitlines() if '"op":"cert.rotation"' in ln]
        assert ev and ev[-1]["cert_id"] == "ep" and ev[-1]["method"] == "SYSTEM"
        assert expect(lab.admin.get("/v1/audit/verify"), 200)["valid"] is True
        assert f'"msg":"cert_rotated","source":"ep"' in lab.srv.stdout()
    finally:
        ep.close()


def test_dead_endpoint_is_an_error_not_a_hang(lab):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]          # closed again: nothing listens there
    expect(lab.admin.post("/v1/certificates", {"id": "dead", "kind": "endpoint",
                                               "endpoint": f"127.0.0.1:{port}"}), 201)
    src = poll_until(lambda: (lambda x: x if x["checked_at"] else None)(source(lab, "dead")),
                     what="the probe of a dead endpoint")
    assert src["status"] == "error" and "Connection refused" in src["error"]
    assert src["certificates"] == []
    expect(lab.srv.client().get("/healthz"), 200)       # the service is fine


# ----------------------------------------------------------------------------------------------
# the admin CLI

def test_cli_cert_commands(lab):
    env = {"DIFYGUARD_ADDR": lab.srv.url, "DIFYGUARD_TOKEN": lab.admin.token}
    leaf = lab.pki.leaf("cli.test", days=20)
    pem = certkit.write(os.path.join(lab.dir, "cli.pem"), leaf.pem)
    p = run_cli(["cert", "add", "cli-src", "--pem-file", pem, "--critical", "1d"], env=env)
    assert p.returncode == 0, p.stderr
    assert "warning" in p.stdout and leaf.serial in p.stdout
    p = run_cli(["cert", "list"], env=env)
    assert p.returncode == 0 and "cli-src" in p.stdout and "garbage" in p.stdout
    p = run_cli(["cert", "show", "cli-src", "--json"], env=env)
    assert p.returncode == 0 and json.loads(p.stdout)["id"] == "cli-src"
    p = run_cli(["cert", "history", "cli-src"], env=env)
    assert p.returncode == 0 and leaf.serial in p.stdout
    p = run_cli(["cert", "add", "two", "--file", pem, "--dir", "/tmp"], env=env)
    assert p.returncode == 2 and "exactly one" in p.stderr
    p = run_cli(["cert", "remove", "valid"], env=env)
    assert p.returncode == 1 and "configured" in p.stderr
    p = run_cli(["cert", "remove", "cli-src"], env=env)
    assert p.returncode == 0 and "Removed" in p.stdout
    p = run_cli(["cert", "show", "cli-src"], env=env)
    assert p.returncode == 1


def test_readme_alert_rules_are_valid(tmp_path):
    """The alert rules README's certificate section shows are valid Prometheus rules, on the
    metric names the service exposes."""
    src = os.environ.get("DG_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")
    text = open(os.path.join(src, "README.md"), encoding="utf-8").read()
    block = text.split("name: difyguard-certificates", 1)[1].split("```", 1)[0]
    rules = "groups:\n  - name: difyguard-certificates" + block
    path = certkit.write(tmp_path / "rules.yml", rules)
    p = subprocess.run(["promtool", "check", "rules", path], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    for name in ("difyguard_cert_not_after_timestamp_seconds", "difyguard_cert_renewal_overdue",
                 "difyguard_cert_source_error", "difyguard_cert_weak",
                 "difyguard_tls_reload_refusals_total"):
        assert name in rules
