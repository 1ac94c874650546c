//! Files and directories careq writes hold patient data or secrets (the database, export files,
//! backups, audit archives): each is made readable by careq's own user only — files 0600,
//! directories 0700 — whatever the process's umask, which can only take bits away (the mode is
//! set again once the file exists, so it is exact).
use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The mode of every file careq creates.
pub const FILE_MODE: u32 = 0o600;
/// The mode of every directory careq creates.
pub const DIR_MODE: u32 = 0o700;

/// Creates `path`, which must not exist yet, for writing: owner-only.
pub fn create_new(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)?;
    file.set_permissions(Permissions::from_mode(FILE_MODE))?;
    Ok(file)
}

/// Creates `path` for writing, or empties it if it exists (a file of careq's own, such as an
/// export being written): owner-only either way.
pub async fn create_or_truncate(path: &Path) -> io::Result<tokio::fs::File> {
    let file = tokio::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)
        .await?;
    file.set_permissions(Permissions::from_mode(FILE_MODE))
        .await?;
    Ok(file)
}

/// Creates the directory `path` and its missing parents, owner-only. A directory that exists
/// already is left as it is (an operator may have chosen its mode).
pub fn create_dir_all(path: &Path) -> io::Result<()> {
    if path.is_dir() {
        return Ok(());
    }
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(path)?;
    std::fs::set_permissions(path, Permissions::from_mode(DIR_MODE))
}

/// The permission bits of `path` when its group or other users may use it at all.
pub fn open_to_others(path: &Path) -> io::Result<Option<u32>> {
    let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
    Ok((mode & 0o077 != 0).then_some(mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[tokio::test]
    async fn files_and_directories_are_created_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        create_dir_all(&nested).unwrap();
        assert_eq!(mode(&nested), DIR_MODE);
        let new = nested.join("new");
        drop(create_new(&new).unwrap());
        assert_eq!(mode(&new), FILE_MODE);
        assert!(create_new(&new).is_err(), "an existing file is refused");
        let loose = nested.join("loose");
        std::fs::write(&loose, b"x").unwrap();
        std::fs::set_permissions(&loose, Permissions::from_mode(0o644)).unwrap();
        assert_eq!(open_to_others(&loose).unwrap(), Some(0o644));
        drop(create_or_truncate(&loose).await.unwrap());
        assert_eq!(mode(&loose), FILE_MODE);
        assert_eq!(std::fs::metadata(&loose).unwrap().len(), 0);
        assert_eq!(open_to_others(&loose).unwrap(), None);
    }
}
