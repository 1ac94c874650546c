//! Settings for `careq serve`: defaults, then `CAREQ_*` environment variables, then flags (a flag
//! wins). Secrets are redacted in `Debug`.
use std::fmt;
use std::time::Duration;

use clap::Args;

mod check;
pub mod secrets;

pub use secrets::ADMIN_PASSWORD_FILE_NAME;

#[derive(Args, Clone)]
pub struct Config {
    /// Address to bind; port 0 picks a free port (the bound address is logged).
    #[arg(long, env = "CAREQ_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// PEM certificate chain: with `CAREQ_TLS_KEY`, careq serves HTTPS (HTTP/1.1 and HTTP/2 by
    /// ALPN) and sends `Strict-Transport-Security`. Re-read on SIGHUP.
    #[arg(long, env = "CAREQ_TLS_CERT")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// PEM private key for `CAREQ_TLS_CERT`.
    #[arg(long, env = "CAREQ_TLS_KEY")]
    pub tls_key: Option<std::path::PathBuf>,
    /// `sqlite://PATH` (created if missing) or `postgres://USER@HOST/DB` (must exist).
    #[arg(
        long,
        env = "CAREQ_DATABASE_URL",
        default_value = "sqlite://careq.db",
        hide_env_values = true
    )]
    pub database_url: String,
    /// Password of the `admin` user created when no active admin exists; if unset, one is
    /// generated and written to a new file (see `CAREQ_ADMIN_PASSWORD_OUT`).
    #[arg(long, env = "CAREQ_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// Request bodies larger than this answer 413.
    #[arg(long, env = "CAREQ_BODY_LIMIT_BYTES", default_value_t = 1_048_576)]
    pub body_limit_bytes: usize,
    /// Batches with more items answer 413.
    #[arg(long, env = "CAREQ_BATCH_MAX_ITEMS", default_value_t = 1000)]
    pub batch_max_items: usize,
    /// Request targets longer than this answer 414.
    #[arg(long, env = "CAREQ_URI_MAX_BYTES", default_value_t = 8192)]
    pub uri_max_bytes: usize,
    /// A body slower than this answers 408; slow headers get the connection closed.
    #[arg(long, env = "CAREQ_CLIENT_TIMEOUT_MS", default_value_t = 30_000)]
    pub client_timeout_ms: u64,
    /// Comma-separated host names served (port ignored); others answer 421. Unset: any.
    #[arg(long, env = "CAREQ_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
    /// The origin clients reach careq at (`https://clinic.example:8443`): every absolute link
    /// careq writes (FHIR `fullUrl`, Bundle links, `Location`) starts with it, never with the
    /// request's `Host`. Scheme `http` or `https`, a host, an optional port; no path, query or
    /// fragment. Unset: the bound listen address with the scheme careq serves.
    #[arg(long, env = "CAREQ_PUBLIC_URL", value_parser = PublicUrl::parse)]
    pub public_url: Option<PublicUrl>,
    /// Notifier webhook URL; unset makes `notify` answer 501.
    #[arg(long, env = "CAREQ_NOTIFY_URL")]
    pub notify_url: Option<String>,
    /// A notifier slower than this answers 504.
    #[arg(long, env = "CAREQ_NOTIFY_TIMEOUT_MS", default_value_t = 5000)]
    pub notify_timeout_ms: u64,
    /// Signs each delivery (`X-Careq-Signature`, HMAC-SHA256) so the receiver can check it came
    /// from careq; unset: deliveries are not signed.
    #[arg(long, env = "CAREQ_NOTIFY_SECRET", hide_env_values = true)]
    pub notify_secret: Option<String>,
    /// A PEM file of extra root certificates to trust for an HTTPS notifier (a private CA or a
    /// self-signed receiver), besides the bundled public roots.
    #[arg(long, env = "CAREQ_NOTIFY_CA_FILE")]
    pub notify_ca_file: Option<std::path::PathBuf>,
    /// Failed logins per user and client IP per 15 minutes before 429.
    #[arg(long, env = "CAREQ_LOGIN_ATTEMPTS", default_value_t = 10)]
    pub login_attempts: u32,
    /// Sustained requests per second per token before 429.
    #[arg(long, env = "CAREQ_RATE_PER_SECOND", default_value_t = 50)]
    pub rate_per_second: u32,
    /// Burst of requests per token before 429.
    #[arg(long, env = "CAREQ_RATE_BURST", default_value_t = 100)]
    pub rate_burst: u32,
    /// Tickets a kiosk (one kiosk key) may issue per minute, sustained, before 429.
    #[arg(long, env = "CAREQ_KIOSK_PER_MINUTE", default_value_t = 30)]
    pub kiosk_per_minute: u32,
    /// Tickets a kiosk may issue at once before 429.
    #[arg(long, env = "CAREQ_KIOSK_BURST", default_value_t = 10)]
    pub kiosk_burst: u32,
    /// Cap on the database size in bytes; reaching it answers 507.
    #[arg(long, env = "CAREQ_DB_MAX_BYTES")]
    pub db_max_bytes: Option<u64>,
    /// Requests handled at once; more are shed with 503 + Retry-After instead of queueing.
    #[arg(long, env = "CAREQ_MAX_IN_FLIGHT", default_value_t = 1024)]
    pub max_in_flight: usize,
    /// How long a write waits for SQLite's lock before answering 503.
    #[arg(long, env = "CAREQ_DB_BUSY_TIMEOUT_MS", default_value_t = 5000)]
    pub db_busy_timeout_ms: u64,
    /// Units of work that may wait for the one writer; beyond it writes answer 503 at once.
    #[arg(long, env = "CAREQ_WRITE_QUEUE", default_value_t = 4096)]
    pub write_queue: usize,
    /// Comma-separated origins allowed to call the API from a browser (CORS). Unset: none.
    #[arg(long, env = "CAREQ_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Minutes of waiting that raise a ticket's effective priority by one level.
    #[arg(long, env = "CAREQ_QUEUE_AGING_MINUTES", default_value_t = 30)]
    pub queue_aging_minutes: u64,
    /// Lifetime of bearer tokens in seconds (default 12 hours).
    #[arg(long, env = "CAREQ_TOKEN_TTL_SECONDS", default_value_t = 43_200)]
    pub token_ttl_seconds: u64,
    /// Live sockets opened with a staff token (counter and reception screens) at once per
    /// clinic; more answer 503. Board screens have their own room
    /// (`CAREQ_MAX_BOARD_SOCKETS_PER_CLINIC`).
    #[arg(long, env = "CAREQ_MAX_SOCKETS_PER_CLINIC", default_value_t = 64)]
    pub max_sockets_per_clinic: usize,
    /// A second address serving only `/metrics`, without a token (for a Prometheus scraper on a
    /// private interface). Unset: `/metrics` is served on the main address to admins only.
    #[arg(long, env = "CAREQ_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// Comma-separated networks (CIDR) of reverse proxies whose client-address header
    /// (`CAREQ_CLIENT_IP_HEADER`) is believed, for the hops they appended; from any other peer
    /// it is ignored. Unset: none.
    #[arg(long, env = "CAREQ_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_cidr)]
    pub trusted_proxies: Vec<crate::auth::client_ip::Cidr>,
    /// The one header a trusted proxy writes the client's address in: `x-forwarded-for` or
    /// `forwarded` (RFC 7239). The other is never read; the proxy must overwrite or append to
    /// the one chosen.
    #[arg(
        long,
        env = "CAREQ_CLIENT_IP_HEADER",
        value_enum,
        default_value_t = crate::auth::client_ip::ClientIpHeader::XForwardedFor
    )]
    pub client_ip_header: crate::auth::client_ip::ClientIpHeader,
    /// A file whose content (one trailing newline dropped) is the admin password; instead of
    /// `CAREQ_ADMIN_PASSWORD`, which then must be unset.
    #[arg(long, env = "CAREQ_ADMIN_PASSWORD_FILE")]
    pub admin_password_file: Option<std::path::PathBuf>,
    /// Where a generated admin password is written (a new file, mode 0600). Unset:
    /// `careq-admin-password` in the working directory.
    #[arg(long, env = "CAREQ_ADMIN_PASSWORD_OUT")]
    pub admin_password_out: Option<std::path::PathBuf>,
    /// A file whose content is the notifier secret; instead of `CAREQ_NOTIFY_SECRET`.
    #[arg(long, env = "CAREQ_NOTIFY_SECRET_FILE")]
    pub notify_secret_file: Option<std::path::PathBuf>,
    /// A file whose content is the database URL (one with a password in it); instead of
    /// `CAREQ_DATABASE_URL`.
    #[arg(long, env = "CAREQ_DATABASE_URL_FILE")]
    pub database_url_file: Option<std::path::PathBuf>,
    /// The flags that carried a secret on the command line (where `ps` shows it), warned about
    /// at start. Filled from the parsed command line, not settable itself.
    #[arg(skip)]
    pub secrets_on_command_line: Vec<&'static str>,
    /// Password hashes (Argon2, ~19 MiB each) computed at once, each on a thread of its own that
    /// keeps its memory; unset: one per core, at most 4. Four times as many sign-ins may wait;
    /// more answer 503.
    #[arg(long, env = "CAREQ_PASSWORD_HASH_SLOTS")]
    pub password_hash_slots: Option<usize>,
    /// Places in the hashing gate (running or waiting) one client address (an IPv6 /64) may
    /// hold at once; more from it answer 429 before any hashing. Unset: two per slot. Always
    /// fewer than all places.
    #[arg(long, env = "CAREQ_PASSWORD_HASH_PER_ADDRESS")]
    pub password_hash_per_address: Option<usize>,
    /// Log filter (tracing `EnvFilter` syntax).
    #[arg(long, env = "CAREQ_LOG", default_value = "info")]
    pub log: String,
    /// `json` (one JSON object per line), `text` (for people), or `auto`: text when stdout is a
    /// terminal, JSON otherwise.
    #[arg(long, env = "CAREQ_LOG_FORMAT", value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,
    /// Directory of finished export files. Unset: `NAME-exports/` beside a SQLite database file
    /// `NAME.db`, or `careq-exports/` in the working directory for PostgreSQL. Several
    /// processes on one PostgreSQL database must share it.
    #[arg(long, env = "CAREQ_EXPORT_DIR")]
    pub export_dir: Option<std::path::PathBuf>,
    /// Hours an export file is kept after it is finished; then it is removed and its URL
    /// answers 410.
    #[arg(long, env = "CAREQ_EXPORT_RETENTION_HOURS", default_value_t = 168)]
    pub export_retention_hours: u64,
    /// Seconds a process holds a running export without a heartbeat; a job whose runner died
    /// is picked up by another (or the next start) once this runs out.
    #[arg(long, env = "CAREQ_EXPORT_LEASE_SECONDS", default_value_t = 30)]
    pub export_lease_seconds: u64,
    /// Rows an export reads per page (tuning; each page is one query in the export's snapshot).
    #[arg(
        long,
        env = "CAREQ_EXPORT_PAGE_ROWS",
        default_value_t = 1000,
        hide = true
    )]
    pub export_page_rows: u32,
    /// Test-only: a retention shorter than an hour. Not settable from the command line.
    #[arg(skip)]
    pub export_retention_override: Option<Duration>,
    /// Test-only: a runner waits for a permit here before it writes a claimed job's rows, so a
    /// test can hold a job in `running`. Not settable from the command line.
    #[arg(skip)]
    pub export_gate: Option<std::sync::Arc<tokio::sync::Semaphore>>,
    /// Serves test-only routes (a handler that panics). Not settable from the command line.
    #[arg(skip)]
    pub test_routes: bool,
    /// The clock day-based rules read; a test may move it. Not settable from the command line.
    #[arg(skip)]
    pub clock: crate::clock::Clock,
    /// Live sockets opened with the clinic's board key (waiting-room screens) at once per
    /// clinic; more answer 503. Apart from the staff sockets' room, so a leaked board key
    /// cannot take the sockets the counters need.
    #[arg(long, env = "CAREQ_MAX_BOARD_SOCKETS_PER_CLINIC", default_value_t = 8)]
    pub max_board_sockets_per_clinic: usize,
}

/// An origin careq is reached at: `scheme://host[:port]`, without a trailing slash.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicUrl(String);

impl PublicUrl {
    /// Accepts an absolute `http` or `https` URL naming only an origin (a trailing `/` is
    /// allowed); refuses user info, a path, a query or a fragment, saying which.
    pub fn parse(s: &str) -> Result<Self, String> {
        const TAKES: &str = "CAREQ_PUBLIC_URL takes an origin such as https://clinic.example:8443";
        let url = url::Url::parse(s.trim())
            .map_err(|e| format!("{s:?} is not an absolute URL ({e}); {TAKES}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("the scheme of {s:?} is not http or https; {TAKES}"));
        }
        if url.host().is_none() {
            return Err(format!("{s:?} names no host; {TAKES}"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!("{s:?} holds user info; {TAKES}"));
        }
        if url.path() != "/" {
            return Err(format!(
                "{s:?} has a path ({}); careq is served at the root of its origin; {TAKES}",
                url.path()
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!("{s:?} has a query or fragment; {TAKES}"));
        }
        // Scheme and host lower-cased, an international name in its ASCII form, and the
        // scheme's default port left out.
        Ok(Self(url.origin().ascii_serialization()))
    }

    /// The origin of a bound address: `http://127.0.0.1:8080`, `https://[::1]:8443`.
    pub fn of_address(tls: bool, addr: std::net::SocketAddr) -> Self {
        let scheme = if tls { "https" } else { "http" };
        Self(format!("{scheme}://{addr}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PublicUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PublicUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

fn parse_cidr(s: &str) -> Result<crate::auth::client_ip::Cidr, String> {
    crate::auth::client_ip::Cidr::parse(s)
}

impl Config {
    /// Where export files live (see `export_dir`).
    pub fn export_dir(&self) -> std::path::PathBuf {
        if let Some(dir) = &self.export_dir {
            return dir.clone();
        }
        let path = self
            .database_url
            .strip_prefix("sqlite://")
            .or_else(|| self.database_url.strip_prefix("sqlite:"))
            .map(|p| p.split('?').next().unwrap_or(p));
        match path {
            Some(p) => {
                let p = std::path::Path::new(p);
                let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("careq");
                p.with_file_name(format!("{stem}-exports"))
            }
            None => std::path::PathBuf::from("careq-exports"),
        }
    }

    /// How long a finished export file is kept.
    pub fn export_retention(&self) -> Duration {
        self.export_retention_override
            .unwrap_or(Duration::from_secs(
                self.export_retention_hours.saturating_mul(3600),
            ))
    }

    pub fn client_timeout(&self) -> Duration {
        Duration::from_millis(self.client_timeout_ms)
    }

    /// Whether `host` (without port) may be served.
    pub fn host_allowed(&self, host: &str) -> bool {
        self.allowed_hosts.is_empty()
            || self
                .allowed_hosts
                .iter()
                .any(|h| h.trim().eq_ignore_ascii_case(host))
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("database_url", &self.database_url)
            .field(
                "admin_password",
                &self.admin_password.as_ref().map(|_| "[redacted]"),
            )
            .field("body_limit_bytes", &self.body_limit_bytes)
            .field("batch_max_items", &self.batch_max_items)
            .field("uri_max_bytes", &self.uri_max_bytes)
            .field("client_timeout_ms", &self.client_timeout_ms)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("public_url", &self.public_url)
            .field("notify_url", &self.notify_url)
            .field("notify_timeout_ms", &self.notify_timeout_ms)
            .field(
                "notify_secret",
                &self.notify_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("notify_ca_file", &self.notify_ca_file)
            .field("login_attempts", &self.login_attempts)
            .field("rate_per_second", &self.rate_per_second)
            .field("rate_burst", &self.rate_burst)
            .field("kiosk_per_minute", &self.kiosk_per_minute)
            .field("kiosk_burst", &self.kiosk_burst)
            .field("db_max_bytes", &self.db_max_bytes)
            .field("token_ttl_seconds", &self.token_ttl_seconds)
            .field("password_hash_slots", &self.password_hash_slots)
            .field("password_hash_per_address", &self.password_hash_per_address)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("client_ip_header", &self.client_ip_header)
            .field("admin_password_file", &self.admin_password_file)
            .field("admin_password_out", &self.admin_password_out)
            .field("notify_secret_file", &self.notify_secret_file)
            .field("database_url_file", &self.database_url_file)
            .field("metrics_listen", &self.metrics_listen)
            .field("max_sockets_per_clinic", &self.max_sockets_per_clinic)
            .field("max_in_flight", &self.max_in_flight)
            .field("queue_aging_minutes", &self.queue_aging_minutes)
            .field("db_busy_timeout_ms", &self.db_busy_timeout_ms)
            .field("write_queue", &self.write_queue)
            .field("cors_origins", &self.cors_origins)
            .field("log", &self.log)
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
            .field("log_format", &self.log_format)
            .field("export_dir", &self.export_dir)
            .field("export_retention_hours", &self.export_retention_hours)
            .field("export_lease_seconds", &self.export_lease_seconds)
            .field("export_page_rows", &self.export_page_rows)
            .field(
                "max_board_sockets_per_clinic",
                &self.max_board_sockets_per_clinic,
            )
            .finish()
    }
}

/// The settings as a command of their own, to look up an argument's variable and flag by id
/// and to parse the defaults.
#[derive(clap::Parser)]
struct Wrap {
    #[command(flatten)]
    c: Config,
}

impl Default for Config {
    /// The documented defaults, as `careq serve` with no flags and no `CAREQ_*` variables would
    /// use. The environment is not read: the defaults live in one place (the attributes), and a
    /// developer's exported `CAREQ_*` cannot change what the test suite tests.
    fn default() -> Self {
        use clap::{CommandFactory, FromArgMatches};
        let matches = Wrap::command()
            .mut_args(|a| a.env(None))
            .try_get_matches_from(["careq"])
            .expect("the defaults parse");
        Wrap::from_arg_matches(&matches)
            .map(|w| w.c)
            .expect("the defaults parse")
    }
}

/// How a setting is named to the operator: `CAREQ_RATE_BURST (--rate-burst)`.
pub(crate) fn setting_name(id: &str) -> String {
    use clap::CommandFactory;
    let command = Wrap::command();
    let Some(arg) = command.get_arguments().find(|a| a.get_id() == id) else {
        return id.to_string();
    };
    match (arg.get_env(), arg.get_long()) {
        (Some(env), Some(long)) => format!("{} (--{long})", env.to_string_lossy()),
        (Some(env), None) => env.to_string_lossy().into_owned(),
        (None, Some(long)) => format!("--{long}"),
        (None, None) => id.to_string(),
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Auto,
    Json,
    Text,
}

#[cfg(test)]
mod tests {
    use super::PublicUrl;

    #[test]
    fn a_public_url_is_kept_as_its_origin() {
        for (given, origin) in [
            ("https://clinic.example:8443", "https://clinic.example:8443"),
            (
                "https://Clinic.Example:8443/",
                "https://clinic.example:8443",
            ),
            ("HTTP://clinic.example:80", "http://clinic.example"),
            ("https://clinic.example:443", "https://clinic.example"),
            ("http://[::1]:8080", "http://[::1]:8080"),
            ("https://bücher.example", "https://xn--bcher-kva.example"),
        ] {
            assert_eq!(PublicUrl::parse(given).unwrap().as_str(), origin, "{given}");
        }
    }

    #[test]
    fn a_public_url_that_is_no_origin_is_refused_saying_why() {
        for (given, says) in [
            ("https://clinic.example/careq", "path"),
            ("https://clinic.example/?a=b", "query"),
            ("https://clinic.example/#top", "fragment"),
            ("https://me@clinic.example", "user info"),
            ("ftp://clinic.example", "scheme"),
            ("file:///etc/passwd", "scheme"),
            ("clinic.example", "not an absolute URL"),
            ("", "not an absolute URL"),
        ] {
            let e = PublicUrl::parse(given).unwrap_err();
            assert!(e.contains(says), "{given}: {e}");
        }
    }

    #[test]
    fn the_default_origin_is_the_bound_address_with_the_scheme_served() {
        let addr = "127.0.0.1:41234".parse().unwrap();
        assert_eq!(
            PublicUrl::of_address(false, addr).as_str(),
            "http://127.0.0.1:41234"
        );
        let addr = "[::1]:8443".parse().unwrap();
        assert_eq!(
            PublicUrl::of_address(true, addr).as_str(),
            "https://[::1]:8443"
        );
    }
}
