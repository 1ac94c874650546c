-- Every search filter is served by an index that also yields the list order (sort_key), so a
-- page costs one index range whatever the table size. A family-name prefix is a range of
-- sort_key itself (it starts with the folded family name); a given-name prefix uses
-- patients_given.
DROP INDEX IF EXISTS patients_phone;
CREATE INDEX patients_mrn_sort ON patients (mrn, sort_key);
CREATE INDEX patients_phone_sort ON patients (phone, sort_key);
CREATE INDEX patients_dob_sort ON patients (date_of_birth, sort_key);
CREATE INDEX patients_clinic_sort ON patients (clinic_id, sort_key);
