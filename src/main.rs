#![forbid(unsafe_code)]
use clap::Parser;

#[tokio::main]
async fn main() {
    let cli = careq::cli::Cli::parse();
    match careq::cli::run(cli).await {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("careq: {e:#}");
            std::process::exit(2);
        }
    }
}
