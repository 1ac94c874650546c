//! How an operation of the store fails, classified once by each engine.

/// How an operation of the store fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// A row the operation needs is not there.
    NotFound,
    /// A unique key is taken (a duplicate).
    Conflict,
    /// The database has no room left (disk full, or the configured size cap).
    Full,
    /// The database could not be reached in time (locked, every connection busy, the queue of
    /// units full, shutting down, no primary to write to).
    Busy,
    /// Anything else: a broken connection, corrupt data, a bug. Not for clients' eyes.
    Other(String),
}

impl StoreError {
    /// An `Other` error from anything displayable.
    pub fn other(e: impl std::fmt::Display) -> StoreError {
        StoreError::Other(e.to_string())
    }
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::NotFound => f.write_str("no such row"),
            StoreError::Conflict => f.write_str("a unique key is taken"),
            StoreError::Full => f.write_str("the database is full"),
            StoreError::Busy => f.write_str("the database is busy"),
            StoreError::Other(e) => write!(f, "storage: {e}"),
        }
    }
}

impl std::error::Error for StoreError {}
