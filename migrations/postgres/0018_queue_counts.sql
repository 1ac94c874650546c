-- How many tickets wait, per clinic, day and priority, kept by a trigger in the same transaction
-- as every change of a ticket: issuing a ticket reads its place from these counts instead of
-- counting the waiting queue. (The services of a later version add a column to the key.)
CREATE TABLE queue_waiting (
    clinic_id TEXT NOT NULL,
    day TEXT NOT NULL,
    priority TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (clinic_id, day, priority)
);

INSERT INTO queue_waiting (clinic_id, day, priority, n)
SELECT clinic_id, day, priority, COUNT(*) FROM tickets WHERE status = 'waiting'
GROUP BY clinic_id, day, priority;

CREATE FUNCTION tickets_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.status = 'waiting' THEN
        UPDATE queue_waiting SET n = n - 1
        WHERE clinic_id = OLD.clinic_id AND day = OLD.day AND priority = OLD.priority;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.status = 'waiting' THEN
        INSERT INTO queue_waiting (clinic_id, day, priority, n)
        VALUES (NEW.clinic_id, NEW.day, NEW.priority, 1)
        ON CONFLICT (clinic_id, day, priority) DO UPDATE SET n = queue_waiting.n + 1;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER tickets_count AFTER INSERT OR DELETE OR UPDATE OF status, priority, day, clinic_id
ON tickets FOR EACH ROW EXECUTE FUNCTION tickets_count();
