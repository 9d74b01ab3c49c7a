# SPDX-License-Identifier: Apache-2.0
"""The hardening checklist of SECURITY.md, where a test can check it on a running server: no core
files (RLIMIT_CORE 0), key material in locked memory (sodium_malloc: VmLck > 0 once keys are
loaded). Key-file modes, TLS on non-loopback listeners, no-store answers and log scanning have
their own tests (test_key_files.py, test_lifecycle.py, the harness)."""


def proc_status(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def core_limit(pid):
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max core file size"):
                return line.split()[4:6]
    raise AssertionError("no core limit line")


def test_no_core_files_and_keys_in_locked_memory(server):
    pid = server.proc.pid
    assert core_limit(pid) == ["0", "0"], "a crash could write key material to a core file"
    kr = server.create_keyring()
    server.admin.encrypt(kr, text="locked")
    locked_kb = int(proc_status(pid)["VmLck"].split()[0])
    with open(f"/proc/{pid}/maps") as f:
        # AddressSanitizer intercepts mlock() and makes it a no-op: VmLck says nothing there
        if "libasan" in f.read():
            return
    assert locked_kb > 0, "no locked memory: key material could be swapped out"
