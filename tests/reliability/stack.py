"""stack.py — a private TIKETI stack for the fault suite, on free loopback ports.

The same daemons, in the same order and with the same supervisor as `./tiketi up`
(every process runs under tools/supervise, which restarts it when it dies: that is
what a kill -9 scenario relies on), but:
  - every port comes from a bind probe (./tiketi up uses the fixed 3010-3021, 8080
    and would collide with a developer's stack or another test run);
  - every file lives under one work directory (state/, like TIKETI_STATE_DIR);
  - each seatcored shard's data directory is a small tmpfs when we may mount one
    (root), so the WAL-disk-full scenario can fill it without touching the real disk;
  - settings that only stretch a test's waiting are shortened and written down in
    SHORT_SETTINGS (docs/reliability.md lists them); `--long` keeps the defaults.

Nothing here is imported by the services; stdlib only."""
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request

ADMIN_EMAIL = "admin@reliability.tiketi"
ADMIN_PASSWORD = "reliability-admin-1"
WAL_TMPFS_MB = 48
SHARDS = 2

# Settings of the short suite that differ from the daemons' defaults, and why.
SHORT_SETTINGS = {
    "payment-svc": ["--breaker-open-ms", "5000"],          # default 30000: an open breaker would outlast the suite
    "reservation-svc": ["--recovery-backoff-max-ms", "5000"],  # default 30000: sagas settle within the audit's wait
}
# Environment prefixes of the daemons' settings: a caller's (./tiketi exports SEATCORED_SHARDS)
# must not leak into the private stack.
SETTING_PREFIXES = ("SEATCORED_", "AUTH_", "EVENT_", "QUEUE_", "PAYMENT_", "RESERVATION_", "EDGE_",
                    "GATEWAY_SIM_", "TIKETI_HTTP_PORT")


def free_ports(count):
    socks, ports = [], []
    for _ in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def http_ok(url, timeout=2.0):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except Exception:
        return False


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


def copy_log(pipe, logf):
    """Copies a daemon's output to its log file until every writer has closed the pipe."""
    with pipe, logf:
        for chunk in iter(lambda: pipe.read1(65536), b""):
            logf.write(chunk)
            logf.flush()


def children(pid):
    """Direct children of pid (every thread's list)."""
    out = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(p) for p in f.read().split()]
    except OSError:
        pass
    return out


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Daemon:
    def __init__(self, name, argv, health, env=None, program=None):
        self.name, self.argv, self.health, self.env = name, argv, health, env or {}
        # The process name (comm, 15 characters at most) once the daemon runs: the supervisor
        # also forks `sleep` (its backoff), `date`, and copies of itself not yet exec'd, and
        # taking one of those for the daemon would make a restart look instantaneous.
        self.program = (program or os.path.basename(argv[0]))[:15]
        self.supervisor = None  # subprocess.Popen of tools/supervise

    def pid(self):
        """The daemon's pid under its supervisor, or None (between a death and the restart)."""
        if self.supervisor is None:
            return None
        for child in children(self.supervisor.pid):
            if comm(child) == self.program and alive(child):
                return child
        return None

    def healthy(self):
        return self.health()


class Stack:
    def __init__(self, root, bin_dir, work, long=False, log=print):
        self.root, self.bin, self.work, self.long, self.log = root, bin_dir, work, long, log
        self.state = os.path.join(work, "state")
        self.logs = os.path.join(self.state, "logs")
        self.data = os.path.join(self.state, "data")
        self.secrets = os.path.join(self.state, "secrets")
        self.daemons = []
        self.mounts = []
        self.wal_tmpfs = False

    # ------------------------------------------------------------------------------------------
    def _env(self, extra):
        env = {k: v for k, v in os.environ.items() if not k.startswith(SETTING_PREFIXES)}
        env["STATE"] = self.state  # tools/supervise writes restarts.log there
        env.update(extra)
        return env

    def _mount_tmpfs(self, path, mb):
        os.makedirs(path, exist_ok=True)
        # RELIABILITY_WAL_FAULT=fsize tries, as root, the file-size-limit fault used without root.
        if os.geteuid() != 0 or os.environ.get("RELIABILITY_WAL_FAULT") == "fsize":
            return False
        rc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={mb}m,mode=0755", "tiketi-wal", path],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
        if rc == 0:
            self.mounts.append(path)
            self._record(f"mount {path}")
            return True
        return False

    def _record(self, line):
        """Notes a supervisor or a mount in work/pids at once, for run's exit trap: if this
        process dies (even half-way through up()), the trap still stops and unmounts them."""
        with open(os.path.join(self.work, "pids"), "a") as f:
            f.write(line + "\n")

    def shard_data_dir(self, shard):
        return os.path.join(self.data, f"seatcored-{shard}")

    def _plan(self):
        p = free_ports(2 * SHARDS + 15)
        take = iter(p)
        self.pg_port, self.redis_port = next(take), next(take)
        self.shard_ports = [(next(take), next(take)) for _ in range(SHARDS)]
        self.gw_port = next(take)
        svc = {name: (next(take), next(take)) for name in ("auth", "event", "queue", "payment", "reservation")}
        self.svc_ports = svc
        self.http_port = next(take)
        self.pg_url = f"postgresql://postgres@127.0.0.1:{self.pg_port}/tiketi"
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}"
        self.shard_list = ",".join(f"127.0.0.1:{g}" for g, _ in self.shard_ports)
        self.edge_url = f"http://127.0.0.1:{self.http_port}"
        self.gateway_url = f"http://127.0.0.1:{self.gw_port}"
        b, key, jwt = self.bin, os.path.join(self.secrets, "admission.key"), os.path.join(self.secrets, "jwt-k1.key")
        short = {} if self.long else SHORT_SETTINGS
        metrics = lambda port: (lambda: http_ok(f"http://127.0.0.1:{port}/readyz"))  # noqa: E731
        d = []
        d.append(Daemon("postgres", [os.path.join(self.root, "tools/pg-temp"), "run", "--dir",
                                     os.path.join(self.data, "postgres"), "--port", str(self.pg_port),
                                     "--db", "tiketi"],
                        self._pg_ready, program="postgres"))  # pg-temp execs the postmaster
        d.append(Daemon("redis", [os.path.join(self.root, "tools/redis-temp"), "run", "--dir",
                                  os.path.join(self.data, "redis"), "--port", str(self.redis_port)],
                        lambda: port_open(self.redis_port), program="redis-server"))
        for i, (g, m) in enumerate(self.shard_ports):
            d.append(Daemon(f"seatcored-{i}", [f"{b}/seatcored", "--listen", f"127.0.0.1:{g}", "--metrics-listen",
                                               f"127.0.0.1:{m}", "--shard-id", str(i), "--shards", self.shard_list,
                                               "--data-dir", self.shard_data_dir(i), "--token-key-file", key],
                            metrics(m)))
        d.append(Daemon("gateway-sim", [f"{b}/gateway-sim", "--listen", f"127.0.0.1:{self.gw_port}",
                                        "--hang-max-ms", "20000"], lambda: port_open(self.gw_port)))
        a, am = svc["auth"]
        d.append(Daemon("auth-svc", [f"{b}/auth-svc", "--listen", f"127.0.0.1:{a}", "--metrics-listen",
                                     f"127.0.0.1:{am}", "--database-url", self.pg_url, "--migrate", "--migrations-dir",
                                     os.path.join(self.root, "infra/db/migrations"), "--jwt-keys", f"k1={jwt}",
                                     "--jwt-current-kid", "k1", "--password-opslimit", "1", "--password-memlimit-kib",
                                     "8", "--access-ttl-s", "3600"],
                        metrics(am), {"AUTH_ADMIN_EMAIL": ADMIN_EMAIL, "AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD}))
        e, em = svc["event"]
        d.append(Daemon("event-svc", [f"{b}/event-svc", "--listen", f"127.0.0.1:{e}", "--metrics-listen",
                                      f"127.0.0.1:{em}", "--database-url", self.pg_url, "--redis-url", self.redis_url,
                                      "--seatcored-shards", self.shard_list], metrics(em)))
        q, qm = svc["queue"]
        d.append(Daemon("queue-svc", [f"{b}/queue-svc", "--listen", f"127.0.0.1:{q}", "--metrics-listen",
                                      f"127.0.0.1:{qm}", "--database-url", self.pg_url, "--redis-url", self.redis_url,
                                      "--seatcored-shards", self.shard_list], metrics(qm)))
        pa, pam = svc["payment"]
        d.append(Daemon("payment-svc", [f"{b}/payment-svc", "--listen", f"127.0.0.1:{pa}", "--metrics-listen",
                                        f"127.0.0.1:{pam}", "--database-url", self.pg_url, "--gateway-url",
                                        self.gateway_url] + short.get("payment-svc", []), metrics(pam)))
        r, rm = svc["reservation"]
        d.append(Daemon("reservation-svc", [f"{b}/reservation-svc", "--listen", f"127.0.0.1:{r}", "--metrics-listen",
                                            f"127.0.0.1:{rm}", "--database-url", self.pg_url, "--redis-url",
                                            self.redis_url, "--seatcored-shards", self.shard_list, "--payment-addr",
                                            f"127.0.0.1:{pa}", "--token-key-file", key]
                        + short.get("reservation-svc", []), metrics(rm)))
        d.append(Daemon("edge", [f"{b}/tiketi-edge", "--listen", f"127.0.0.1:{self.http_port}", "--auth-addr",
                                 f"127.0.0.1:{a}", "--event-addr", f"127.0.0.1:{e}", "--queue-addr", f"127.0.0.1:{q}",
                                 "--reservation-addr", f"127.0.0.1:{r}", "--payment-addr", f"127.0.0.1:{pa}",
                                 "--seatcored-shards", self.shard_list, "--redis-url", self.redis_url, "--jwt-keys",
                                 f"k1={jwt}", "--access-log=false"],
                        lambda: http_ok(f"{self.edge_url}/readyz")))
        self.daemons = d
        self.by_name = {x.name: x for x in d}

    def _pg_ready(self):
        if not port_open(self.pg_port):
            return False
        r = subprocess.run(["psql", self.pg_url, "-Atqc", "SELECT 1"], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, timeout=10)
        return r.returncode == 0 and r.stdout.strip() == b"1"

    def shard_metrics_url(self, shard):
        return f"http://127.0.0.1:{self.shard_ports[shard][1]}/metrics"

    def service_metrics_url(self, name):
        return f"http://127.0.0.1:{self.svc_ports[name][1]}/metrics"

    # ------------------------------------------------------------------------------------------
    def up(self, timeout_s=90):
        for path in (self.logs, self.data, self.secrets):
            os.makedirs(path, exist_ok=True)
        os.chmod(self.work, 0o755)  # PostgreSQL runs as its own user and must reach its data directory
        os.chmod(self.secrets, 0o700)
        for name, size in (("admission.key", 32), ("jwt-k1.key", 48)):
            with open(os.path.join(self.secrets, name), "wb") as f:
                f.write(os.urandom(size))
            os.chmod(os.path.join(self.secrets, name), 0o600)
        self._plan()
        self.wal_tmpfs = all(self._mount_tmpfs(self.shard_data_dir(i), WAL_TMPFS_MB) for i in range(SHARDS))
        self.log(f"stack: work dir {self.work}, edge {self.edge_url}, WAL on "
                 + (f"{WAL_TMPFS_MB} MiB tmpfs per shard" if self.wal_tmpfs else
                    "the work dir's disk (no mount: the WAL fault is a file size limit)"))
        for daemon in self.daemons:
            self._start(daemon, timeout_s)

    def _start(self, daemon, timeout_s):
        logf = open(os.path.join(self.logs, f"{daemon.name}.log"), "ab")
        logf.write(f"=== {time.strftime('%FT%T')} starting: {' '.join(daemon.argv)}\n".encode())
        logf.flush()
        # Output goes through a pipe that a thread of ours copies to the log file, not straight
        # into the file: a daemon's file size limit (the WAL fault without root) must not also
        # cut its log, or kill it and its supervisor on their next log line.
        daemon.supervisor = subprocess.Popen(
            [os.path.join(self.root, "tools/supervise"), daemon.name, "--"] + daemon.argv,
            cwd=self.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=self._env(daemon.env), start_new_session=True)
        self._record(f"{daemon.name} {daemon.supervisor.pid}")
        threading.Thread(target=copy_log, args=(daemon.supervisor.stdout, logf), name=f"log-{daemon.name}",
                         daemon=True).start()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if daemon.supervisor.poll() is not None:
                raise RuntimeError(f"{daemon.name}: its supervisor exited ({self.tail(daemon.name)})")
            if daemon.healthy():
                self.log(f"stack: {daemon.name} up (pid {daemon.pid()})")
                return
            time.sleep(0.2)
        raise RuntimeError(f"{daemon.name}: not healthy after {timeout_s}s\n{self.tail(daemon.name)}")

    def tail(self, name, lines=30):
        try:
            with open(os.path.join(self.logs, f"{name}.log"), errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def restarts(self):
        try:
            with open(os.path.join(self.logs, "restarts.log")) as f:
                return f.read().splitlines()
        except OSError:
            return []

    def down(self):
        """Stops every supervisor (it passes SIGTERM on to its daemon), newest first; then the
        tmpfs mounts. Safe to call twice."""
        for daemon in reversed(self.daemons):
            sup = daemon.supervisor
            if sup is None or sup.poll() is not None:
                continue
            pid = daemon.pid()
            if pid is not None:
                try:
                    os.kill(pid, signal.SIGCONT)  # a paused daemon cannot act on SIGTERM
                except OSError:
                    pass
                for child in children(pid):
                    try:
                        os.kill(child, signal.SIGCONT)
                    except OSError:
                        pass
            sup.send_signal(signal.SIGTERM)
        for daemon in reversed(self.daemons):
            sup = daemon.supervisor
            if sup is None:
                continue
            try:
                sup.wait(timeout=25)
            except subprocess.TimeoutExpired:
                pid = daemon.pid()
                if pid is not None:
                    os.kill(pid, signal.SIGKILL)
                sup.kill()
                sup.wait()
        for path in reversed(self.mounts):
            if subprocess.run(["umount", path], stderr=subprocess.DEVNULL).returncode != 0:
                subprocess.run(["umount", "-l", path], stderr=subprocess.DEVNULL)
        self.mounts = []

    def remove(self):
        shutil.rmtree(self.work, ignore_errors=True)
