-- 0007_reservation_saga.sql — what reservation-svc's payment saga needs on top of
-- 0003 (docs/services/reservation.md has the state machine).
--
-- 1. Cancellation states: a confirmed reservation is cancelled through
--    'cancelling' (refund under way, seats going back on sale) to 'cancelled';
--    the saga row follows it (sagas.state 'cancelling' -> 'cancelled').
-- 2. The card token of a charge whose outcome is not known yet, so that a restart
--    can repeat exactly the same Charge (payment-svc and the gateway answer a
--    repeat from their idempotency tables). It is wiped by the transition that
--    leaves 'paying' (a CHECK makes sure), so a token lives only while a charge
--    is undecided; it is a gateway token (tok_...), never card numbers.
-- 3. Retry pacing for the recovery loop (next_attempt_at), the moment a
--    cancellation started (cancel_requested_at) and why a saga ended as it did.
-- 4. The transitions themselves, enforced here whatever the application does: a
--    reservation can never leave a final state, and in particular can never be
--    both confirmed and released. Seats count as sold (reservation_seats.confirmed)
--    only while their reservation is confirmed; the partial unique index
--    one_sale_per_seat stays the guard against selling a seat twice.

ALTER TABLE reservations DROP CONSTRAINT reservations_status_check;
ALTER TABLE reservations ADD CONSTRAINT reservations_status_check
    CHECK (status IN ('pending', 'paying', 'confirmed', 'released', 'expired', 'cancelling', 'cancelled'));

ALTER TABLE sagas DROP CONSTRAINT sagas_state_check;
ALTER TABLE sagas ADD CONSTRAINT sagas_state_check
    CHECK (state IN ('paying', 'charged', 'confirmed', 'compensating', 'released', 'refunding', 'refunded',
                     'cancelling', 'cancelled'));
ALTER TABLE sagas ADD COLUMN card_token TEXT CHECK (length(card_token) BETWEEN 1 AND 255);
ALTER TABLE sagas ADD CONSTRAINT sagas_card_token_only_while_paying CHECK (card_token IS NULL OR state = 'paying');
ALTER TABLE sagas ADD COLUMN created_at TIMESTAMPTZ NOT NULL DEFAULT now();
ALTER TABLE sagas ADD COLUMN next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now();
ALTER TABLE sagas ADD COLUMN cancel_requested_at TIMESTAMPTZ;
-- Why the saga took the branch it did ("payment_declined: ...", "hold_expired", ...): a
-- repeated Pay answers from it. last_error keeps the latest failed attempt instead.
ALTER TABLE sagas ADD COLUMN outcome TEXT CHECK (length(outcome) <= 300);

-- The recovery loop's work list: sagas that have not reached a resting state.
CREATE INDEX sagas_open ON sagas (next_attempt_at)
    WHERE state IN ('paying', 'charged', 'compensating', 'refunding', 'cancelling');
-- Cancellation checks whether a returned seat was bought again since.
CREATE INDEX reservation_seats_seat ON reservation_seats (event_id, seat);

-- Allowed moves of reservations.status; anything else is refused (check_violation).
CREATE FUNCTION reservations_guard_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.status NOT IN ('pending', 'paying') THEN
            RAISE EXCEPTION 'reservation %: a reservation starts pending or paying, not %', NEW.id, NEW.status
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END IF;
    IF NEW.status = OLD.status THEN
        RETURN NEW;
    END IF;
    IF NOT ((OLD.status = 'pending' AND NEW.status IN ('paying', 'released', 'expired')) OR
            (OLD.status = 'paying' AND NEW.status IN ('confirmed', 'released', 'expired')) OR
            (OLD.status = 'confirmed' AND NEW.status = 'cancelling') OR
            (OLD.status = 'cancelling' AND NEW.status IN ('cancelled', 'confirmed'))) THEN
        RAISE EXCEPTION 'reservation %: % -> % is not an allowed transition', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'check_violation';
    END IF;
    IF OLD.status = 'confirmed' AND
       EXISTS (SELECT 1 FROM reservation_seats WHERE reservation_id = OLD.id AND confirmed) THEN
        RAISE EXCEPTION 'reservation %: its seats are still sold; unconfirm them before it leaves confirmed', OLD.id
            USING ERRCODE = 'check_violation';
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END $$;

CREATE TRIGGER reservations_transition BEFORE INSERT OR UPDATE OF status ON reservations
    FOR EACH ROW EXECUTE FUNCTION reservations_guard_transition();

-- A seat is marked sold only inside a confirmed reservation.
CREATE FUNCTION reservation_seats_guard_confirmed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT NEW.confirmed THEN
        RETURN NEW;
    END IF;
    -- FOR SHARE: the reservation cannot leave 'confirmed' before this transaction ends.
    PERFORM 1 FROM reservations WHERE id = NEW.reservation_id AND status = 'confirmed' FOR SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'reservation %: seat % can be sold only in a confirmed reservation', NEW.reservation_id, NEW.seat
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER reservation_seats_confirmed BEFORE INSERT OR UPDATE OF confirmed ON reservation_seats
    FOR EACH ROW EXECUTE FUNCTION reservation_seats_guard_confirmed();
