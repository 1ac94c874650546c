-- Appointments. Times are kept as RFC 3339 text for output and Unix seconds for overlap checks.
CREATE TABLE appointments (
    id               TEXT PRIMARY KEY,
    clinic_id        TEXT NOT NULL REFERENCES clinics (id),
    patient_id       TEXT NOT NULL REFERENCES patients (id),
    clinician_id     TEXT NOT NULL REFERENCES users (id),
    start_at         TEXT NOT NULL,
    start_unix       INTEGER NOT NULL,
    end_unix         INTEGER NOT NULL,
    duration_minutes INTEGER NOT NULL CHECK (duration_minutes BETWEEN 5 AND 720),
    reason           TEXT,
    status           TEXT NOT NULL CHECK (status IN ('booked', 'checked_in', 'completed', 'cancelled', 'no_show')),
    ticket_id        TEXT REFERENCES tickets (id),
    version          INTEGER NOT NULL DEFAULT 1,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    deleted_at       TEXT
);
CREATE INDEX appointments_clinician ON appointments (clinician_id, start_unix);
CREATE INDEX appointments_clinic ON appointments (clinic_id, start_unix);
CREATE INDEX appointments_patient ON appointments (patient_id, start_unix);
