//! `careq user add|passwd|deactivate|list`: manage staff accounts from the server's own shell.
//! Passwords never come from arguments (they would show in `ps`): at a terminal they are asked
//! for twice without echo; from a pipe the first line of standard input is the password.
use std::io::{BufRead, IsTerminal};

use clap::Subcommand;

use crate::auth::{password, Role};
use crate::users::domain::NewUser;

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from standard input.
    Add {
        username: String,
        #[arg(long, value_parser = ["admin", "clinician", "receptionist"])]
        role: String,
        /// A clinic the user belongs to (repeatable).
        #[arg(long = "clinic")]
        clinics: Vec<String>,
    },
    /// Set a user's password; every session of theirs ends.
    Passwd { username: String },
    /// Deactivate a user: they can no longer sign in and every session of theirs ends.
    Deactivate { username: String },
    /// List users.
    List,
}

fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Password again: ")?;
        if first != again {
            anyhow::bail!("password: the two entries differ");
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

pub async fn run(database_url: &str, cmd: UserCommand) -> anyhow::Result<()> {
    let db = crate::store::Store::open(crate::store::Options::cli(database_url)).await?;
    crate::startup::backfill(&db).await?;
    match cmd {
        UserCommand::Add {
            username,
            role,
            clinics,
        } => {
            let new = NewUser {
                username,
                password: read_password()?,
                role: Role::parse(&role).expect("clap checked the role"),
                clinic_ids: clinics,
            };
            let user = crate::users::create(&db, new, None)
                .await
                .map_err(super::plain)?;
            println!(
                "created {} ({}) {}",
                user.username,
                user.role.as_str(),
                user.id
            );
        }
        UserCommand::Passwd { username } => {
            let pw = read_password()?;
            password::validate(&pw, "/password").map_err(super::plain)?;
            let hash = password::hash(pw).await.map_err(super::plain)?;
            if !crate::users::set_password(&db, &username, &hash)
                .await
                .map_err(super::plain)?
            {
                anyhow::bail!("no user named {username}");
            }
            println!("password changed for {username}");
        }
        UserCommand::Deactivate { username } => {
            if !crate::users::deactivate(&db, &username)
                .await
                .map_err(super::plain)?
            {
                anyhow::bail!("no user named {username}");
            }
            println!("deactivated {username}; their sessions have ended");
        }
        UserCommand::List => {
            println!("ID\tUSERNAME\tROLE\tSTATE\tCLINICS");
            let mut after = String::new();
            loop {
                let page = crate::users::list(&db, &after, 200)
                    .await
                    .map_err(super::plain)?;
                for u in page.iter().take(200) {
                    println!(
                        "{}\t{}\t{}\t{}\t{}",
                        u.id,
                        u.username,
                        u.role.as_str(),
                        if u.active { "active" } else { "inactive" },
                        u.clinic_ids.join(",")
                    );
                }
                if page.len() <= 200 {
                    break;
                }
                after = page[199].id.clone();
            }
        }
    }
    db.close().await;
    Ok(())
}
