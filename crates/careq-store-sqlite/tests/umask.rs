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
    for name in ["careq.db", "backup.db"] {
        let mode = std::fs::metadata(db.dir.path().join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");
    }
}
