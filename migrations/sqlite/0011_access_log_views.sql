-- The admin view of the whole access log filters by actor in sequence order.
CREATE INDEX access_log_actor ON access_log (actor_id, seq);
