//! `careq migrate`: apply migrations without serving.
pub async fn run(database_url: &str) -> anyhow::Result<()> {
    let db = crate::store::Store::open(crate::store::Options::cli(database_url)).await?;
    crate::startup::backfill(&db).await?;
    db.close().await;
    println!("migrations applied");
    Ok(())
}
