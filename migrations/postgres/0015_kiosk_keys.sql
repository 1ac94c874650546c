-- Each clinic's self-service kiosk authenticates with its own random key, kept only as its
-- SHA-256 like the board key. It is a separate key because it writes (issues tickets) while the
-- board key only reads.
ALTER TABLE clinics ADD COLUMN kiosk_key_hash TEXT;
