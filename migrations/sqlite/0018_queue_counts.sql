-- How many tickets wait, per clinic, day and priority, kept by triggers in the same transaction
-- as every change of a ticket: issuing a ticket reads its place from these counts instead of
-- counting the waiting queue. (The services of a later version add a column to the key.)
CREATE TABLE queue_waiting (
    clinic_id TEXT NOT NULL,
    day TEXT NOT NULL,
    priority TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (clinic_id, day, priority)
) WITHOUT ROWID;

INSERT INTO queue_waiting (clinic_id, day, priority, n)
SELECT clinic_id, day, priority, COUNT(*) FROM tickets WHERE status = 'waiting'
GROUP BY clinic_id, day, priority;

CREATE TRIGGER tickets_count_insert AFTER INSERT ON tickets
WHEN NEW.status = 'waiting'
BEGIN
    INSERT INTO queue_waiting (clinic_id, day, priority, n)
    VALUES (NEW.clinic_id, NEW.day, NEW.priority, 1)
    ON CONFLICT (clinic_id, day, priority) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER tickets_count_update AFTER UPDATE OF status, priority, day, clinic_id ON tickets
WHEN OLD.status = 'waiting' OR NEW.status = 'waiting'
BEGIN
    UPDATE queue_waiting SET n = n - 1
    WHERE OLD.status = 'waiting'
      AND clinic_id = OLD.clinic_id AND day = OLD.day AND priority = OLD.priority;
    INSERT INTO queue_waiting (clinic_id, day, priority, n)
    SELECT NEW.clinic_id, NEW.day, NEW.priority, 1 WHERE NEW.status = 'waiting'
    ON CONFLICT (clinic_id, day, priority) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER tickets_count_delete AFTER DELETE ON tickets
WHEN OLD.status = 'waiting'
BEGIN
    UPDATE queue_waiting SET n = n - 1
    WHERE clinic_id = OLD.clinic_id AND day = OLD.day AND priority = OLD.priority;
END;
