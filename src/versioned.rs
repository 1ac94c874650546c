//! What a resource with validators is: a version (the `ETag`) and an update time
//! (`Last-Modified`). Domain types implement it; `http::resource` turns it into headers.
use serde::Serialize;

/// A resource that has a version and an update time.
pub trait Versioned: Serialize {
    fn version(&self) -> i64;
    fn updated_at(&self) -> &str;
}
