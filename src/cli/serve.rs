//! `careq serve`: every setting is checked before logging starts, and before anything is bound
//! or opened.
use crate::config::Config;
use crate::startup::{shutdown_signal, Application};

pub async fn run(config: Config) -> anyhow::Result<()> {
    config.check()?;
    crate::telemetry::init_logging(&config.log, config.log_format);
    for flag in &config.secrets_on_command_line {
        tracing::warn!(flag = *flag, "{}", super::secret_flag_warning(flag));
    }
    let app = Application::build(config).await?;
    app.run_until(shutdown_signal()).await?;
    Ok(())
}
