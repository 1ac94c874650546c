//! At start: an active admin exists afterwards, or the log says why not; the operator hears
//! when the admin password setting is not used; a generated password goes to a file of the
//! operator's alone, never to a terminal or a log.
use crate::config::Config;
use crate::users::first_admin::{self, Admins, Made};

/// How the admin password settings are named in what careq says.
const SETTING: &str =
    "the admin password setting (CAREQ_ADMIN_PASSWORD or CAREQ_ADMIN_PASSWORD_FILE)";

pub async fn ensure(db: &crate::store::Store, config: &Config) -> anyhow::Result<()> {
    let problem = |e: crate::error::ApiError| anyhow::anyhow!("{}", e.problem().detail);
    if let Admins::Active { admin_is_one } = first_admin::check(db).await.map_err(problem)? {
        if config.admin_password.is_some() {
            let reset = if admin_is_one {
                "careq user passwd admin".to_string()
            } else {
                "careq user passwd NAME, with the name of an active admin (careq user list)".into()
            };
            tracing::warn!(
                "{SETTING} is ignored: an active admin exists already, and careq sets the \
                 password only when it creates the first admin; to reset a password run `{reset}`"
            );
        }
        return Ok(());
    }
    // The password is made, hashed and (when generated) written before the account changes,
    // so no admin can exist whose password nobody was given.
    let (password, file) = match &config.admin_password {
        Some(pw) => (pw.clone(), None),
        None => {
            let pw = crate::auth::tokens::new_token()[..24].to_string();
            let path =
                crate::config::secrets::write_secret_file(&config.admin_password_path(), &pw)?;
            (pw, Some(path))
        }
    };
    let made = match crate::auth::password::hash(password).await {
        Ok(hash) => first_admin::make_admin(db, hash).await,
        Err(e) => Err(e),
    };
    let keep_file = matches!(made, Ok(Made::Created | Made::Reactivated));
    if let (Some(path), false) = (&file, keep_file) {
        let _ = std::fs::remove_file(path);
    }
    let source = match &file {
        Some(path) => format!(
            "a generated password, written to {} (readable by its owner only)",
            path.display()
        ),
        None => "the password of the admin password setting".into(),
    };
    match made.map_err(problem)? {
        Made::Created => {
            tracing::info!("no active admin existed: created user `admin` with {source}")
        }
        Made::Reactivated => tracing::warn!(
            "no active admin existed: made the deactivated admin `admin` active again with \
             {source}; its earlier sessions stay ended"
        ),
        Made::NotNeeded => {}
        Made::Refused(why) => tracing::error!(
            "no active admin exists, and none was created: {why}; create one with \
             `careq user add NAME --role admin` and restart careq"
        ),
    }
    if let (Some(path), true) = (&file, keep_file) {
        // On the terminal too: the operator starting careq by hand may not read the log.
        eprintln!(
            "careq: the password of the admin account `admin` is in {} (mode 0600).\n\
             careq: sign in, change it (`careq user passwd admin`), then delete the file.",
            path.display()
        );
    }
    Ok(())
}
