#![forbid(unsafe_code)]
#[tokio::main]
async fn main() {
    // Files careq writes hold patient data: whatever it (or SQLite) creates is owner-only,
    // beside the explicit modes of `private_files`.
    rustix::process::umask(rustix::fs::Mode::from_bits_truncate(0o077));
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
