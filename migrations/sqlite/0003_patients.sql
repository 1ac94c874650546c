-- Patients, per-clinic counters (MRN sequence) and stored idempotent responses.
CREATE TABLE clinic_counters (
    clinic_id TEXT NOT NULL REFERENCES clinics (id),
    name      TEXT NOT NULL,
    value     INTEGER NOT NULL,
    PRIMARY KEY (clinic_id, name)
);

CREATE TABLE patients (
    id            TEXT PRIMARY KEY,
    clinic_id     TEXT NOT NULL REFERENCES clinics (id),
    mrn           TEXT NOT NULL,
    given_name    TEXT NOT NULL,
    family_name   TEXT NOT NULL,
    date_of_birth TEXT NOT NULL,
    sex           TEXT NOT NULL CHECK (sex IN ('female', 'male', 'other', 'unknown')),
    phone         TEXT,
    email         TEXT,
    address       TEXT,
    height_cm     REAL,
    weight_kg     REAL,
    -- lower-case, accent-free forms for search and duplicate checks
    given_norm    TEXT NOT NULL,
    family_norm   TEXT NOT NULL,
    -- family, given, id: the list order and the paging key (unique)
    sort_key      TEXT NOT NULL UNIQUE,
    version       INTEGER NOT NULL DEFAULT 1,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    deleted_at    TEXT,
    merged_into   TEXT REFERENCES patients (id),
    sealed_at     TEXT,
    sealed_reason TEXT
);
CREATE UNIQUE INDEX patients_clinic_mrn ON patients (clinic_id, mrn);
CREATE INDEX patients_phone ON patients (phone);
CREATE INDEX patients_identity ON patients (clinic_id, family_norm, given_norm, date_of_birth);
CREATE INDEX patients_given ON patients (given_norm);

CREATE TABLE idempotency_keys (
    caller_id    TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    completed    INTEGER NOT NULL DEFAULT 0,
    status       INTEGER,
    headers      TEXT,
    body         BLOB,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (caller_id, key)
);
CREATE INDEX idempotency_age ON idempotency_keys (created_at);
