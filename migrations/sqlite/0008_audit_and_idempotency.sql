-- Access-log rows name the patient whose data they touch (an appointment's reason, a ticket, a
-- notification), so a patient's log shows every path to their record; a client's own
-- X-Request-Id is kept beside careq's, never instead of it.
ALTER TABLE access_log ADD COLUMN patient_id TEXT;
ALTER TABLE access_log ADD COLUMN client_request_id TEXT;
CREATE INDEX access_log_patient ON access_log (patient_id, seq);

-- An Idempotency-Key is now claimed in memory while its request runs, and its outcome is stored
-- in the same transaction as the change. Claims that an abandoned request left behind under the
-- old scheme are released.
DELETE FROM idempotency_keys WHERE completed = 0;
