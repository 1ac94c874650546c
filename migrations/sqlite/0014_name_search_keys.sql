-- Search as people type. A name is searched by its key: folded like given_norm/family_norm,
-- then only letters and digits kept ("O'Brien" -> "obrien"); sort_key becomes
-- family_key, given_key, id. Rows stored before this version are given their keys by careq
-- right after migrating (the folding is Unicode work SQL cannot do), before it serves.
ALTER TABLE patients ADD COLUMN given_key TEXT;
ALTER TABLE patients ADD COLUMN family_key TEXT;
-- A query word is a prefix range of either key (the family one ordered as sort_key is).
DROP INDEX IF EXISTS patients_given;
CREATE INDEX patients_given_key ON patients (given_key, sort_key);
CREATE INDEX patients_family_key ON patients (family_key, sort_key);
CREATE INDEX patients_email_sort ON patients (email, sort_key);
-- The other list orders (sort=created, sort=birth_date), overall and per clinic, ties by id.
CREATE INDEX patients_created ON patients (created_at, id);
CREATE INDEX patients_dob_id ON patients (date_of_birth, id);
CREATE INDEX patients_clinic_created ON patients (clinic_id, created_at, id);
CREATE INDEX patients_clinic_dob ON patients (clinic_id, date_of_birth, id);
