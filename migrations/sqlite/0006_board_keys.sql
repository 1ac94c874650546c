-- Each clinic's waiting-room board authenticates with its own random key (no staff login).
ALTER TABLE clinics ADD COLUMN board_key TEXT;
