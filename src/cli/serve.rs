//! `careq serve`.
use crate::config::Config;
use crate::startup::{shutdown_signal, Application};

pub async fn run(config: Config) -> anyhow::Result<()> {
    crate::telemetry::init_logging(&config.log, config.log_format);
    let app = Application::build(config).await?;
    app.run_until(shutdown_signal()).await?;
    Ok(())
}
