//! `careq migrate`: apply migrations without serving.
pub async fn run(database_url: &str) -> anyhow::Result<()> {
    let db = crate::db::Db::open(crate::db::cli_options(database_url)).await?;
    db.close().await;
    println!("migrations applied");
    Ok(())
}
