-- The next ticket to call is among the earliest waiting ticket of each priority, and a new
-- ticket's position is a count of waiting tickets per priority issued before a bound: both are
-- index ranges, whatever the length of the day's queue. The service-time estimate reads the
-- clinic's last served tickets.
CREATE INDEX tickets_waiting ON tickets (clinic_id, day, status, priority, issued_ms);
CREATE INDEX tickets_served ON tickets (clinic_id, status, finished_ms);
