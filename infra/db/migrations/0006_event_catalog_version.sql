-- 0006_event_catalog_version.sql — a version per event's catalog (event-svc).
-- event-svc caches each event's seat catalog in Redis under a key that carries
-- this version, so a change made anywhere (the service, another service, an
-- operator's SQL) moves readers to a new key at once: the old entry is never
-- served again and expires (or is deleted by the next reader). The triggers
-- bump the version: row-level on events (when a catalog column changes),
-- statement-level on sections and seats (one bump per event per statement, so
-- repricing a 200,000-seat section costs one UPDATE of one events row).

ALTER TABLE events ADD COLUMN catalog_version BIGINT NOT NULL DEFAULT 1 CHECK (catalog_version >= 1);

CREATE FUNCTION events_bump_catalog_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.catalog_version = OLD.catalog_version AND
       ROW(NEW.name, NEW.venue_id, NEW.starts_at, NEW.sale_opens_at, NEW.status, NEW.capacity, NEW.hold_ttl_s,
           NEW.max_seats_per_user, NEW.queue_enabled, NEW.admit_per_s, NEW.max_active)
       IS DISTINCT FROM
       ROW(OLD.name, OLD.venue_id, OLD.starts_at, OLD.sale_opens_at, OLD.status, OLD.capacity, OLD.hold_ttl_s,
           OLD.max_seats_per_user, OLD.queue_enabled, OLD.admit_per_s, OLD.max_active) THEN
        NEW.catalog_version := OLD.catalog_version + 1;
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER events_catalog_version BEFORE UPDATE ON events
    FOR EACH ROW EXECUTE FUNCTION events_bump_catalog_version();

-- For statement-level triggers on sections and seats: the changed rows arrive
-- as the transition table "changed" (new rows for INSERT/UPDATE, old for DELETE).
CREATE FUNCTION events_bump_catalog_version_of_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE events SET catalog_version = catalog_version + 1, updated_at = now()
     WHERE id IN (SELECT DISTINCT event_id FROM changed);
    RETURN NULL;
END $$;

CREATE TRIGGER sections_insert_catalog_version AFTER INSERT ON sections REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION events_bump_catalog_version_of_changed();
CREATE TRIGGER sections_update_catalog_version AFTER UPDATE ON sections REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION events_bump_catalog_version_of_changed();
CREATE TRIGGER sections_delete_catalog_version AFTER DELETE ON sections REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION events_bump_catalog_version_of_changed();
CREATE TRIGGER seats_insert_catalog_version AFTER INSERT ON seats REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION events_bump_catalog_version_of_changed();
CREATE TRIGGER seats_update_catalog_version AFTER UPDATE ON seats REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION events_bump_catalog_version_of_changed();
CREATE TRIGGER seats_delete_catalog_version AFTER DELETE ON seats REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION events_bump_catalog_version_of_changed();

-- Start-up and periodic recovery look for events a crash left half-made.
CREATE INDEX events_pending ON events (id) WHERE engine_state = 'pending';
