-- The walk-in queue: one row per clinic and local day (the ticket counter and the closed flag),
-- and the tickets. Numbers are gap-free per clinic and day: the counter is bumped inside the
-- issuing transaction, and (clinic_id, day, seq) is unique.
CREATE TABLE queue_days (
    clinic_id TEXT NOT NULL REFERENCES clinics (id),
    day       TEXT NOT NULL,
    last_seq  INTEGER NOT NULL DEFAULT 0,
    closed_at TEXT,
    PRIMARY KEY (clinic_id, day)
);

CREATE TABLE tickets (
    id          TEXT PRIMARY KEY,
    clinic_id   TEXT NOT NULL REFERENCES clinics (id),
    day         TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    number      TEXT NOT NULL,
    patient_id  TEXT REFERENCES patients (id),
    priority    TEXT NOT NULL CHECK (priority IN ('normal', 'urgent', 'emergency')),
    status      TEXT NOT NULL CHECK (status IN ('waiting', 'called', 'served', 'no_show', 'cancelled')),
    counter     TEXT,
    recalled    INTEGER NOT NULL DEFAULT 0,
    issued_ms   INTEGER NOT NULL,
    called_ms   INTEGER,
    finished_ms INTEGER,
    version     INTEGER NOT NULL DEFAULT 1,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    UNIQUE (clinic_id, day, seq)
);
CREATE INDEX tickets_queue ON tickets (clinic_id, day, status);
CREATE INDEX tickets_called ON tickets (clinic_id, called_ms);
