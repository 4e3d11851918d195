-- 0004_auth_housekeeping.sql — indexes for auth-svc's housekeeping (services/auth/auth_housekeeping.c).
-- Every few minutes auth-svc deletes login_failures rows whose window has passed and
-- refresh_tokens rows that expired over a day ago, a bounded batch at a time; these
-- indexes keep those passes from scanning whole tables that an attack can make large.

CREATE INDEX login_failures_window_start ON login_failures (window_start);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);
