"""harness.py — shared helpers of the payment integration suite.

Independent clients only: Debian's python3-grpcio with stubs generated from
proto/ (the `run` script puts them on PYTHONPATH), urllib and raw sockets for
the gateway simulator's HTTP, psql for fixtures and for reading the tables.
Nothing here links the project's C code.

Environment (set by `run`):
  PAYMENT_ADDR, PAYMENT_METRICS_URL   the shared payment-svc (gRPC, http://host:port)
  SIM_URL                             the shared gateway-sim (http://host:port)
  PG_URL                              the throwaway PostgreSQL (migrated)
  PAYMENT_BIN, SIM_BIN                binaries, for tests that start their own pair
  PAYMENT_WORK                        the suite's temp dir (logs/, daemon.pids)
  FREE_PORT                           tools/free-port
  MIGRATIONS_DIR                      infra/db/migrations

Run `harness.py --counts FILE MODULE...` to run test modules and write "passed failed".
"""
import json
import os
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import uuid

import grpc

import health_pb2
from tiketi.v1 import payment_pb2 as pb
from tiketi.v1 import payment_pb2_grpc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "support"))
import tk_harness  # noqa: E402  (tests/support, on the path just above)
from tk_harness import new_key, wait_for  # noqa: E402  (the tests use them as harness.*)

RPC_TIMEOUT_S = 10.0
TEST_CARDS = ("tok_approve", "tok_decline", "tok_slow", "tok_error")


env = tk_harness.env_reader("tests/integration/payment/run")


# ---------------------------------------------------------------------------------------------
# gRPC
# ---------------------------------------------------------------------------------------------
rpc = tk_harness.rpc_with_timeout(RPC_TIMEOUT_S)


class Client(tk_harness.Client):
    def __init__(self, address):
        super().__init__(address, payment_pb2_grpc.PaymentsStub)

    def charge(self, reservation_id, user_id, amount=1500, card="tok_approve", key=None, currency="EUR",
               timeout=RPC_TIMEOUT_S):
        request = pb.ChargeRequest(reservation_id=reservation_id, user_id=str(user_id), amount_cents=amount,
                                   currency=currency, card_token=card, idempotency_key=key if key is not None else new_key("charge"))
        return rpc(self.stub.Charge, request, timeout)

    def refund(self, payment_id, amount=0, key=None, timeout=RPC_TIMEOUT_S):
        request = pb.RefundRequest(payment_id=payment_id, amount_cents=amount, idempotency_key=key if key is not None else new_key("refund"))
        return rpc(self.stub.Refund, request, timeout)

    def get(self, payment_id, timeout=RPC_TIMEOUT_S):
        return rpc(self.stub.GetPayment, pb.PaymentRef(payment_id=payment_id), timeout)

    def serving(self):
        try:
            status = self.health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0).status
            return status == health_pb2.HealthCheckResponse.SERVING
        except grpc.RpcError:
            return False


# ---------------------------------------------------------------------------------------------
# HTTP: the simulator and /metrics
# ---------------------------------------------------------------------------------------------
def http(method, url, body=None, headers=None, timeout=10.0):
    """Returns (status, headers dict lower-cased, parsed JSON or raw text)."""
    data = None
    if body is not None:
        data = body if isinstance(body, (bytes, bytearray)) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, head, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        status, head, raw = err.code, err.headers, err.read()
    text = raw.decode("utf-8", "replace")
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = text
    return status, {k.lower(): v for k, v in head.items()}, parsed


class Sim:
    def __init__(self, url):
        self.url = url.rstrip("/")

    def ledger(self, payment_id=None, intent=None):
        query = []
        if payment_id:
            query.append(f"payment_id={payment_id}")
        if intent:
            query.append(f"payment_intent={intent}")
        status, _, body = http("GET", f"{self.url}/v1/_sim/ledger" + ("?" + "&".join(query) if query else ""))
        assert status == 200, (status, body)
        return body

    def faults(self, **knobs):
        if knobs:
            status, _, body = http("POST", f"{self.url}/v1/_sim/faults", knobs)
        else:
            status, _, body = http("GET", f"{self.url}/v1/_sim/faults")
        return status, body

    def clear_faults(self):
        status, body = self.faults(latency_ms=0, error_rate=0, hang=False, drop=0)
        assert status == 200, body

    def post(self, path, body, key=None, timeout=10.0):
        headers = {"Idempotency-Key": key} if key else {}
        return http("POST", self.url + path, body, headers, timeout)

    def healthy(self):
        try:
            return http("GET", f"{self.url}/healthz", timeout=2.0)[0] == 200
        except OSError:
            return False


def raw_exchange(address, payload, timeout=5.0, read=True):
    """Sends raw bytes to host:port and returns what comes back until close (or timeout)."""
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        if payload:
            s.sendall(payload)
        if not read:
            return b""
        chunks = []
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except (socket.timeout, ConnectionResetError):
            pass  # a server that refuses a request may reset the rest: what it answered is kept
        return b"".join(chunks)


def metrics_text(metrics_url):
    return tk_harness.metrics_text(metrics_url, timeout=10)


def metric(metrics_url, name, **labels):
    """The value of one sample (labels must match exactly those given, in any order), or None."""
    return tk_harness.metric_value(metrics_text(metrics_url), name, **labels)


def breaker_state(metrics_url, gateway="card"):
    return metric(metrics_url, "tiketi_payment_breaker_state", gateway=gateway)


# ---------------------------------------------------------------------------------------------
# PostgreSQL (psql): fixtures and reads
# ---------------------------------------------------------------------------------------------
def _literal(value):
    return "'" + str(value).replace("'", "''") + "'"


class _Psql:
    """One long-lived psql session: a fork per query costs a third of a second on a busy machine."""

    def __init__(self, url):
        self.proc = subprocess.Popen(["psql", url, "-qAtX", "-F", "|", "-v", "ON_ERROR_STOP=0"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, bufsize=1)

    def run(self, query):
        self.proc.stdin.write(query.rstrip().rstrip(";") + ";\n\\echo __END__\n")
        self.proc.stdin.flush()
        lines = []
        while True:
            line = self.proc.stdout.readline()
            if line == "":
                raise AssertionError("psql exited")
            line = line.rstrip("\n")
            if line == "__END__":
                return lines
            lines.append(line)


_psql = None
_psql_lock = threading.Lock()


def sql(query, *params):
    """Runs one statement; :'p1', :'p2'... are replaced by quoted literals. Returns rows of text."""
    global _psql
    for i in range(len(params), 0, -1):
        query = query.replace(f":'p{i}'", _literal(params[i - 1]))
    with _psql_lock:
        if _psql is None or _psql.proc.poll() is not None:
            _psql = _Psql(env("PG_URL"))
        lines = _psql.run(query)
    errors = [line for line in lines if line.startswith(("psql:", "ERROR:"))]
    if errors:
        raise AssertionError(f"psql: {' '.join(errors)}\n{query}")
    return [line.split("|") for line in lines if line]


_fixture_lock = threading.Lock()
_event_id = None


def _event():
    global _event_id
    with _fixture_lock:
        if _event_id is None:
            venue = sql("INSERT INTO venues (name) VALUES (:'p1') RETURNING id;", f"venue {uuid.uuid4()}")[0][0]
            _event_id = sql(
                "INSERT INTO events (name, venue_id, starts_at, sale_opens_at, shard, capacity, hold_ttl_s, "
                "max_seats_per_user) VALUES ('payment tests', :'p1', now() + interval '30 days', now(), 0, 100, "
                "600, 10) RETURNING id;", venue)[0][0]
        return _event_id


def make_user():
    email = f"pay-{uuid.uuid4().hex[:12]}@test.local"
    return int(sql("INSERT INTO users (email, name, password_hash) VALUES (:'p1', 'Payer', 'x') RETURNING id;",
                   email)[0][0])


def make_reservation(user_id, amount=1500):
    reservation = str(uuid.uuid4())
    sql("INSERT INTO reservations (id, user_id, event_id, hold_id, status, amount_cents, expires_at) "
        "VALUES (:'p1', :'p2', :'p3', 1, 'paying', :'p4', now() + interval '10 minutes');",
        reservation, user_id, _event(), amount)
    return reservation


def payment_row(payment_id):
    rows = sql("SELECT status, coalesce(gateway_ref,''), coalesce(decline_reason,''), coalesce(card_hint,''), "
               "amount_cents FROM payments WHERE id = :'p1';", payment_id)
    return rows[0] if rows else None


def attempts(payment_id, operation=None):
    """[(operation, attempt, http_status, outcome)] in order."""
    rows = sql("SELECT operation, attempt, coalesce(http_status::text,''), outcome FROM payment_attempts "
               "WHERE payment_id = :'p1' ORDER BY id;", payment_id)
    return [r for r in rows if operation is None or r[0] == operation]


def payment_id_for_key(key):
    rows = sql("SELECT id FROM payments WHERE idempotency_key = :'p1';", key)
    return rows[0][0] if rows else None


# ---------------------------------------------------------------------------------------------
# Daemons: a gateway-sim + payment-svc pair with its own flags
# ---------------------------------------------------------------------------------------------
class Daemon:
    def __init__(self, name, argv, log_path):
        self.name, self.argv, self.log_path = name, argv, log_path
        self.proc = tk_harness.spawn(argv, log_path, env("PAYMENT_WORK"))

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=15.0):
        """SIGTERM; returns the exit status (None if it had to be killed)."""
        return tk_harness.terminate(self.proc, timeout)


class Pair:
    """A gateway-sim and a payment-svc talking to it, on fresh ports, with extra flags."""

    def __init__(self, name, svc_flags=(), sim_flags=()):
        self.name = name
        logs = os.path.join(env("PAYMENT_WORK"), "logs")
        for attempt in range(3):  # a probed port can be taken before the daemon binds it
            sim_port, grpc_port, metrics_port = tk_harness.free_ports(3)
            self.sim_url = f"http://127.0.0.1:{sim_port}"
            self.sim = Daemon(f"{name}-sim", [env("SIM_BIN"), "--listen", f"127.0.0.1:{sim_port}",
                                             "--log-level", "warn", *sim_flags], os.path.join(logs, f"{name}-sim.log"))
            if not wait_for(lambda: Sim(self.sim_url).healthy() or not self.sim.alive(), 10) or not self.sim.alive():
                self.sim.stop()
                continue
            self.address = f"127.0.0.1:{grpc_port}"
            self.metrics_url = f"http://127.0.0.1:{metrics_port}"
            self.svc = Daemon(f"{name}-svc", [env("PAYMENT_BIN"), "--listen", self.address,
                                             "--metrics-listen", f"127.0.0.1:{metrics_port}",
                                             "--database-url", env("PG_URL"), "--gateway-url", self.sim_url,
                                             "--grace-ms", "5000", *svc_flags],
                              os.path.join(logs, f"{name}-svc.log"))
            # wait for the port first: a gRPC channel that found nobody listening backs off for a second or more
            port_open = wait_for(lambda: tk_harness.port_open(self.address) or not self.svc.alive(), 15)
            if not port_open or not self.svc.alive():
                self.sim.stop()
                self.svc.stop()
                continue
            self.client = Client(self.address)
            if wait_for(lambda: self.client.serving() or not self.svc.alive(), 15) and self.svc.alive():
                self.sim_api = Sim(self.sim_url)
                return
            self.client.close()
            self.svc.stop()
            self.sim.stop()
        raise AssertionError(f"pair {name} did not start (logs in {logs})")

    def stop(self):
        self.client.close()
        svc_rc = self.svc.stop()
        sim_rc = self.sim.stop()
        return svc_rc, sim_rc


def shared_client():
    return Client(env("PAYMENT_ADDR"))


def shared_sim():
    return Sim(env("SIM_URL"))


# ---------------------------------------------------------------------------------------------
# Runner
# ---------------------------------------------------------------------------------------------
class _Result(tk_harness.TimedResult):
    """Prints how long each test took (the suite has a time budget)."""

    def stopTest(self, test):
        super().stopTest(test)
        self.stream.writeln(f"    ({self.took():.1f}s)")


def main(argv):
    counts_path, names = tk_harness.runner_args(argv)
    result = tk_harness.run_tests(names, _Result)
    passed, failed, _ = tk_harness.tally(result)
    tk_harness.write_counts(counts_path, passed, failed)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
