#!/usr/bin/env python3
"""test_watchdog: the real `corridor run` (two simulated modems over ptys) with its watchdog
device pointed at a FIFO, a systemd notify socket, a thermal fixture tree and the GPIO
recording backend. Proves issue #7's board items end to end:

  A. healthy run: READY=1; keepalives on the FIFO and WATCHDOG=1 about once a second, also
     while a hung MODEM is recovered (a legitimate long wait is not a hung thread); that
     recovery ends in a power cycle through the profile's lines (reset asserted, power off,
     off_ms, power on, reset released); a zone at crit_c slows the modems down and back;
     SIGTERM -> STOPPING=1, exit 0, magic 'V' as the last byte.
  B. CORRIDOR_TEST_HANG=steer@3: the steer thread hangs inside its loop; keepalives and
     WATCHDOG=1 stop within its stale limit (20 s), the log names the thread, and the process
     exits with status 70 by itself (systemd restarts it), WITHOUT the magic close.
  C. CORRIDOR_TEST_HANG=control@2 then SIGTERM: the hung thread cannot be joined; the stop
     guard exits with 70 after 10 s, disarming the watchdog ('V') because a stop was asked.
Exit 0 = all passed."""
import json, os, select, signal, socket, subprocess, sys, tempfile, threading, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import simharness as sh  # noqa: E402

args = sh.parse_args(__doc__)
emu = sh.emulator()
check = sh.Checks()

tmp = tempfile.mkdtemp(prefix="corridor-board-wd-")
names = ["m01", "m02"]
sh.write_modem_scenario(args.scenario, tmp, names)

profile = {
    "name": "wdtest",
    "description": "test profile: slot1 carries link m01",
    "power_cycle": {"off_ms": 500, "reset_pulse_ms": 100, "boot_wait_ms": 0},
    "slots": [{"name": "slot1", "link": "m01", "usb": "1-1.1",
               "power": {"chip": "gpiochip0", "line": 5},
               "reset": {"chip": "gpiochip0", "line": 6, "active_low": True}},
              {"name": "m02", "power": {"chip": "gpiochip0", "line": 7}}],
    "thermal": [{"zone": "thermal_zone0", "warn_c": 70, "crit_c": 80}],
}
json.dump(profile, open(os.path.join(tmp, "wdtest.json"), "w"))
zone = os.path.join(tmp, "thermal", "thermal_zone0")
os.makedirs(zone)
open(os.path.join(zone, "type"), "w").write("cpu-thermal\n")


def set_temp(milli):
    with open(os.path.join(zone, "temp.new"), "w") as f:
        f.write("%d\n" % milli)
    os.rename(os.path.join(zone, "temp.new"), os.path.join(zone, "temp"))


set_temp(45000)


def make_config(run):
    d = os.path.join(tmp, run)
    os.makedirs(d)
    cfg = {
        "vehicle_id": "wd-0001",
        "data_dir": os.path.join(d, "data"),
        "control_socket": os.path.join(d, "control.sock"),
        "log": {"level": "info"},
        "board": {"power": "gpio", "profile": os.path.join(tmp, "wdtest.json"),
                  "gpio_record": os.path.join(d, "gpio.log"),
                  "watchdog_device": os.path.join(d, "watchdog"), "watchdog_timeout_s": 30,
                  "thermal_root": os.path.join(tmp, "thermal")},
        "links": [{"name": n, "interface": "usb%d" % i,
                   "modem": {"port": os.path.join(tmp, "tty", n), "cmd_timeout_ms": 1500}}
                  for i, n in enumerate(names)],
    }
    path = os.path.join(d, "corridor.json")
    json.dump(cfg, open(path, "w"), indent=1)
    return d, path


class Watch:
    """Reads the watchdog FIFO and the notify socket, timestamping what arrives."""

    def __init__(self, d):
        self.fifo = os.path.join(d, "watchdog")
        os.mkfifo(self.fifo)
        # Our read end exists before corridor opens the write end (its open would wait).
        self.rfd = os.open(self.fifo, os.O_RDONLY | os.O_NONBLOCK)
        self.nsock_path = os.path.join(d, "notify.sock")
        self.nsock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.nsock.bind(self.nsock_path)
        self.kicks = []  # (t, byte)
        self.notes = []  # (t, message)
        self.stop = False
        self.th = threading.Thread(target=self.run, daemon=True)
        self.th.start()

    def run(self):
        while not self.stop:
            r, _, _ = select.select([self.rfd, self.nsock], [], [], 0.05)
            now = time.time()
            if self.rfd in r:
                try:
                    data = os.read(self.rfd, 4096)
                except BlockingIOError:
                    data = b""
                if not data:
                    time.sleep(0.02)  # no writer (yet / any more)
                for b in data:
                    self.kicks.append((now, chr(b)))
            if self.nsock in r:
                msg = self.nsock.recv(4096).decode(errors="replace")
                for line in msg.split("\n"):
                    if line:
                        self.notes.append((now, line))

    def close(self):
        self.stop = True
        self.th.join(2)
        os.close(self.rfd)
        self.nsock.close()

    def keep_times(self, t0=0, t1=1e18):
        return [t for t, b in list(self.kicks) if b == "1" and t0 <= t <= t1]

    def note_times(self, what, t0=0, t1=1e18):
        return [t for t, m in list(self.notes) if m == what and t0 <= t <= t1]


def start(run, hang=None):
    d, cfgpath = make_config(run)
    w = Watch(d)
    env = dict(os.environ)
    env["NOTIFY_SOCKET"] = w.nsock_path
    env["WATCHDOG_USEC"] = "30000000"
    env.pop("WATCHDOG_PID", None)
    env.pop("CORRIDOR_TEST_HANG", None)
    if hang:
        env["CORRIDOR_TEST_HANG"] = hang
    log = open(os.path.join(d, "corridor.log"), "w")
    p = subprocess.Popen(emu + [args.corridor, "run", "--config", cfgpath], stderr=log, env=env)
    return d, w, p, log


def log_text(d):
    return open(os.path.join(d, "corridor.log")).read()


def max_gap(ts):
    return max((b - a for a, b in zip(ts, ts[1:])), default=0)


wait_for = sh.wait_for


def sim_cmd(line):
    return sh.sim_command(tmp, line)


def gpio_ops(d):
    ops = []
    try:
        for line in open(os.path.join(d, "gpio.log")):
            f = line.split()
            if len(f) == 6:
                ops.append((int(f[0]), f[1], f[2], f[3], f[4], f[5]))
    except FileNotFoundError:
        pass
    return ops


def sample_ages(d, link, seconds):
    """The link's modem sample age (ms) from `corridor status`, every 0.25 s."""
    ages = []
    end = time.time() + seconds
    while time.time() < end:
        st = sh.corridor_status(args.corridor, os.path.join(d, "control.sock"), emu)
        m = sh.links_by_name(st).get(link, {}).get("modem")
        if m:
            ages.append(m["age_ms"])
        time.sleep(0.25)
    return ages


def run_a():
    print("== A: healthy run, modem recovery with a power cycle, thermal, clean stop")
    d, w, p, log = start("a")
    try:
        check(wait_for(lambda: w.note_times("READY=1"), 20), "READY=1 sent to NOTIFY_SOCKET")
        t_ready = (w.note_times("READY=1") or [time.time()])[0]
        time.sleep(6)
        ks = w.keep_times(t_ready)
        print("keepalives in 6 s: %d, max gap %.2f s" % (len(ks), max_gap(ks)))
        check(len(ks) >= 4 and max_gap(ks) <= 1.6, "keepalives about once a second")
        wd = w.note_times("WATCHDOG=1", t_ready)
        check(len(wd) >= 4 and max_gap(wd) <= 1.6, "WATCHDOG=1 about once a second")
        check("systemd WatchdogSec 30000 ms" in log_text(d), "WATCHDOG_USEC read (sd_watchdog_enabled)")

        # A hung modem: soft reset, then the board power cycle through the recording backend.
        print(sim_cmd("fault m01 hang 15"))
        t_hang = time.time()

        def cycled():
            return len([o for o in gpio_ops(d) if o[2] == "set"]) >= 4
        check(wait_for(cycled, 40), "hung modem m01 gets its slot power-cycled")
        ops = [o for o in gpio_ops(d) if o[2] == "set"][:4]
        req = [o for o in gpio_ops(d) if o[2] == "request"]
        check([(o[1], o[4], o[5]) for o in req] ==
              [("slot1.power", "asserted=1", "level=1"), ("slot1.reset", "asserted=0", "level=1"),
               ("m02.power", "asserted=1", "level=1")], "lines requested idle at start: %s" % req)
        seq = [(o[1], o[3], o[4], o[5]) for o in ops]
        check(seq == [("slot1.reset", "gpiochip0:6", "asserted=1", "level=0"),
                      ("slot1.power", "gpiochip0:5", "asserted=0", "level=0"),
                      ("slot1.power", "gpiochip0:5", "asserted=1", "level=1"),
                      ("slot1.reset", "gpiochip0:6", "asserted=0", "level=1")],
              "power-cycle order: reset, power off, power on, reset release: %s" % seq)
        if len(ops) == 4:
            off, pulse = ops[2][0] - ops[1][0], ops[3][0] - ops[2][0]
            print("power off for %d ms (profile 500), reset pulse %d ms (profile 100)" % (off, pulse))
            check(500 <= off <= 750 and 100 <= pulse <= 350, "power-cycle timing per profile")
        # Keepalives never paused while m01 was being recovered.
        time.sleep(2)
        ks = w.keep_times(t_hang)
        print("during the modem recovery: %d keepalives, max gap %.2f s" % (len(ks), max_gap(ks)))
        check(max_gap(ks) <= 1.6 and len(ks) >= (time.time() - t_hang) - 3,
              "keepalives continue while a modem recovers (legitimate wait, not a hang)")

        # Thermal: crit slows the modems, back under crit restores them.
        set_temp(85000)
        check(wait_for(lambda: "modems poll 5x slower" in log_text(d), 12),
              "zone at crit_c: modems slowed down")
        check("thermal: thermal_zone0 (cpu-thermal) at 85.0 degC: crit" in log_text(d),
              "thermal log names zone, type, temperature and level")
        ages = sample_ages(d, "m02", 7)
        print("m02 sample age while slowed down: max %d ms" % max(ages, default=0))
        check(max(ages, default=0) >= 3000, "slowed down: m02 polls every ~5 s instead of 1 s")
        set_temp(40000)
        check(wait_for(lambda: "back under critical" in log_text(d), 12),
              "zone back to normal: modems poll normally")
        time.sleep(5)
        ages = sample_ages(d, "m02", 4)
        print("m02 sample age after: max %d ms" % max(ages, default=99999))
        check(ages and max(ages) <= 2000, "back to a 1 s cadence")

        check(p.poll() is None, "corridor still running")
        t_stop = time.time()
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            rc = None
        time.sleep(0.3)
        took = time.time() - t_stop
        print("SIGTERM -> exit %s in %.2f s" % (rc, took))
        check(rc == 0, "clean stop exits 0")
        check(w.note_times("STOPPING=1", t_stop), "STOPPING=1 sent")
        check(w.kicks and w.kicks[-1][1] == "V", "magic close: 'V' is the last byte written")
        check(all(b in "1V" for _, b in w.kicks) and sum(b == "V" for _, b in w.kicks) == 1,
              "only keepalive bytes before the single 'V'")
    finally:
        if p.poll() is None:
            p.kill()
        log.close()
        w.close()
    return d


def run_b():
    print("== B: CORRIDOR_TEST_HANG=steer@3: keepalives stop, process exits 70 by itself")
    d, w, p, log = start("b", "steer@3")
    t0 = time.time()
    try:
        rc = p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        rc = None
    t_exit = time.time()
    time.sleep(0.3)
    try:
        text = log_text(d)
        t_hang = t0 + 3
        ks = w.keep_times()
        last = ks[-1] if ks else t0
        print("exit status %s after %.1f s; last keepalive %.1f s after the hang; %d keepalives"
              % (rc, t_exit - t0, last - t_hang, len(ks)))
        check("thread of slot steer hangs now" in text, "the steer thread really hung (test hook)")
        check(rc == 70, "exit status 70 (EXIT_HUNG) so systemd restarts corridor")
        check(15 <= last - t_hang <= 23, "keepalives stop within the steer stale limit (20 s), not before")
        check(max_gap(ks) <= 1.6, "keepalives regular until then")
        wd = w.note_times("WATCHDOG=1")
        check(wd and 15 <= wd[-1] - t_hang <= 23, "WATCHDOG=1 stops with them")
        check("watchdog: thread steer hung: no heartbeat for" in text, "the log names the hung thread")
        check(8 <= t_exit - last <= 14, "exit about 10 s after the keepalives stopped")
        check(not any(b == "V" for _, b in w.kicks), "no magic close: the hardware watchdog keeps counting")
        check(not w.note_times("STOPPING=1"), "no STOPPING=1 (not a requested stop)")
    finally:
        if p.poll() is None:
            p.kill()
        log.close()
        w.close()


def run_c():
    print("== C: CORRIDOR_TEST_HANG=control@2, then SIGTERM: the stop guard")
    d, w, p, log = start("c", "control@2")
    try:
        check(wait_for(lambda: "thread of slot control hangs now" in log_text(d), 15),
              "the control thread hung (test hook)")
        time.sleep(1)
        t_stop = time.time()
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            rc = None
        took = time.time() - t_stop
        time.sleep(0.3)
        text = log_text(d)
        print("SIGTERM with a hung thread -> exit %s in %.1f s" % (rc, took))
        check(rc == 70 and 9 <= took <= 13, "stop guard: exit 70 about 10 s after SIGTERM")
        check("stop: stopping control has not finished after 10 s" in text,
              "the log names the part whose stop never returned")
        check(w.kicks and w.kicks[-1][1] == "V", "a requested stop disarms the watchdog ('V')")
    finally:
        if p.poll() is None:
            p.kill()
        log.close()
        w.close()


def run_d():
    """Optional (BOARD_WD_ONLY=d, ~2.5 min): a hung MODEM thread. Its limit is long (90 s +
    power cycle + 16 x cmd_timeout = 114.6 s here) because a modem step may legitimately block
    that long; after it, the same escalation as any thread."""
    print("== D: CORRIDOR_TEST_HANG=modem:m01@3: the modem slot's long limit, then exit 70")
    d, w, p, log = start("d", "modem:m01@3")
    t0 = time.time()
    try:
        rc = p.wait(timeout=200)
    except subprocess.TimeoutExpired:
        rc = None
    time.sleep(0.3)
    try:
        text = log_text(d)
        ks = w.keep_times()
        last = ks[-1] if ks else t0
        print("exit %s; keepalives stopped %.1f s after the hang" % (rc, last - (t0 + 3)))
        check("thread of slot modem:m01 hangs now" in text, "the m01 modem thread hung")
        check(rc == 70, "exit status 70")
        check(105 <= last - (t0 + 3) <= 120, "keepalives stop after the modem limit (~114.6 s)")
        check("watchdog: thread modem:m01 hung" in text, "the log names modem:m01")
    finally:
        if p.poll() is None:
            p.kill()
        log.close()
        w.close()


simlog = open(os.path.join(tmp, "sim.log"), "w")
sim = sh.start_sim(args.sim, tmp, simlog, emu)
dirs = []
try:
    only = os.environ.get("BOARD_WD_ONLY", "abc")
    if "a" in only:
        run_a()
    if "b" in only:
        run_b()
    if "c" in only:
        run_c()
    if "d" in only:
        run_d()
finally:
    sh.stop(sim)
    simlog.close()
    if check.failed:
        for r in "abcd":
            f = os.path.join(tmp, r, "corridor.log")
            if os.path.exists(f):
                print("--- run %s: corridor log (tail) ---" % r)
                print("".join(open(f).readlines()[-30:]))
    else:
        subprocess.run(["rm", "-rf", tmp])
check.finish()
