-- The clinic's country (ISO 3166 alpha-2): the region national phone numbers are read in.
ALTER TABLE clinics ADD COLUMN country TEXT;
