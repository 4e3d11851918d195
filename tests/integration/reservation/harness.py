"""harness.py — shared helpers of the reservation-svc integration suite.

Independent clients only: Debian's python3-grpcio with stubs generated from proto/
(the `run` script puts them on PYTHONPATH), psql for fixtures and SQL checks,
urllib for the gateway simulator's ledger and faults, redis-py for the pending
records. Nothing here links the project's C code.

The harness owns reservation-svc: it starts it from the command line `run` wrote
(RSV_ARGS_FILE), tests may kill -9 and restart it (Service.crash / restart), and
after the tests it is stopped with SIGTERM and must exit 0 (counted as a test).

Environment (set by `run`):
  RSV_ADDR, RSV_METRICS_URL, RSV_ARGS_FILE   reservation-svc
  RSV_SHARDS                                 the seatcored shard list, in order
  PAYMENT_ADDR, SIM_URL                      payment-svc, gateway-sim
  PG_URL, REDIS_PORT, TOKEN_KEY_FILE, RSV_WORK

Run `harness.py --counts FILE MODULE...` to run test modules and write "passed failed".
"""
import base64
import hashlib
import hmac
import itertools
import json
import os
import signal
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import grpc

import health_pb2
from tiketi.v1 import payment_pb2
from tiketi.v1 import payment_pb2_grpc
from tiketi.v1 import reservation_pb2 as rpb
from tiketi.v1 import reservation_pb2_grpc
from tiketi.v1 import seatcore_pb2 as spb
from tiketi.v1 import seatcore_pb2_grpc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "support"))
import tk_harness  # noqa: E402  (tests/support, on the path just above)
from tk_harness import new_key  # noqa: E402  (the tests use it as harness.new_key)

RPC_TIMEOUT_S = 20.0
C = grpc.StatusCode


env = tk_harness.env_reader("tests/integration/reservation/run")


def wait_for(predicate, seconds, step=0.1):
    return tk_harness.wait_for(predicate, seconds, step)


# ---------------------------------------------------------------------------------------------
# gRPC
# ---------------------------------------------------------------------------------------------
rpc = tk_harness.rpc_with_timeout(RPC_TIMEOUT_S)


class Reservations(tk_harness.Client):
    def __init__(self, address):
        super().__init__(address, reservation_pb2_grpc.ReservationsStub)

    def hold(self, event_id, user_id, seats=None, count=0, section="", token="", key=None):
        request = rpb.CreateHoldRequest(event_id=str(event_id), user_id=str(user_id),
                                        seat_ids=[str(s) for s in seats or []], count=count, section=section,
                                        admission_token=token, idempotency_key=key if key is not None else new_key("hold"))
        return rpc(self.stub.CreateHold, request)

    def pay(self, reservation_id, user_id, card="tok_approve", key=None, timeout=RPC_TIMEOUT_S):
        request = rpb.PayRequest(reservation_id=reservation_id, user_id=str(user_id), method="card",
                                 card_token=card, idempotency_key=key if key is not None else new_key("pay"))
        return rpc(self.stub.Pay, request, timeout)

    def release(self, reservation_id, user_id):
        return rpc(self.stub.ReleaseHold, rpb.ReservationRef(reservation_id=reservation_id, user_id=str(user_id)))

    def get(self, reservation_id, user_id):
        return rpc(self.stub.GetReservation, rpb.ReservationRef(reservation_id=reservation_id, user_id=str(user_id)))

    def list(self, user_id, limit=0):
        return rpc(self.stub.ListReservations, rpb.ListReservationsRequest(user_id=str(user_id), limit=limit))

    def cancel(self, reservation_id, user_id):
        return rpc(self.stub.CancelReservation,
                   rpb.ReservationRef(reservation_id=reservation_id, user_id=str(user_id)))

    def serving(self):
        try:
            return self.health.Check(health_pb2.HealthCheckRequest(), timeout=0.5).status == \
                health_pb2.HealthCheckResponse.SERVING
        except grpc.RpcError:
            return False


# ---------------------------------------------------------------------------------------------
# The engine: routing (jump hash, as rpc_router.c and seatcored compute it) and calls
# ---------------------------------------------------------------------------------------------
class Engine:
    def __init__(self, shards):
        self.addresses = shards.split(",")
        self.stubs = [seatcore_pb2_grpc.SeatCoreStub(grpc.insecure_channel(a)) for a in self.addresses]

    def shard_of(self, event_id):
        return tk_harness.shard_of(event_id, len(self.addresses))

    def stub(self, event_id):
        return self.stubs[self.shard_of(event_id)]

    def states(self, event_id):
        """[0 free | 1 held | 2 sold] per seat."""
        result = rpc(self.stub(event_id).GetAvailability, spb.EventRef(event_id=int(event_id)))
        assert result.ok, str(result)
        return tk_harness.decode_states(result.reply.states, result.reply.capacity)

    def get_hold(self, event_id, user_id, hold_id):
        return rpc(self.stub(event_id).GetHold, spb.HoldRef(event_id=int(event_id), user_id=int(user_id),
                                                           hold_id=hold_id))

    def admission_token(self, event_id, user_id):
        result = rpc(self.stub(event_id).QueueJoin, spb.QueueRequest(event_id=int(event_id), user_id=int(user_id)))
        assert result.ok and result.reply.admission_token, str(result)
        return result.reply.admission_token


def hold_id_of(reservation_id):
    assert reservation_id.startswith("rsv_") and len(reservation_id) == 36, reservation_id
    return int(reservation_id[20:], 16)


def uuid_of(reservation_id):
    h = reservation_id[4:]
    return f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def forge_token(key, event_id, user_id, expires_ms=None, ticket=0):
    """An admission token in seatcore/token.h's format, signed with key (bytes)."""
    expires_ms = expires_ms if expires_ms is not None else int(time.time() * 1000) + 600000
    signed = struct.pack("<BQQQq", 1, int(event_id), int(user_id), ticket, expires_ms)
    mac = hmac.new(key, b"tiketi.admission" + signed, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(signed + mac).decode().rstrip("=")


def token_key():
    with open(env("TOKEN_KEY_FILE"), "rb") as f:
        return f.read()


# ---------------------------------------------------------------------------------------------
# HTTP: the simulator and /metrics
# ---------------------------------------------------------------------------------------------
def http(method, url, body=None, timeout=10.0):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    text = raw.decode("utf-8", "replace")
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


class Sim:
    def __init__(self, url):
        self.url = url.rstrip("/")

    def ledger(self, payment_id):
        status, body = http("GET", f"{self.url}/v1/_sim/ledger?payment_id={payment_id}")
        assert status == 200, (status, body)
        return body

    def faults(self, **knobs):
        status, body = http("POST", f"{self.url}/v1/_sim/faults", knobs)
        assert status == 200, (status, body)
        return body


def metrics_text():
    return tk_harness.metrics_text(env("RSV_METRICS_URL"), timeout=10)


def metric(name, **labels):
    return tk_harness.metric_value(metrics_text(), name, **labels)


# ---------------------------------------------------------------------------------------------
# PostgreSQL (psql): fixtures and reads
# ---------------------------------------------------------------------------------------------
class SqlError(AssertionError):
    pass


def sql(query, *params):
    """Runs statements through psql (values as psql variables, quoted by psql: :'p1')."""
    args = ["psql", env("PG_URL"), "-v", "ON_ERROR_STOP=1", "-qAtX", "-F", "|"]
    for i, value in enumerate(params, 1):
        args += ["-v", f"p{i}={value}"]
    done = subprocess.run(args, input=query, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise SqlError(done.stderr.strip())
    return [line.split("|") for line in done.stdout.splitlines() if line]


def reservation_row(reservation_id):
    """(status, saga state, payment id, [seat, confirmed]...) or None."""
    rows = sql("SELECT r.status, coalesce(s.state, ''), coalesce(s.payment_id::text, ''), "
               "coalesce(s.card_token, '') FROM reservations r LEFT JOIN sagas s ON s.reservation_id = r.id "
               "WHERE r.id = :'p1';", uuid_of(reservation_id))
    return rows[0] if rows else None


def sold_seats_in_db(event_id):
    return sorted(int(r[0]) for r in sql("SELECT seat FROM reservation_seats WHERE event_id = :'p1' AND confirmed;",
                                         event_id))


def payments_of(reservation_id):
    return [r[0] for r in sql("SELECT id FROM payments WHERE reservation_id = :'p1';", uuid_of(reservation_id))]


def plant_saga(reservation_id, user, event_id, seats, amount, state="paying", card="", payment_id="",
               expires_in_s=60, next_attempt_in_s=0):
    """The rows a Pay writes in its first transaction (or further on), as a crash leaves them."""
    hold_id = hold_id_of(reservation_id)
    sql("BEGIN;"
        "INSERT INTO reservations (id, user_id, event_id, hold_id, status, amount_cents, expires_at) VALUES "
        "(:'p1', :'p2', :'p3', :'p4', 'paying', :'p5', now() + make_interval(secs => :'p6'));"
        "INSERT INTO reservation_seats (reservation_id, event_id, seat) "
        "SELECT :'p1', :'p3', unnest(string_to_array(:'p7', ',')::int[]);"
        "INSERT INTO sagas (reservation_id, state, card_token, payment_id, next_attempt_at) VALUES "
        "(:'p1', :'p8', nullif(:'p9', ''), nullif(:'p10', '')::uuid, now() + make_interval(secs => :'p11'));"
        "COMMIT;",
        uuid_of(reservation_id), user, event_id, hold_id if hold_id < 1 << 63 else hold_id - (1 << 64), amount,
        expires_in_s, ",".join(str(s) for s in seats), state, card, payment_id, next_attempt_in_s)


def charge_directly(reservation_id, user, amount, card="tok_approve"):
    """payment-svc Charge with the reservation's own key, as the saga would send it."""
    stub = payment_pb2_grpc.PaymentsStub(grpc.insecure_channel(env("PAYMENT_ADDR")))
    request = payment_pb2.ChargeRequest(reservation_id=uuid_of(reservation_id), user_id=str(user),
                                        amount_cents=amount, currency="EUR", card_token=card,
                                        idempotency_key=f"rsv-charge-{uuid_of(reservation_id)}")
    return rpc(stub.Charge, request)


_names = itertools.count(1)


def make_user():
    email = f"rsv-{uuid.uuid4().hex[:12]}@test.local"
    return int(sql("INSERT INTO users (email, name, password_hash) VALUES (:'p1', 'Buyer', 'x') RETURNING id;",
                   email)[0][0])


DEFAULT_SECTIONS = (("Floor", 2, 5, 5000), ("Balcony", 1, 5, 9000))  # seats 0..9 and 10..14


def make_event(engine, sections=DEFAULT_SECTIONS, hold_ttl_ms=60000, max_seats_per_user=6, queue=False):
    """A catalog event (as event-svc writes it: venue, event, sections, seats) and its engine event
    on the owning shard. Two psql runs: the id first (the shard depends on it), then the rows."""
    event_id = int(sql("SELECT nextval('event_ids');")[0][0])
    capacity = sum(r * n for _, r, n, _ in sections)
    script = ["INSERT INTO venues (name) VALUES (:'p1');",
              "INSERT INTO events (id, name, venue_id, starts_at, sale_opens_at, shard, capacity, hold_ttl_s, "
              "max_seats_per_user, queue_enabled, admit_per_s, max_active) SELECT :'p2', :'p3', v.id, "
              "now() + interval '30 days', now(), :'p4', :'p5', :'p6', :'p7', :'p8', :'p9', :'p9' "
              "FROM venues v WHERE v.name = :'p1';"]
    params = [f"venue {uuid.uuid4()}", event_id, f"reservation tests {next(_names)}", engine.shard_of(event_id),
              capacity, max(1, hold_ttl_ms // 1000), max_seats_per_user, "true" if queue else "false",
              100 if queue else 0]
    first = 0
    for idx, (name, rows, per_row, price) in enumerate(sections):
        script.append(f"INSERT INTO sections (event_id, idx, name, rows, seats_per_row, price_cents, first_seat) "
                      f"VALUES (:'p2', {idx}, '{name}', {rows}, {per_row}, {price}, {first});")
        first += rows * per_row
    script.append("INSERT INTO seats (event_id, seat, section_idx, row_number, seat_number, label, price_cents) "
                  "SELECT s.event_id, s.first_seat + (r.n - 1) * s.seats_per_row + (c.n - 1), s.idx, r.n, c.n, "
                  "s.name || '-' || r.n || '-' || c.n, s.price_cents FROM sections s "
                  "CROSS JOIN LATERAL generate_series(1, s.rows) AS r(n) "
                  "CROSS JOIN LATERAL generate_series(1, s.seats_per_row) AS c(n) WHERE s.event_id = :'p2';")
    script.append("UPDATE events SET engine_state = 'ready', status = 'on_sale' WHERE id = :'p2';")
    sql("\n".join(script), *params)
    request = spb.CreateEventRequest(
        event_id=event_id, hold_ttl_ms=hold_ttl_ms, max_seats_per_user=max_seats_per_user,
        sections=[spb.Section(name=n, rows=r, seats_per_row=p, price_cents=c) for n, r, p, c in sections],
        queue=spb.QueueSettings(enabled=queue, admit_per_s=100 if queue else 0, max_active=100 if queue else 0))
    result = rpc(engine.stub(event_id).CreateEvent, request)
    assert result.ok, str(result)
    return event_id


# ---------------------------------------------------------------------------------------------
# reservation-svc, owned by the harness
# ---------------------------------------------------------------------------------------------
class Service:
    def __init__(self):
        with open(env("RSV_ARGS_FILE")) as f:
            self.argv = [line.rstrip("\n") for line in f if line.strip()]
        self.log_path = os.path.join(env("RSV_WORK"), "logs", "reservation-svc.log")
        self.proc = None
        self.client = Reservations(env("RSV_ADDR"))

    def start(self, seconds=30.0):
        self.proc = tk_harness.spawn(self.argv, self.log_path, env("RSV_WORK"))
        if not wait_for(lambda: self.client.serving() or self.proc.poll() is not None, seconds, 0.05) or \
                self.proc.poll() is not None:
            raise AssertionError(f"reservation-svc did not become SERVING (exit {self.proc.poll()}); "
                                 f"see {self.log_path}")

    def crash(self):
        """kill -9: no shutdown of any kind."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def restart(self):
        self.start()

    def terminate(self, seconds=20.0):
        """SIGTERM; the exit status (None if it had to be killed)."""
        return tk_harness.terminate(self.proc, seconds) if self.proc is not None else None


SERVICE = None  # set by main()


class TestCase(tk_harness.ServiceTestCase):
    """Clients, fixtures and assertions every test module shares."""

    @classmethod
    def setUpClass(cls):
        cls.svc = SERVICE
        cls.rsv = SERVICE.client
        cls.engine = Engine(env("RSV_SHARDS"))
        cls.sim = Sim(env("SIM_URL"))

    def buyer(self, event_id):
        """A new user with an admission token for the event (from the engine's waiting room)."""
        user = make_user()
        return user, self.engine.admission_token(event_id, user)

    def hold(self, event_id, user, token, seats=None, **fields):
        return self.assertOk(self.rsv.hold(event_id, user, seats=seats, token=token, **fields), "hold")

    def pay_until_decided(self, reservation_id, user, card="tok_approve", key=None, seconds=30.0):
        """Pays, repeating (same key) while the outcome is unknown or another driver holds the saga."""
        key = key or new_key("pay")
        deadline = time.monotonic() + seconds
        while True:
            result = self.rsv.pay(reservation_id, user, card=card, key=key)
            undecided = result.code == C.UNAVAILABLE and result.error_code in ("payment_unavailable",
                                                                               "payment_in_progress", "unavailable")
            if not undecided or time.monotonic() > deadline:
                return result
            time.sleep(0.3)

    def assertSeats(self, event_id, seats, state, what=""):
        states = self.engine.states(event_id)
        self.assertEqual([states[s] for s in seats], [state] * len(seats), f"engine seat states {what}")

    def assertOneCharge(self, payment_id, refunds=0):
        ledger = self.sim.ledger(payment_id)
        self.assertEqual((ledger["charges"], ledger["refunds"]), (1, refunds), f"ledger of {payment_id}: {ledger}")

    def assertNoCharge(self, reservation_id):
        for payment_id in payments_of(reservation_id):
            ledger = self.sim.ledger(payment_id)
            self.assertEqual(ledger["charges"], 0, f"ledger of {payment_id}: {ledger}")


# ---------------------------------------------------------------------------------------------
# Runner
# ---------------------------------------------------------------------------------------------
class _TimedResult(tk_harness.TimedResult):
    """Shows each test's duration after its verdict (the suite has a time budget)."""

    def _took(self):
        if self.showAll:
            self.stream.write(f"[{self.took():.1f}s] ")

    def addSuccess(self, test):
        self._took()
        super().addSuccess(test)

    def addFailure(self, test, err):
        self._took()
        super().addFailure(test, err)

    def addError(self, test, err):
        self._took()
        super().addError(test, err)


def main(argv):
    import harness as shared  # the module the tests import (this file runs as __main__)
    counts_path, names = tk_harness.runner_args(argv)
    SERVICE = shared.SERVICE = shared.Service()
    SERVICE.start()
    result = tk_harness.run_tests(names, _TimedResult)
    passed, failed, _ = tk_harness.tally(result)
    alive = SERVICE.proc.poll() is None
    print(f"check: reservation-svc still running after the tests ... {'ok' if alive else 'FAIL'}")
    rc = SERVICE.terminate()
    print(f"check: reservation-svc exits 0 on SIGTERM ... {'ok' if rc == 0 else f'FAIL (status {rc})'}")
    passed += int(alive) + int(rc == 0)
    failed += int(not alive) + int(rc != 0)
    tk_harness.write_counts(counts_path, passed, failed)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
