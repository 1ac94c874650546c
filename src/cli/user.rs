//! `careq user add|passwd|list`: manage staff accounts from the server's own shell. Passwords are
//! read from standard input (first line), never from arguments, so they stay out of `ps`.
use std::io::BufRead;

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
    /// Set a user's password, read from standard input.
    Passwd { username: String },
    /// List users.
    List,
}

fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn problem_text(e: crate::error::ApiError) -> anyhow::Error {
    let p = e.problem();
    let details: Vec<String> = p
        .errors
        .iter()
        .map(|f| format!("{}: {}", f.pointer, f.message))
        .collect();
    anyhow::anyhow!("{} ({}) {}", p.detail, p.title, details.join("; "))
}

pub async fn run(database_url: &str, cmd: UserCommand) -> anyhow::Result<()> {
    let db = crate::store::Store::open(crate::store::Options::cli(database_url)).await?;
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
                .map_err(problem_text)?;
            println!(
                "created {} ({}) {}",
                user.username,
                user.role.as_str(),
                user.id
            );
        }
        UserCommand::Passwd { username } => {
            let pw = read_password()?;
            password::validate(&pw, "password").map_err(problem_text)?;
            let hash = password::hash(pw).await.map_err(problem_text)?;
            if !crate::users::set_password(&db, &username, &hash)
                .await
                .map_err(problem_text)?
            {
                anyhow::bail!("no user named {username}");
            }
            println!("password changed for {username}");
        }
        UserCommand::List => {
            let mut after = String::new();
            loop {
                let page = crate::users::list(&db, &after, 200)
                    .await
                    .map_err(problem_text)?;
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
