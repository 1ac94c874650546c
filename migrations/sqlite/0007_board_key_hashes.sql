-- Board keys are kept only as their SHA-256. The plain keys stored so far are dropped rather than
-- hashed (SQLite has no SHA-256): an admin gets a fresh board address with
-- POST /v1/clinics/{id}/board, which also ends every screen still using an old key.
ALTER TABLE clinics ADD COLUMN board_key_hash TEXT;
ALTER TABLE clinics DROP COLUMN board_key;
