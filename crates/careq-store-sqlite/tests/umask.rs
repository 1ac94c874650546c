//! The file-mode test runs alone in its own process: the umask is the whole process's.
mod common;

use std::os::unix::fs::PermissionsExt;

use common::TestDb;
use rustix::fs::Mode;

#[tokio::test]
async fn a_database_created_under_a_permissive_umask_is_owner_only() {
    rustix::process::umask(Mode::empty());
    let db = TestDb::new();
    let (store, engine) = db.open_with(db.options());
    common::insert(&store, "x").await.unwrap();
    let backup = db.dir.path().join("backup.db");
    engine.backup(&backup).await.unwrap();
    drop((store, engine));
    for name in ["careq.db", "careq.db-wal", "careq.db-shm", "backup.db"] {
        let path = db.dir.path().join(name);
        let Ok(meta) = std::fs::metadata(&path) else {
            continue; // the WAL files are gone once the last connection closed
        };
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{name}");
    }
    assert_eq!(
        std::fs::metadata(db.dir.path().join("careq.db"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
}
