-- Base schema. Times are RFC 3339 UTC text; ids are opaque text chosen by the server.
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
