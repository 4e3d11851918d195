"""test_cancel.py — CancelReservation: a confirmed reservation is refunded through
payment-svc and its seats go back on sale (engine and PostgreSQL); only confirmed
reservations can be cancelled; a repeated cancel answers the same."""
import harness
from harness import C


class CancelTest(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.event = harness.make_event(cls.engine, max_seats_per_user=10)

    def purchase(self, seats):
        user, token = self.buyer(self.event)
        held = self.hold(self.event, user, token, seats=seats)
        paid = self.assertOk(self.rsv.pay(held.reservation_id, user), "pay")
        return user, token, held.reservation_id, paid.payment_id

    def test_cancel_refunds_and_returns_the_seats(self):
        user, token, reservation, payment = self.purchase([0, 1])
        self.assertSeats(self.event, [0, 1], 2, "sold")
        reply = self.assertOk(self.rsv.cancel(reservation, user), "cancel")
        self.assertEqual((reply.status, reply.state, reply.reservation_id), ("cancelled", "cancelled", reservation))
        self.assertOneCharge(payment, refunds=1)
        self.assertSeats(self.event, [0, 1], 0, "back on sale")
        self.assertEqual(harness.reservation_row(reservation)[:2], ["cancelled", "cancelled"])
        self.assertNotIn(0, harness.sold_seats_in_db(self.event))
        again = self.assertOk(self.rsv.cancel(reservation, user), "a second cancel")
        self.assertEqual(again.status, "cancelled")
        self.assertOneCharge(payment, refunds=1)
        self.assertFails(self.rsv.pay(reservation, user), C.FAILED_PRECONDITION, "reservation_not_pending")
        listed = {r.reservation_id: r.status for r in self.assertOk(self.rsv.list(user)).reservations}
        self.assertEqual(listed[reservation], "cancelled")
        # the seats sell again, to anyone (the same buyer included)
        buyer, buyer_token = self.buyer(self.event)
        held = self.hold(self.event, buyer, buyer_token, seats=[0])
        self.assertOk(self.rsv.pay(held.reservation_id, buyer))
        held = self.hold(self.event, user, token, seats=[1])
        self.assertOk(self.rsv.pay(held.reservation_id, user))
        self.assertSeats(self.event, [0, 1], 2, "sold again")
        self.assertEqual(sorted(s for s in harness.sold_seats_in_db(self.event) if s < 2), [0, 1])

    def test_only_confirmed_reservations_are_cancelled(self):
        user, token = self.buyer(self.event)
        pending = self.hold(self.event, user, token, seats=[2])
        self.assertFails(self.rsv.cancel(pending.reservation_id, user), C.FAILED_PRECONDITION,
                         "reservation_not_confirmed")
        self.assertSeats(self.event, [2], 1, "still held")
        declined = self.hold(self.event, user, token, seats=[3])
        self.assertFails(self.rsv.pay(declined.reservation_id, user, card="tok_decline"), C.FAILED_PRECONDITION)
        self.assertFails(self.rsv.cancel(declined.reservation_id, user), C.FAILED_PRECONDITION,
                         "reservation_not_confirmed")
        self.assertFails(self.rsv.cancel("rsv_" + "1" * 32, user), C.NOT_FOUND, "not_found")

    def test_another_users_reservation_cannot_be_cancelled(self):
        user, _, reservation, payment = self.purchase([4])
        stranger = harness.make_user()
        self.assertFails(self.rsv.cancel(reservation, stranger), C.NOT_FOUND, "not_found")
        self.assertSeats(self.event, [4], 2, "still sold")
        self.assertOneCharge(payment, refunds=0)


if __name__ == "__main__":
    import unittest
    unittest.main()
