-- 0003_sales.sql — reservations, payments and the saga (reservation-svc,
-- payment-svc). PostgreSQL is the system of record for sales and the second
-- guard against overselling: one confirmed reservation per seat, enforced by a
-- partial unique index, whatever the application does.

CREATE TABLE reservations (
    id              UUID PRIMARY KEY,
    user_id         BIGINT NOT NULL REFERENCES users (id),
    event_id        BIGINT NOT NULL REFERENCES events (id),
    hold_id         BIGINT NOT NULL,
    status          TEXT NOT NULL
                    CHECK (status IN ('pending', 'paying', 'confirmed', 'released', 'expired', 'cancelled')),
    amount_cents    BIGINT NOT NULL CHECK (amount_cents >= 0),
    expires_at      TIMESTAMPTZ NOT NULL,
    idempotency_key TEXT CHECK (length(idempotency_key) <= 255),
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (user_id, idempotency_key)
);
CREATE INDEX reservations_user ON reservations (user_id, created_at DESC);
CREATE INDEX reservations_open ON reservations (status, expires_at) WHERE status IN ('pending', 'paying');

CREATE TABLE reservation_seats (
    reservation_id UUID NOT NULL REFERENCES reservations (id) ON DELETE CASCADE,
    event_id       BIGINT NOT NULL,
    seat           INTEGER NOT NULL,
    confirmed      BOOLEAN NOT NULL DEFAULT false,
    PRIMARY KEY (reservation_id, seat),
    FOREIGN KEY (event_id, seat) REFERENCES seats (event_id, seat)
);
-- The second guard: a seat is in at most one confirmed reservation.
CREATE UNIQUE INDEX one_sale_per_seat ON reservation_seats (event_id, seat) WHERE confirmed;

CREATE TABLE payments (
    id              UUID PRIMARY KEY,
    reservation_id  UUID NOT NULL REFERENCES reservations (id),
    user_id         BIGINT NOT NULL REFERENCES users (id),
    amount_cents    BIGINT NOT NULL CHECK (amount_cents >= 0),
    currency        TEXT NOT NULL DEFAULT 'EUR' CHECK (length(currency) = 3),
    status          TEXT NOT NULL
                    CHECK (status IN ('pending', 'approved', 'declined', 'failed', 'refunded')),
    gateway_ref     TEXT,
    decline_reason  TEXT,
    idempotency_key TEXT NOT NULL UNIQUE,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX payments_reservation ON payments (reservation_id);

-- Every call to the gateway, kept for audits and disputes.
CREATE TABLE payment_attempts (
    id          BIGSERIAL PRIMARY KEY,
    payment_id  UUID NOT NULL REFERENCES payments (id),
    operation   TEXT NOT NULL CHECK (operation IN ('prepare', 'approve', 'refund')),
    attempt     INTEGER NOT NULL CHECK (attempt >= 1),
    http_status INTEGER,
    outcome     TEXT NOT NULL,
    latency_ms  INTEGER,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The payment saga of a reservation: where it is, so a restart resumes it to
-- exactly one end (confirmed, or released with its seats back on sale).
CREATE TABLE sagas (
    reservation_id UUID PRIMARY KEY REFERENCES reservations (id),
    state          TEXT NOT NULL
                   CHECK (state IN ('paying', 'charged', 'confirmed', 'compensating', 'released', 'refunding', 'refunded')),
    payment_id     UUID REFERENCES payments (id),
    attempts       INTEGER NOT NULL DEFAULT 0,
    last_error     TEXT,
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX sagas_unfinished ON sagas (updated_at) WHERE state NOT IN ('confirmed', 'released', 'refunded');

-- Messages to publish after a transaction commits (transactional outbox).
CREATE TABLE outbox (
    id           BIGSERIAL PRIMARY KEY,
    topic        TEXT NOT NULL,
    payload      JSONB NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at TIMESTAMPTZ
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
