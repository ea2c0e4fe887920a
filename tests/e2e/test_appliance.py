#!/usr/bin/env python3
"""e2e: `corridor run` with 16 simulated SIM7600 modems.

Checks the acceptance items of issue #2 at the level of the whole appliance:
  - sixteen modems poll in parallel, each sample fresh (1 s cadence);
  - a hung modem (answers nothing, not even AT+CRESET) is recovered through soft reset and the
    board power-cycle hook and polls again within 30 s, while every other modem keeps its cadence;
  - a vanished port comes back as the same link;
  - garbage on a port never stalls it;
  - SIGTERM stops every thread within 2 s.
Prints the measured figures. Exit 0 = all passed."""
import json, os, signal, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import simharness as sh  # noqa: E402

args = sh.parse_args(__doc__, modems=16)
check = sh.Checks()

tmp = tempfile.mkdtemp(prefix="corridor-e2e-")
names = ["m%02d" % (i + 1) for i in range(args.modems)]
_, base = sh.write_modem_scenario(args.scenario, tmp, names)

cfg = {
    "vehicle_id": "e2e-0001",
    "data_dir": os.path.join(tmp, "data"),
    "control_socket": os.path.join(tmp, "control.sock"),
    "log": {"level": "info"},
    "board": {"power": "sim", "sim_control": os.path.join(tmp, "sim.sock"), "power_off_ms": 500},
    "links": [{"name": n, "interface": "usb%d" % i,
               "modem": {"port": os.path.join(tmp, "tty", n), "balance_ussd": "*100#",
                         "cmd_timeout_ms": 1500}}
              for i, n in enumerate(names)],
}
json.dump(cfg, open(os.path.join(tmp, "corridor.json"), "w"), indent=1)

def sim_cmd(line):
    return sh.sim_command(tmp, line)

def status():
    return sh.corridor_status(args.corridor, cfg["control_socket"])

links_by_name = sh.links_by_name

simlog = open(os.path.join(tmp, "sim.log"), "w")
corlog = open(os.path.join(tmp, "corridor.log"), "w")
sim = sh.start_sim(args.sim, tmp, simlog)
cor = None
try:
    cor = subprocess.Popen([args.corridor, "run", "--config", os.path.join(tmp, "corridor.json")],
                           stderr=corlog)
    # 1. all modems polling
    t0 = time.time()
    ready = set()
    while time.time() - t0 < 40 and len(ready) < len(names):
        time.sleep(0.5)
        for n, l in links_by_name(status()).items():
            m = l.get("modem")
            if m and m["state"] == "poll" and m["operator"] and m["signal"]["rsrp_dbm"] is not None:
                ready.add(n)
    print("all %d modems polling after %.1f s" % (len(ready), time.time() - t0))
    check(len(ready) == len(names), "%d/%d modems reach poll with operator and RSRP" % (len(ready), len(names)))
    st = links_by_name(status())
    m1 = st["m01"]["modem"] if "m01" in st else {}
    check(m1.get("operator", {}) and m1["operator"]["mcc"] == base["operator"]["mcc"], "operator MCC from the scenario")
    check(m1.get("imei") == "862636055890000", "IMEI of m01 read through the serial path")

    # 2. hang m03; others keep their cadence (age of the latest sample) while m03 recovers.
    print(sim_cmd("fault m03 hang 300"))
    t_hang = time.time()
    worst_age = 0
    worst_who = None
    recovered_at = None
    saw_reset = False
    while time.time() - t_hang < 45:
        time.sleep(0.25)
        ls = links_by_name(status())
        for n, l in ls.items():
            if n == "m03" or not l.get("modem"):
                continue
            if l["modem"]["age_ms"] > worst_age:
                worst_age, worst_who = l["modem"]["age_ms"], n
        m3 = ls.get("m03", {}).get("modem") or {}
        c = m3.get("counters", {})
        if c.get("power_cycles", 0) > 0 or c.get("soft_resets", 0) > 0:
            saw_reset = True
        if saw_reset and m3.get("state") == "poll" and m3.get("age_ms", 1e9) < 1500 and c.get("power_cycles", 0) > 0:
            recovered_at = time.time() - t_hang
            break
    print("hung modem recovered after %s s; worst sample age of the other %d modems meanwhile: %d ms (%s)"
          % ("%.1f" % recovered_at if recovered_at else "never", len(names) - 1, worst_age, worst_who))
    check(recovered_at is not None and recovered_at <= 30, "hung modem polling again within 30 s")
    check(worst_age <= 2000, "other modems keep their 1 s cadence (latest sample never older than 2 s)")
    ev = [e for e in status()["events"] if e["source"] == "m03"]
    kinds = [e["kind"] for e in ev]
    check("soft_reset" in kinds and "power_cycle" in kinds, "m03 events include soft_reset and power_cycle: %s" % kinds[-8:])

    # 3. vanish m05 for 4 s -> vanished, returned, polling as the same link
    print(sim_cmd("fault m05 vanish 4"))
    t_v = time.time()
    back = None
    saw_vanish = False
    while time.time() - t_v < 40:
        time.sleep(0.5)
        m5 = links_by_name(status()).get("m05", {}).get("modem") or {}
        if m5.get("counters", {}).get("vanished", 0) > 0:
            saw_vanish = True
        if saw_vanish and m5.get("state") == "poll" and m5.get("age_ms", 1e9) < 1500:
            back = time.time() - t_v
            break
    print("vanished port back and polling after %s s" % ("%.1f" % back if back else "never"))
    check(saw_vanish and back is not None, "vanished port comes back as the same link")

    # 4. garbage on m07 for 5 s: never stalls others, m07 polls afterwards
    print(sim_cmd("fault m07 garbage 5"))
    t_g = time.time()
    back = None
    while time.time() - t_g < 40:
        time.sleep(0.5)
        m7 = links_by_name(status()).get("m07", {}).get("modem") or {}
        if time.time() - t_g > 5 and m7.get("state") == "poll" and m7.get("age_ms", 1e9) < 1500:
            back = time.time() - t_g
            break
    print("modem polling again %s s after a 5 s garbage burst began" % ("%.1f" % back if back else "never"))
    check(back is not None, "modem polls again after a garbage burst")
    check(cor.poll() is None, "corridor still running")

    # 4b. the diagnostics bundle carries each modem's last AT commands and answers
    d = subprocess.run([args.corridor, "diag", "--socket", cfg["control_socket"], "--no-system",
                        "--out", "-"], capture_output=True, text=True, timeout=30)
    check(d.returncode == 0, "corridor diag exits 0 (%s)" % d.stderr.strip()[:200])
    try:
        bundle = json.loads(d.stdout)
    except ValueError:
        bundle = {}
    mods = {m.get("link"): m for m in bundle.get("modems", [])}
    x = (mods.get("m01") or {}).get("at_exchanges") or []
    print("diag: m01 has %d AT exchanges, last %s" % (len(x), x[-1] if x else None))
    check(len(x) >= 10, "diag bundle has the modem's last AT exchanges")
    check(any(e.get("cmd") == "AT+CSQ" and e.get("result", "").upper() == "OK" and "+CSQ:" in e.get("reply", "")
              for e in x), "an AT+CSQ exchange with its +CSQ reply is in the bundle")

    # 5. SIGTERM -> exit within 2 s
    t_stop = time.time()
    cor.send_signal(signal.SIGTERM)
    try:
        rc = cor.wait(timeout=10)
    except subprocess.TimeoutExpired:
        rc = None
    took = time.time() - t_stop
    print("SIGTERM -> exit in %.2f s, status %s" % (took, rc))
    check(rc == 0 and took <= 2.0, "clean stop within 2 s")
finally:
    if cor and cor.poll() is None:
        cor.kill()
    sh.stop(sim)
    corlog.close()
    simlog.close()
    if check.failed:
        print("--- corridor log (tail) ---")
        print("".join(open(os.path.join(tmp, "corridor.log")).readlines()[-40:]))
check.finish()
