//! `careq migrate`: apply migrations without serving.
pub async fn run(database_url: &str) -> anyhow::Result<()> {
    let pool = crate::db::connect(database_url, None, std::time::Duration::from_secs(5)).await?;
    crate::db::migrate(&pool).await?;
    pool.close().await;
    println!("migrations applied");
    Ok(())
}
