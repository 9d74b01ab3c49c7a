# SPDX-License-Identifier: Apache-2.0
"""A new API key's text leaves the server only in the key create and key rotate answers, and
those answers take the secret-body path: libmicrohttpd gets them with http.c's wiping free
callback, never with plain free (issue 6, finding 6). Observed through tests/integration/
mhd_spy.c, preloaded into the real binary (built by CMake; its path is DG_MHD_SPY_LIB)."""
import os

import pytest

from conftest import expect, register_api_key, uniq

SPY = os.environ.get("DG_MHD_SPY_LIB")


@pytest.fixture
def spied(start_server, tmp_path):
    if not SPY or not os.path.exists(SPY):
        pytest.skip("DG_MHD_SPY_LIB (the mhd_spy module built by CMake) is not set")
    log = tmp_path / "spy.log"
    asan = os.environ.get("ASAN_OPTIONS", "")
    env = {"LD_PRELOAD": SPY, "DG_MHD_SPY": str(log),
           # an ASan binary wants its runtime first; the shim is preloaded ahead of it
           "ASAN_OPTIONS": (asan + ":" if asan else "") + "verify_asan_link_order=0"}
    srv = start_server(env=env)
    return srv, log


def paths(log):
    return log.read_text().split() if log.exists() else []


def test_new_key_answers_are_wiped_bodies(spied):
    srv, log = spied
    app = uniq("app")
    expect(srv.admin.post("/v1/apps", {"name": app}), 201)
    assert paths(log) == [], "no answer so far holds a key"
    k = expect(srv.admin.post(f"/v1/apps/{app}/keys", {"scopes": ["encrypt"]}), 201)
    register_api_key(k["key"])
    assert paths(log) == ["secret"], "key create: the answer holding the key is a secret body"
    new = expect(srv.admin.post(f"/v1/apps/{app}/keys/{k['id']}/rotate", {}), 201)
    register_api_key(new["key"])
    assert paths(log) == ["secret", "secret"], "key rotate: likewise"
    # listings never hold key text at all
    expect(srv.admin.get(f"/v1/apps/{app}/keys"), 200)
    assert paths(log) == ["secret", "secret"]
