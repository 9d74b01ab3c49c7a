#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The Dify key provider against a local difyguard, next to Dify's local RSA-2048 hybrid provider
(reproduced from its documented format with pycryptodome): calls per second, one thread and
eight, single values and batches, and what Dify stores per secret. Not a test: prints figures.

    bench/dify_provider.py [--bin build/server/difyguard] [--seconds 3]
"""
import argparse
import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
sys.path.insert(0, os.path.join(ROOT, "tests", "integration", "dify_stub"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, os.path.join(ROOT, "integrations", "dify"))

import dify_rsa  # noqa: E402
import difyguard_key_provider as dkp  # noqa: E402
import migrate_hybrid as mh  # noqa: E402

TENANT = "8e7c4f52-1c3a-4a1b-9d7e-2f0c5b6a7d01"
SECRET = "sk-" + "x" * 48                      # an OpenAI-style key: 51 bytes


def rate(fn, seconds, threads=1):
    stop, counts = time.monotonic() + seconds, [0] * threads

    def run(k):
        while time.monotonic() < stop:
            counts[k] += fn()
    ts = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    t0 = time.monotonic()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(counts) / (time.monotonic() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "server", "difyguard"))
    ap.add_argument("--seconds", type=float, default=3.0)
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="dg-bench-")
    info = json.loads(subprocess.run([a.bin, "init", "--data-dir", d, "--json"], check=True,
                                     capture_output=True, text=True).stdout)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    srv = subprocess.Popen([a.bin, "serve", "--data-dir", d, "--listen", f"127.0.0.1:{port}"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(url + "/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        req = urllib.request.Request(url + "/v1/keyrings", data=b'{"name":"dify"}',
                                     headers={"Authorization": "Bearer " + info["key"],
                                              "Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=10)
        os.environ.update({"DIFYGUARD_ADDR": url, "DIFYGUARD_TOKEN": info["key"]})
        p = dkp.DifyguardKeyProvider()
        blob = p.encrypt(TENANT, SECRET)
        dec = p.get_decrypt_decoding(TENANT)
        key = dify_rsa.new_key(2048)
        pub = key.publickey()
        hyb = dify_rsa.hybrid_encrypt(pub, SECRET)
        oaep = mh.PKCS1_OAEP.new(key)
        s = a.seconds
        print(f"figures for a {len(SECRET)}-byte secret, {s:g} s each, this machine "
              f"({os.cpu_count()} cores, server and client on it)")
        print(f"  difyguard encrypt, 1 thread:   {rate(lambda: bool(p.encrypt(TENANT, SECRET)), s):8.0f} calls/s")
        print(f"  difyguard decrypt, 1 thread:   {rate(lambda: bool(p.decrypt_with_decoding(blob, dec)), s):8.0f} calls/s")
        print(f"  difyguard decrypt, 8 threads:  {rate(lambda: bool(p.decrypt_with_decoding(blob, dec)), s, 8):8.0f} calls/s (one shared connection)")
        many = [blob] * 100
        print(f"  difyguard batch_decrypt x100:  {rate(lambda: len(p.batch_decrypt(TENANT, many)), s):8.0f} values/s")
        print(f"  RSA-2048 hybrid encrypt:       {rate(lambda: bool(dify_rsa.hybrid_encrypt(pub, SECRET)), s):8.0f} calls/s")
        print(f"  RSA-2048 hybrid decrypt:       {rate(lambda: bool(mh._rsa_decrypt(key, oaep, hyb)), s):8.0f} calls/s (key already loaded)")
        print("stored by Dify (base64 of the provider's bytes), bytes:")
        for n in (16, 51, 200, 1000):
            t = "k" * n
            ours = len(base64.b64encode(p.encrypt(TENANT, t)))
            theirs = len(base64.b64encode(dify_rsa.hybrid_encrypt(pub, t)))
            print(f"  {n:5d}-byte secret: difyguard {ours:5d}   RSA-2048 hybrid {theirs:5d}")
    finally:
        srv.terminate()
        srv.wait(timeout=30)


if __name__ == "__main__":
    main()
