#![forbid(unsafe_code)]
#[tokio::main]
async fn main() {
    let cli = match careq::cli::parse() {
        Ok(cli) => cli,
        Err(e) => {
            eprintln!("careq: {e:#}");
            std::process::exit(2);
        }
    };
    match careq::cli::run(cli).await {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("careq: {e:#}");
            std::process::exit(2);
        }
    }
}
