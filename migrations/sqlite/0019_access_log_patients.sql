-- The patients a request returned, when it returned several (a search, a list, a replayed
-- batch): the request is one row of access_log (resource_type 'patient', resource_id
-- 'several', patient_id NULL) and each patient it returned one narrow pair here, written in
-- the same transaction. A patient's own log finds the request through its pairs, so it still
-- shows every request that returned the patient; the whole log names the request once.
--
-- The key is the only index: pairs are looked up by patient, and the rare lookup by request
-- (the admin's whole log, the archive) scans. There is no foreign key either: removing old
-- entries (the archive) would then check every pair against each removed row.
--
-- Append-only, like access_log: only `careq audit archive` removes pairs, with their rows.
CREATE TABLE access_log_patients (
    patient_id TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    PRIMARY KEY (patient_id, seq)
) WITHOUT ROWID;
CREATE TRIGGER access_log_patients_no_update BEFORE UPDATE ON access_log_patients
BEGIN SELECT RAISE(ABORT, 'the access log is append-only'); END;
CREATE TRIGGER access_log_patients_no_delete BEFORE DELETE ON access_log_patients
BEGIN SELECT RAISE(ABORT, 'the access log is append-only'); END;
