# SPDX-License-Identifier: Apache-2.0
"""Automatic rotations are audited (security review, issue 6, finding 4): a rotation by the
maintenance thread commits a keyring.rotate event (method SYSTEM) in its own transaction, and the
chain still verifies."""
from conftest import expect, new_text, poll_until, uniq


def events(srv, **params):
    out, cursor = [], None
    while True:
        q = dict(params, limit=100, order="asc")   # oldest first (the default is newest first)
        if cursor:
            q["cursor"] = cursor
        page = expect(srv.admin.get("/v1/audit/events", params=q), 200)
        out.extend(page["events"])
        cursor = page.get("next_cursor")
        if not cursor:
            return out


def test_rotation_at_the_bound_is_audited(start_server):
    srv = start_server(args=["--kek-max-encryptions", "20", "--reserve-block", "5"])
    name = uniq("autorot")
    expect(srv.admin.post("/v1/keyrings", {"name": name}), 201)
    text = new_text("autorot")
    for _ in range(18):                 # 90% of 20: the maintenance thread rotates
        srv.admin.encrypt(name, text=text)
    poll_until(lambda: expect(srv.admin.get(f"/v1/keyrings/{name}"), 200)["latest_version"] == 2,
               what="the automatic rotation")

    rot = [e for e in events(srv, op="keyring.rotate") if e["keyring"] == name]
    assert len(rot) == 1, rot
    ev = rot[0]
    assert ev["method"] == "SYSTEM" and ev["status"] == 200 and ev["outcome"] == "ok", ev
    assert ev["key_version"] == 2 and ev["app"] is None and ev["key_id"] is None, ev
    verdict = expect(srv.admin.get("/v1/audit/verify"), 200)
    assert verdict["valid"] is True, verdict

    # a manual rotation afterwards is its own event; the chain still verifies after a restart
    expect(srv.admin.post(f"/v1/keyrings/{name}/rotate", {}), 200)
    srv.restart()
    rot = [e for e in events(srv, op="keyring.rotate") if e["keyring"] == name]
    assert [e["method"] for e in rot] == ["SYSTEM", "POST"], rot
    assert expect(srv.admin.get("/v1/audit/verify"), 200)["valid"] is True
