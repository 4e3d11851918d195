"""Durability through crashes and restarts, seen from outside: a durable seatcored (temp
--data-dir) under Hold/Confirm/Release load from several threads is killed (-9) or stopped
(SIGTERM) and started again on the same data; every reply the client got OK for must still be
true. Each test starts its own daemons (harness.Daemon)."""
import os
import random
import resource
import shutil
import signal
import subprocess
import threading
import time
import unittest
from dataclasses import dataclass, field

import grpc

from harness import HELD, SOLD, Client, Daemon, SeatcoreTestCase, env, pb, rpc, section

C = grpc.StatusCode
THREADS = 6
USERS_PER_THREAD = 10
LOAD_ACKS = 900       # acknowledged operations to reach before the crash ...
LOAD_MAX_S = 2.0      # ... or this much time
SHORT_TTL_MS = 1000
OTHER_USER = 900_000  # added to a buyer's id: a user that certainly did not buy the seat


@dataclass
class HoldRecord:
    event_id: int
    hold_id: int
    user_id: int
    seats: list
    key: str
    end: str = None          # "confirm" or "release" once one was attempted (acknowledged or not)
    end_key: str = ""
    end_acked: bool = False


@dataclass
class LoadStats:
    acked: int = 0
    refused: dict = field(default_factory=dict)  # status name -> count


class Load:
    """THREADS threads hold 1-3 random seats (with an idempotency key), then confirm (with a key)
    or release some of their holds. Every OK reply is recorded; nothing else is trusted."""

    def __init__(self, address, events, seed):
        self.address = address
        self.events = events  # [(event_id, capacity, weight)]
        self.seed = seed
        self.holds = []       # HoldRecord of every acknowledged hold
        self.stats = LoadStats()
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(THREADS)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join(15)
        assert not any(t.is_alive() for t in self.threads), "load threads did not stop"

    def acked(self):
        with self.lock:
            return self.stats.acked

    def _note(self, result):
        with self.lock:
            if result.ok:
                self.stats.acked += 1
            else:
                self.stats.refused[result.code.name] = self.stats.refused.get(result.code.name, 0) + 1

    def _run(self, n):
        rng = random.Random(self.seed * 100 + n)
        client = Client(self.address)
        stub = client.stub
        users = [1 + n * 1000 + i for i in range(USERS_PER_THREAD)]
        live = []
        seq = 0
        weights = [w for _, _, w in self.events]
        try:
            while not self.stop_flag.is_set():
                seq += 1
                if live and rng.random() < 0.45:
                    rec = live.pop(rng.randrange(len(live)))
                    ref = dict(event_id=rec.event_id, user_id=rec.user_id, hold_id=rec.hold_id)
                    if rng.random() < 0.6:
                        rec.end, rec.end_key = "confirm", f"c-{self.seed}-{n}-{seq}"
                        result = rpc(stub.Confirm, pb.ConfirmRequest(idempotency_key=rec.end_key, **ref), timeout=3)
                    else:
                        rec.end = "release"
                        result = rpc(stub.Release, pb.HoldRef(**ref), timeout=3)
                    rec.end_acked = result.ok
                else:
                    event_id, capacity, _ = rng.choices(self.events, weights)[0]
                    seats = rng.sample(range(capacity), rng.randint(1, 3))
                    user = rng.choice(users)
                    key = f"h-{self.seed}-{n}-{seq}"
                    result = rpc(stub.Hold, pb.HoldRequest(event_id=event_id, user_id=user, seats=seats,
                                                           idempotency_key=key), timeout=3)
                    if result.ok:
                        rec = HoldRecord(event_id, result.reply.hold_id, user, sorted(result.reply.seats), key)
                        with self.lock:
                            self.holds.append(rec)
                        live.append(rec)
                self._note(result)
                if result.code in (C.UNAVAILABLE, C.DEADLINE_EXCEEDED):
                    time.sleep(0.02)  # the daemon is down: do not spin
        finally:
            client.close()


class DurabilityTest(SeatcoreTestCase):
    """Not the shared daemon: every test runs its own durable seatcored."""

    @classmethod
    def setUpClass(cls):
        cls.work = env("TK_IT_WORK")
        env("TK_IT_SEATCORED")

    @classmethod
    def tearDownClass(cls):
        pass

    def setUp(self):
        self.daemons = []
        self.clients = []
        self.data_dir = os.path.join(self.work, f"data-{self._testMethodName}")
        os.makedirs(self.data_dir)
        self.seed = int(os.environ.get("TK_TEST_SEED", random.randrange(1, 10 ** 9)))
        print(f"\n  {self._testMethodName}: seed {self.seed} (replay with TK_TEST_SEED={self.seed})", end=" ")

    def tearDown(self):
        for client in self.clients:
            client.close()
        for daemon in self.daemons:
            daemon.kill()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def close_clients(self):
        for client in self.clients:
            client.close()
        self.clients = []

    def start_daemon(self, name, preexec=None):
        daemon = Daemon(name, data_dir=self.data_dir, grace_ms=3000, preexec=preexec).start()
        self.daemons.append(daemon)
        client = Client(daemon.address)
        self.clients.append(client)
        self.stub = client.stub
        return daemon

    def make_events(self):
        long_ttl = self.create_event([section("A", 40, 100, 1000)], hold_ttl_ms=600000, max_seats_per_user=100,
                                     holds_max=4000)
        short_ttl = self.create_event([section("S", 4, 100, 500)], hold_ttl_ms=SHORT_TTL_MS, max_seats_per_user=100,
                                      holds_max=400)
        return long_ttl, short_ttl

    def run_load_until_crash(self, daemon, events, crash):
        load = Load(daemon.address, events, self.seed).start()
        started = time.monotonic()
        while load.acked() < LOAD_ACKS and time.monotonic() - started < LOAD_MAX_S:
            time.sleep(0.02)
        self.assertGreater(load.acked(), 50, f"the load made little progress: {load.stats}")
        outcome = crash()
        load.stop()
        return load, outcome

    # ---- what must hold after the restart ----
    def verify_acknowledged(self, load, long_ttl, short_ttl, restarted_at):
        """Every acknowledged operation survived; no seat sold twice; short-TTL holds expire."""
        holds = load.holds
        self.assertGreater(len(holds), 10, f"too few acknowledged holds to say anything: {load.stats}")
        events = {long_ttl.event_id: long_ttl, short_ttl.event_id: short_ttl}
        for event_id, info in events.items():
            got = self.assertOk(rpc(self.stub.GetEvent, pb.EventRef(event_id=event_id)), f"event {event_id} after "
                                "the restart")
            self.assertEqual(got.capacity, info.capacity)

        states = {}
        for event_id in events:
            avail, states[event_id] = self.availability(event_id)
            self.assertEqual(avail.free + avail.held + avail.sold, avail.capacity)

        # acknowledged confirms: their seats are sold, and no seat is in two of them
        sold_by = {}
        for rec in holds:
            if rec.end == "confirm" and rec.end_acked:
                for seat in rec.seats:
                    where = (rec.event_id, seat)
                    self.assertNotIn(where, sold_by, f"seat {where} acknowledged as sold to users "
                                                     f"{sold_by.get(where)} and {rec.user_id}")
                    sold_by[where] = rec.user_id
                    self.assertEqual(states[rec.event_id][seat], SOLD,
                                     f"seat {seat} of event {rec.event_id}: confirm of hold {rec.hold_id} for "
                                     f"user {rec.user_id} was acknowledged, but the seat is not sold")

        # seats are only sold by a confirm: every sold seat belongs to a hold we tried to confirm
        confirm_tried = {}
        for rec in holds:
            if rec.end == "confirm":
                for seat in rec.seats:
                    confirm_tried.setdefault((rec.event_id, seat), set()).add(rec.user_id)
        for event_id, seat_states in states.items():
            for seat, state in enumerate(seat_states):
                if state == SOLD:
                    self.assertIn((event_id, seat), confirm_tried,
                                  f"seat {seat} of event {event_id} is sold, but no confirm covered it")

        # acknowledged holds on the long-TTL event
        held_by = {}  # seat -> hold id, over the holds that are still there: one hold per seat
        for rec in holds:
            if rec.event_id != long_ttl.event_id:
                continue
            ref = pb.HoldRef(event_id=rec.event_id, user_id=rec.user_id, hold_id=rec.hold_id)
            got = rpc(self.stub.GetHold, ref)
            label = f"hold {rec.hold_id} (user {rec.user_id}, seats {rec.seats}, end {rec.end}, acked {rec.end_acked})"
            if got.ok:
                for seat in got.reply.seats:
                    self.assertNotIn(seat, held_by, f"seat {seat} is in hold {held_by.get(seat)} and in {label}")
                    held_by[seat] = rec.hold_id
            if rec.end is None:
                reply = self.assertOk(got, f"{label}: acknowledged and never ended, so it must still be there")
                self.assertEqual((reply.user_id, sorted(reply.seats)), (rec.user_id, rec.seats), label)
                self.assertEqual([states[rec.event_id][s] for s in rec.seats], [HELD] * len(rec.seats), label)
            elif rec.end_acked:
                self.assertFails(got, C.NOT_FOUND, "not_found", f"{label}: ended and acknowledged, must be gone")
            elif rec.end == "confirm":  # unknown outcome: still held by the user, or sold
                if got.ok:
                    self.assertEqual((got.reply.user_id, sorted(got.reply.seats)), (rec.user_id, rec.seats), label)
                else:
                    self.assertEqual([states[rec.event_id][s] for s in rec.seats], [SOLD] * len(rec.seats),
                                     f"{label}: the hold is gone ({got}) but its seats are not all sold")
            elif got.ok:  # a release of unknown outcome: if the hold is there, it is unchanged
                self.assertEqual((got.reply.user_id, sorted(got.reply.seats)), (rec.user_id, rec.seats), label)

        # short-TTL holds have expired a little after the restart (TTL + 1 s, plus slack)
        def short_ttl_drained():
            avail, _ = self.availability(short_ttl.event_id)
            return avail.held == 0

        self.poll(short_ttl_drained, max(0.5, restarted_at + SHORT_TTL_MS / 1000 + 2.5 - time.monotonic()),
                  what=f"every {SHORT_TTL_MS} ms hold expired after the restart")
        for rec in holds:
            if rec.event_id == short_ttl.event_id and rec.end is None:
                got = rpc(self.stub.GetHold, pb.HoldRef(event_id=rec.event_id, user_id=rec.user_id,
                                                        hold_id=rec.hold_id))
                self.assertFalse(got.ok, f"short-TTL hold {rec.hold_id} still answers after its TTL: {got.reply}")
                self.assertIn(got.code, (C.FAILED_PRECONDITION, C.NOT_FOUND), str(got))

        # last (it changes state): each acknowledged sale belongs to its buyer and nobody else
        for (event_id, seat), buyer in sorted(sold_by.items()):
            self.assertFails(rpc(self.stub.ReturnSeat, pb.ReturnSeatRequest(event_id=event_id, user_id=buyer +
                                                                            OTHER_USER, seat=seat)),
                             C.FAILED_PRECONDITION, "not_owner", f"seat {seat} of event {event_id} returned by a "
                                                                 "user who did not buy it")
            self.assertOk(rpc(self.stub.ReturnSeat, pb.ReturnSeatRequest(event_id=event_id, user_id=buyer,
                                                                         seat=seat)),
                          f"seat {seat} of event {event_id}: return by its acknowledged buyer {buyer}")
        return sold_by

    def test_kill_9_under_load_loses_nothing_acknowledged(self):
        daemon = self.start_daemon("kill9")
        long_ttl, short_ttl = self.make_events()
        events = [(long_ttl.event_id, long_ttl.capacity, 4), (short_ttl.event_id, short_ttl.capacity, 1)]
        load, _ = self.run_load_until_crash(daemon, events, daemon.kill)
        print(f"[{load.stats.acked} acknowledged, refused {load.stats.refused}]", end=" ")
        self.start_daemon("kill9-restarted")
        restarted_at = time.monotonic()
        self.verify_acknowledged(load, long_ttl, short_ttl, restarted_at)

    def test_sigterm_under_load_exits_0_in_grace_and_keeps_everything(self):
        daemon = self.start_daemon("sigterm")
        long_ttl, short_ttl = self.make_events()
        events = [(long_ttl.event_id, long_ttl.capacity, 4), (short_ttl.event_id, short_ttl.capacity, 1)]
        load, (rc, took) = self.run_load_until_crash(daemon, events, daemon.terminate)
        print(f"[{load.stats.acked} acknowledged, exit {rc} after {took:.2f}s]", end=" ")
        self.assertEqual(rc, 0, f"seatcored exit status after SIGTERM under load; log:\n{daemon.log_tail()}")
        self.assertLessEqual(took, daemon.grace_ms / 1000 + 1.0,
                             f"seatcored took {took:.2f}s to stop (grace period {daemon.grace_ms} ms)")
        self.start_daemon("sigterm-restarted")
        restarted_at = time.monotonic()
        self.verify_acknowledged(load, long_ttl, short_ttl, restarted_at)

    def test_restart_keeps_events_and_idempotency_keys(self):
        daemon = self.start_daemon("restart")
        spec = dict(hold_ttl_ms=600000, max_seats_per_user=8, sale_opens_at_ms=0)
        event = self.create_event([section("Floor", 3, 10, 4200), section("Balcony", 2, 5, 1900)], **spec)
        queued = self.create_event(queue=pb.QueueSettings(enabled=True, admit_per_s=1, max_active=5,
                                                          heartbeat_timeout_ms=600000))
        eid = event.event_id
        held = self.assertOk(self.hold(eid, 5, [1, 2], idempotency_key="keyed-hold"))
        to_sell = self.assertOk(self.hold(eid, 6, [31], idempotency_key="keyed-hold-2"))
        confirm = pb.ConfirmRequest(event_id=eid, user_id=6, hold_id=to_sell.hold_id, idempotency_key="keyed-pay")
        self.assertOk(rpc(self.stub.Confirm, confirm))
        ticket = self.assertOk(rpc(self.stub.QueueJoin, pb.QueueRequest(event_id=queued.event_id, user_id=9))).ticket
        before = self.assertOk(rpc(self.stub.GetEvent, pb.EventRef(event_id=eid)))
        seen_ids = {held.hold_id, to_sell.hold_id}

        for how in ("SIGTERM", "SIGKILL"):
            with self.subTest(restart=how):
                self.close_clients()  # an idle client connection would hold SIGTERM for the grace period
                if how == "SIGTERM":
                    rc, _ = daemon.terminate()
                    self.assertEqual(rc, 0, daemon.log_tail())
                else:
                    daemon.kill()
                daemon = self.start_daemon(f"restart-after-{how}")
                after = self.assertOk(rpc(self.stub.GetEvent, pb.EventRef(event_id=eid)), "GetEvent")
                after.version = before.version  # (see test_event_version_does_not_go_back_after_a_restart)
                self.assertEqual(after, before, "the event after the restart")
                self.assertFails(rpc(self.stub.CreateEvent, pb.CreateEventRequest(event_id=eid, sections=[section()])),
                                 C.ALREADY_EXISTS, "already_exists", "CreateEvent with the recovered id")
                again = self.assertOk(self.hold(eid, 5, [2, 1], idempotency_key="keyed-hold"), "keyed hold repeated")
                self.assertTrue(again.replayed, f"the repeat after the restart must be a replay: {again}")
                self.assertEqual((again.hold_id, sorted(again.seats)), (held.hold_id, [1, 2]))
                self.assertFails(self.hold(eid, 5, [3], idempotency_key="keyed-hold"), C.FAILED_PRECONDITION,
                                 "idempotency_key_reused", "the key with other seats after the restart")
                paid = self.assertOk(rpc(self.stub.Confirm, confirm), "keyed confirm repeated")
                self.assertTrue(paid.replayed)
                self.assertEqual(paid.hold_id, to_sell.hold_id)
                view = self.assertOk(rpc(self.stub.QueueStatus, pb.QueueRequest(event_id=queued.event_id,
                                                                                 user_id=9)))
                self.assertEqual(view.ticket, ticket, "the queue ticket after the restart")
                fresh = self.assertOk(self.hold(eid, 7, [20 + len(seen_ids)]), "a new hold after the restart")
                self.assertNotIn(fresh.hold_id, seen_ids, "a hold id was reused after the restart")
                seen_ids.add(fresh.hold_id)
                self.assertOk(rpc(self.stub.Release, pb.HoldRef(event_id=eid, user_id=7, hold_id=fresh.hold_id)))
                before = self.assertOk(rpc(self.stub.GetEvent, pb.EventRef(event_id=eid)))
        self.close_clients()
        rc, _ = daemon.terminate()
        self.assertEqual(rc, 0)

    def test_event_version_does_not_go_back_after_a_restart(self):
        daemon = self.start_daemon("version")
        eid = self.create_event().event_id
        held = self.assertOk(self.hold(eid, 1, [0, 1]))
        self.assertOk(rpc(self.stub.Confirm, pb.ConfirmRequest(event_id=eid, user_id=1, hold_id=held.hold_id)))
        self.assertOk(self.hold(eid, 2, [5]))
        before, _ = self.availability(eid)
        self.assertGreater(before.version, 0)
        daemon.kill()
        self.start_daemon("version-restarted")
        after, _ = self.availability(eid)
        self.assertEqual((after.free, after.held, after.sold), (before.free, before.held, before.sold))
        self.assertGreaterEqual(after.version, before.version,
                                f"version {before.version} before the restart, {after.version} after it")

    def test_wal_write_failure_exits_so_that_a_restart_recovers(self):
        """Regression (tests/reliability, wal-disk-full): once a WAL write failed (the disk full),
        seatcored stayed up and SERVING while refusing every write for ever, so no supervisor
        ever restarted it and the shard's events could not sell again even after space was freed.
        It must stop serving and exit with status 3; the restart recovers what was acknowledged.
        The disk is "full" through RLIMIT_FSIZE (no root needed): with SIGXFSZ ignored, a write
        past the limit fails with EFBIG, through the same path as ENOSPC."""
        daemon = self.start_daemon("walfail", preexec=lambda: signal.signal(signal.SIGXFSZ, signal.SIG_IGN))
        eid = self.create_event([section("A", 10, 100)], hold_ttl_ms=600000, max_seats_per_user=100).event_id
        acked = []  # (user, hold id, seat)
        for seat in range(20):
            held = self.assertOk(self.hold(eid, 1 + seat, [seat]), f"hold of seat {seat} before the failure")
            acked.append((1 + seat, held.hold_id, seat))
        sizes = [os.path.getsize(os.path.join(self.data_dir, f)) for f in os.listdir(self.data_dir)]
        self.assertTrue(sizes and max(sizes) > 0, f"no WAL in {self.data_dir}: {os.listdir(self.data_dir)}")
        limit = max(sizes) + 1  # no file of the daemon may grow past its current WAL any more
        resource.prlimit(daemon.proc.pid, resource.RLIMIT_FSIZE, (limit, limit))
        # Many holds in flight at once, most of them waiting for a group commit when the write
        # fails: the durable reply path (replies packed by the handler, sent by the rpc server's
        # reply thread once the WAL writer says durable) must answer every one, OK (then it is
        # durable: checked after the restart) or storage_error, none left to its deadline.
        futures = [(seat, self.stub.Hold.future(pb.HoldRequest(event_id=eid, user_id=1 + seat, seats=[seat]),
                                                timeout=10))
                   for seat in range(20, 400)]
        refused = 0
        for seat, future in futures:
            try:
                acked.append((1 + seat, future.result().hold_id, seat))  # the last bytes below the limit
            except grpc.RpcError as err:
                self.assertNotEqual(err.code(), C.DEADLINE_EXCEEDED, f"seat {seat}: a call was never answered")
                refused += 1
        self.assertGreater(refused, 0, "holds were still acknowledged with the WAL unable to grow")
        try:
            rc = daemon.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.fail("seatcored is still running 15 s after its WAL failed (it can never take a write again); "
                      f"log:\n{daemon.log_tail()}")
        self.assertEqual(rc, 3, f"exit status after the WAL failed; log:\n{daemon.log_tail()}")
        self.close_clients()
        self.start_daemon("walfail-restarted")
        _, states = self.availability(eid)
        for user, hold_id, seat in acked:
            got = self.assertOk(rpc(self.stub.GetHold, pb.HoldRef(event_id=eid, user_id=user, hold_id=hold_id)),
                                f"acknowledged hold {hold_id} of seat {seat} after the restart")
            self.assertEqual(list(got.seats), [seat])
            self.assertEqual(states[seat], HELD, f"seat {seat} after the restart")
        self.assertOk(self.hold(eid, 999, [999]), "a hold after the restart (the engine takes writes again)")


if __name__ == "__main__":
    unittest.main()
