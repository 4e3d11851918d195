-- 0005_payment_refunds.sql — refunds as rows of their own (payment-svc).
-- A refund has its own idempotency key, so "refund twice" with the same key is
-- one refund; pending and succeeded refunds together never exceed the payment
-- (payment-svc checks under a row lock on the payment). Gateway calls made for a
-- refund are audited in payment_attempts like those of the charge.

CREATE TABLE payment_refunds (
    id              UUID PRIMARY KEY,
    payment_id      UUID NOT NULL REFERENCES payments (id),
    amount_cents    BIGINT NOT NULL CHECK (amount_cents > 0),
    status          TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    gateway_ref     TEXT,
    failure_reason  TEXT,
    idempotency_key TEXT NOT NULL UNIQUE CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX payment_refunds_payment ON payment_refunds (payment_id);

-- Which refund an attempt served (NULL for the charge's own prepare/approve calls)
-- and the gateway idempotency key it was sent with.
ALTER TABLE payment_attempts ADD COLUMN refund_id UUID REFERENCES payment_refunds (id);
ALTER TABLE payment_attempts ADD COLUMN gateway_key TEXT;
CREATE INDEX payment_attempts_payment ON payment_attempts (payment_id);

-- The card token masked (e.g. "tok_****ve") for support; the token itself is never stored.
ALTER TABLE payments ADD COLUMN card_hint TEXT CHECK (length(card_hint) <= 32);
