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
-- Append-only, like access_log: only `careq audit archive` removes pairs, with their rows
-- (it disables the DELETE trigger inside its own transaction).
CREATE TABLE access_log_patients (
    patient_id TEXT COLLATE "C" NOT NULL,
    seq        BIGINT NOT NULL,
    PRIMARY KEY (patient_id, seq)
);
CREATE TRIGGER access_log_patients_no_update BEFORE UPDATE ON access_log_patients
    FOR EACH ROW EXECUTE FUNCTION access_log_append_only();
CREATE TRIGGER access_log_patients_no_delete BEFORE DELETE ON access_log_patients
    FOR EACH ROW EXECUTE FUNCTION access_log_append_only();
