//! Secrets at start: read from `…_FILE` variables (so they need be neither in the environment
//! nor on the command line), flagged when given as command-line flags (which `ps` shows to every
//! user of the machine), and a generated admin password written to a file of the operator's
//! alone rather than to a terminal or log.
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::parser::ValueSource;
use clap::ArgMatches;

use super::{setting_name, Config};

/// Where a generated admin password goes unless `CAREQ_ADMIN_PASSWORD_OUT` names a path.
pub const ADMIN_PASSWORD_FILE_NAME: &str = "careq-admin-password";

/// Whether the argument `id` was given (flag or variable), not left at its default.
fn given(m: &ArgMatches, id: &str) -> bool {
    matches!(
        m.value_source(id),
        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
    )
}

/// The content of a secret file, one trailing line ending dropped (editors add one).
pub fn read_secret_file(path: &Path, file_id: &str) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "{} names {}, which cannot be read",
            setting_name(file_id),
            path.display()
        )
    })?;
    let text = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(&text);
    if text.is_empty() {
        anyhow::bail!(
            "{} names {}, which is empty",
            setting_name(file_id),
            path.display()
        );
    }
    Ok(text.to_string())
}

/// `value` from `file`, unless the value itself was given too (an error: which one was meant?).
fn from_file(
    m: &ArgMatches,
    value_id: &str,
    file_id: &str,
    file: Option<&Path>,
) -> anyhow::Result<Option<String>> {
    let Some(file) = file else { return Ok(None) };
    if given(m, value_id) {
        anyhow::bail!(
            "{} and {} are both set; give the secret one way only",
            setting_name(value_id),
            setting_name(file_id)
        );
    }
    read_secret_file(file, file_id).map(Some)
}

/// Whether a database URL carries a password.
pub fn url_has_password(url: &str) -> bool {
    reqwest::Url::parse(url).is_ok_and(|u| u.password().is_some())
}

impl Config {
    /// Completes the settings from how they were given: secrets read from their `…_FILE`, and
    /// the flags that carried a secret on the command line noted for a warning.
    pub fn from_command_line(&mut self, m: &ArgMatches) -> anyhow::Result<()> {
        let file = self.admin_password_file.clone();
        if let Some(pw) = from_file(m, "admin_password", "admin_password_file", file.as_deref())? {
            self.admin_password = Some(pw);
        }
        let file = self.notify_secret_file.clone();
        if let Some(s) = from_file(m, "notify_secret", "notify_secret_file", file.as_deref())? {
            self.notify_secret = Some(s);
        }
        let file = self.database_url_file.clone();
        if let Some(url) = from_file(m, "database_url", "database_url_file", file.as_deref())? {
            self.database_url = url;
        }
        // An empty variable (`CAREQ_CORS_ORIGINS=`) or a stray comma means no entry, not an
        // entry that matches nothing (an empty host would turn every request away with 421).
        self.allowed_hosts.retain(|h| !h.trim().is_empty());
        self.cors_origins.retain(|o| !o.trim().is_empty());
        let flag = |id| m.value_source(id) == Some(ValueSource::CommandLine);
        self.secrets_on_command_line.clear();
        if flag("admin_password") {
            self.secrets_on_command_line.push("--admin-password");
        }
        if flag("notify_secret") {
            self.secrets_on_command_line.push("--notify-secret");
        }
        if flag("database_url") && url_has_password(&self.database_url) {
            self.secrets_on_command_line.push("--database-url");
        }
        Ok(())
    }

    /// Where a generated admin password is written.
    pub fn admin_password_path(&self) -> PathBuf {
        self.admin_password_out
            .clone()
            .unwrap_or_else(|| PathBuf::from(ADMIN_PASSWORD_FILE_NAME))
    }
}

/// Writes `secret` to a new file only its owner can read (mode 0600 whatever the umask); an
/// existing file is never overwritten. Returns the file's absolute path.
pub fn write_secret_file(path: &Path, secret: &str) -> anyhow::Result<PathBuf> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).with_context(|| {
        format!(
            "writing the generated admin password to {} ({}); careq never overwrites a file \
             there: move it away, or name another path",
            path.display(),
            setting_name("admin_password_out")
        )
    })?;
    // The mode given at creation is masked by the umask (which can only take bits away from
    // 0600); set it outright anyway, so the file is 0600 whatever the process was started with.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(format!("{secret}\n").as_bytes())?;
    file.sync_all()?;
    Ok(std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()))
}
