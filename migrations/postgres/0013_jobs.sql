-- As SQLite's 0013 (column types mirror its storage classes: BIGINT, TEXT).
-- Export jobs. A job is durable: queued or running ones are (re)started by a runner after a
-- restart. `runner` and `lease_until` (Unix ms) say which process runs it and until when its
-- heartbeat holds; a job whose lease ran out is picked up again. The scope is fixed when the
-- job is accepted: `clinic_ids` (a JSON array; NULL: every clinic) and `sealed` (1: sealed
-- records included, for admins). `from_day`/`to_day` bound the rows by day (inclusive).
CREATE TABLE jobs (
    id                TEXT COLLATE "C" PRIMARY KEY,
    owner_id          TEXT COLLATE "C" NOT NULL REFERENCES users (id),
    kind              TEXT NOT NULL CHECK (kind IN ('patients', 'appointments', 'queue')),
    format            TEXT NOT NULL CHECK (format IN ('csv', 'ndjson')),
    clinic_ids        TEXT,
    sealed            BIGINT NOT NULL DEFAULT 0,
    from_day          TEXT,
    to_day            TEXT,
    state             TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
    rows_written      BIGINT NOT NULL DEFAULT 0,
    rows_total        BIGINT,
    size_bytes        BIGINT,
    error             TEXT,
    runner            TEXT,
    lease_until       BIGINT,
    runs              BIGINT NOT NULL DEFAULT 0,
    ip                TEXT NOT NULL,
    request_id        TEXT NOT NULL,
    client_request_id TEXT,
    created_at        TEXT COLLATE "C" NOT NULL,
    updated_at        TEXT NOT NULL,
    finished_at       TEXT,
    expires_at        BIGINT,
    removed_at        TEXT
);
-- One active (queued or running) export per user: a second one is refused (429) by this key,
-- whatever the concurrency.
CREATE UNIQUE INDEX jobs_one_active ON jobs (owner_id) WHERE state IN ('queued', 'running');
CREATE INDEX jobs_pending ON jobs (state, created_at) WHERE state IN ('queued', 'running');
CREATE INDEX jobs_expiring ON jobs (expires_at) WHERE removed_at IS NULL AND expires_at IS NOT NULL;
