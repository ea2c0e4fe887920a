"""Harness shared by the Python end-to-end tests that run the real `corridor` against simulated
modems (tests/e2e/test_appliance.py, tests/board/test_watchdog.py): the tally of checks, the
command line every such test takes, a scenario of N modems cloned from a template, the
simulator's start, control socket and stop, `corridor status`, and polling.

Import with:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
    import simharness as sh
"""
import argparse
import copy
import json
import os
import signal
import socket
import subprocess
import sys
import time


class Checks:
    """Counts and prints each check; finish() prints the summary line and exits 1 on failure."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def __call__(self, cond, what):
        if cond:
            self.passed += 1
            print("ok:", what)
        else:
            self.failed += 1
            print("FAIL:", what)
        return bool(cond)

    def finish(self):
        print("%d passed, %d failed" % (self.passed, self.failed))
        sys.exit(1 if self.failed else 0)


def parse_args(doc, modems=None):
    """--corridor, --sim and --scenario (the template); --modems N when a default is given."""
    ap = argparse.ArgumentParser(description=doc)
    ap.add_argument("--corridor", required=True)
    ap.add_argument("--sim", required=True)
    ap.add_argument("--scenario", required=True)
    if modems is not None:
        ap.add_argument("--modems", type=int, default=modems)
    return ap.parse_args()


def emulator():
    """The cross-build's emulator prefix (CORRIDOR_EMU, e.g. "qemu-aarch64 -L ..."), or []."""
    return os.environ.get("CORRIDOR_EMU", "").split()


def write_modem_scenario(template_path, tmp, names):
    """tmp/scenario.json: the template's first modem once per name, each on its own pty under
    tmp/tty with its own IMEI and ICCID. Scheduled faults are dropped: the tests inject their
    own through the control socket, and the demo's would blur what they measure."""
    template = json.load(open(template_path))
    scen = {k: v for k, v in template.items() if k != "modems"}
    scen["modems"] = []
    for i, n in enumerate(names):
        m = copy.deepcopy(template["modems"][0])
        m["name"] = n
        m["path"] = os.path.join(tmp, "tty", n)
        m["identity"]["imei"] = "86263605589%04d" % i
        m["identity"]["iccid"] = "897010100000000%05d" % i
        m.pop("faults", None)
        scen["modems"].append(m)
    path = os.path.join(tmp, "scenario.json")
    json.dump(scen, open(path, "w"), indent=1)
    return path, template["modems"][0]


def wait_for(cond, timeout, step=0.2):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()


def start_sim(sim, tmp, log, emu=()):
    """corridor-modemsim on tmp/scenario.json, control socket tmp/sim.sock; waits (10 s at most)
    for the socket, which exists once every pty is open."""
    sock = os.path.join(tmp, "sim.sock")
    p = subprocess.Popen(list(emu) + [sim, "--control", sock, os.path.join(tmp, "scenario.json")],
                         stderr=log)
    wait_for(lambda: os.path.exists(sock), 10, 0.1)
    return p


def stop(p, timeout=5):
    """SIGTERM, then SIGKILL if it has not exited within timeout seconds. Returns the status."""
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
    try:
        return p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        return p.wait()


def sim_command(tmp, line):
    """One line to the simulator's control socket (tmp/sim.sock); its one-line answer."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(os.path.join(tmp, "sim.sock"))
    s.sendall((line + "\n").encode())
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return data.decode().strip()


def corridor_status(corridor, control_socket, emu=()):
    """`corridor status` as a dict, or None while the daemon does not answer."""
    out = subprocess.run(list(emu) + [corridor, "status", "--socket", control_socket],
                         capture_output=True, text=True, timeout=10)
    if out.returncode != 0:
        return None
    return json.loads(out.stdout)


def links_by_name(st):
    return {l["name"]: l for l in st["links"]} if st else {}
