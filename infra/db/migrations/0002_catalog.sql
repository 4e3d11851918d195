-- 0002_catalog.sql — venues, events, sections and the seat catalog (event-svc).
-- An event's id is the engine's event id (it routes to a seatcored shard). An
-- event is created in two steps, one outcome or the other: the catalog row is
-- written 'pending', the engine event created, then the row marked 'ready';
-- a row left 'pending' by a crash is finished or removed by event-svc at start.

CREATE TABLE venues (
    id   BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 200)
);

CREATE SEQUENCE event_ids START 1000;

CREATE TABLE events (
    id                 BIGINT PRIMARY KEY DEFAULT nextval('event_ids'),
    name               TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    venue_id           BIGINT NOT NULL REFERENCES venues (id),
    starts_at          TIMESTAMPTZ NOT NULL,
    sale_opens_at      TIMESTAMPTZ NOT NULL,
    status             TEXT NOT NULL DEFAULT 'scheduled'
                       CHECK (status IN ('scheduled', 'on_sale', 'closed', 'cancelled')),
    engine_state       TEXT NOT NULL DEFAULT 'pending' CHECK (engine_state IN ('pending', 'ready')),
    shard              INTEGER NOT NULL CHECK (shard >= 0),
    capacity           INTEGER NOT NULL CHECK (capacity BETWEEN 1 AND 200000),
    hold_ttl_s         INTEGER NOT NULL CHECK (hold_ttl_s BETWEEN 1 AND 3600),
    max_seats_per_user INTEGER NOT NULL CHECK (max_seats_per_user BETWEEN 1 AND 100),
    queue_enabled      BOOLEAN NOT NULL DEFAULT false,
    admit_per_s        INTEGER NOT NULL DEFAULT 0,
    max_active         INTEGER NOT NULL DEFAULT 0,
    created_by         BIGINT REFERENCES users (id),
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX events_listing ON events (starts_at, id) WHERE engine_state = 'ready';
CREATE INDEX events_name_search ON events USING gin (to_tsvector('simple', name));

CREATE TABLE sections (
    event_id      BIGINT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    idx           INTEGER NOT NULL CHECK (idx BETWEEN 0 AND 63),
    name          TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 31),
    rows          INTEGER NOT NULL CHECK (rows BETWEEN 1 AND 1000),
    seats_per_row INTEGER NOT NULL CHECK (seats_per_row BETWEEN 1 AND 1000),
    price_cents   INTEGER NOT NULL CHECK (price_cents BETWEEN 0 AND 100000000),
    first_seat    INTEGER NOT NULL CHECK (first_seat >= 0),
    PRIMARY KEY (event_id, idx)
);

-- One row per seat: the numbers the engine uses and what people read.
CREATE TABLE seats (
    event_id    BIGINT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    seat        INTEGER NOT NULL CHECK (seat >= 0),
    section_idx INTEGER NOT NULL,
    row_number  INTEGER NOT NULL,
    seat_number INTEGER NOT NULL,
    label       TEXT NOT NULL,
    price_cents INTEGER NOT NULL,
    PRIMARY KEY (event_id, seat)
);
