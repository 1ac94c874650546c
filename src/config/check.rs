//! Settings that make no sense are refused at start, all at once, each naming its variable and
//! flag and what it takes — before anything is opened or bound. (Clap has already refused what
//! does not parse as the right type.)
use super::{setting_name, Config};

/// One refused setting: its argument id and what it takes.
struct Refusal {
    id: &'static str,
    takes: String,
}

#[derive(Default)]
struct Refusals(Vec<Refusal>);

impl Refusals {
    fn refuse(&mut self, id: &'static str, takes: impl Into<String>) {
        self.0.push(Refusal {
            id,
            takes: takes.into(),
        });
    }

    /// A count or a duration where 0 would refuse or time out everything.
    fn at_least_one(&mut self, id: &'static str, value: u64) {
        if value == 0 {
            self.refuse(
                id,
                "a whole number of at least 1; 0 would refuse everything",
            );
        }
    }
}

impl Config {
    /// Refuses every setting that makes no sense (exit 2 at start), naming each one's variable
    /// and flag and what it takes.
    pub fn check(&self) -> anyhow::Result<()> {
        let mut r = Refusals::default();
        if !listen_address(&self.listen) {
            r.refuse("listen", "HOST:PORT, such as 127.0.0.1:8080 or :8080");
        }
        if let Some(m) = &self.metrics_listen {
            if !listen_address(m) {
                r.refuse("metrics_listen", "HOST:PORT, such as 127.0.0.1:9090");
            }
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            let missing = if self.tls_cert.is_some() {
                "tls_key"
            } else {
                "tls_cert"
            };
            r.refuse(
                missing,
                "a PEM file: set both CAREQ_TLS_CERT and CAREQ_TLS_KEY, or neither",
            );
        }
        if let Err(takes) = database_url(&self.database_url) {
            r.refuse("database_url", takes);
        }
        if let Some(pw) = &self.admin_password {
            let n = pw.chars().count();
            let (min, max) = (
                crate::auth::password::MIN_LENGTH,
                crate::auth::password::MAX_LENGTH,
            );
            if !(min..=max).contains(&n) {
                r.refuse(
                    "admin_password",
                    format!("a password of {min} to {max} characters"),
                );
            }
        }
        if let Some(url) = &self.notify_url {
            if !http_url(url) {
                r.refuse(
                    "notify_url",
                    "an http:// or https:// URL with a host, such as https://sms.example/hook",
                );
            }
        }
        if self.notify_secret.as_deref().is_some_and(str::is_empty) {
            r.refuse("notify_secret", "a non-empty secret");
        }
        if self.allowed_hosts.iter().any(|h| !host_name(h)) {
            r.refuse(
                "allowed_hosts",
                "comma-separated host names such as clinic.example (no scheme, path or '*')",
            );
        }
        if self.cors_origins.iter().any(|o| !origin(o)) {
            r.refuse(
                "cors_origins",
                "comma-separated origins such as https://desk.clinic.example (scheme, host, and \
                 port unless the scheme's default; no path, no '*')",
            );
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log) {
            r.refuse(
                "log",
                format!("a log filter such as `info` or `careq=debug,info` ({e})"),
            );
        }
        let counts: [(&'static str, u64); 22] = [
            ("body_limit_bytes", self.body_limit_bytes as u64),
            ("batch_max_items", self.batch_max_items as u64),
            ("uri_max_bytes", self.uri_max_bytes as u64),
            ("client_timeout_ms", self.client_timeout_ms),
            ("notify_timeout_ms", self.notify_timeout_ms),
            ("login_attempts", self.login_attempts.into()),
            ("rate_per_second", self.rate_per_second.into()),
            ("rate_burst", self.rate_burst.into()),
            ("kiosk_per_minute", self.kiosk_per_minute.into()),
            ("kiosk_burst", self.kiosk_burst.into()),
            ("db_max_bytes", self.db_max_bytes.unwrap_or(1)),
            ("max_in_flight", self.max_in_flight as u64),
            ("db_busy_timeout_ms", self.db_busy_timeout_ms),
            ("write_queue", self.write_queue as u64),
            ("queue_aging_minutes", self.queue_aging_minutes),
            ("token_ttl_seconds", self.token_ttl_seconds),
            ("max_sockets_per_clinic", self.max_sockets_per_clinic as u64),
            (
                "max_board_sockets_per_clinic",
                self.max_board_sockets_per_clinic as u64,
            ),
            (
                "password_hash_per_address",
                self.password_hash_per_address.unwrap_or(1) as u64,
            ),
            (
                "password_hash_slots",
                self.password_hash_slots.unwrap_or(1) as u64,
            ),
            ("export_retention_hours", self.export_retention_hours),
            ("export_lease_seconds", self.export_lease_seconds),
        ];
        for (id, value) in counts {
            r.at_least_one(id, value);
        }
        r.at_least_one("export_page_rows", self.export_page_rows.into());
        if r.0.is_empty() {
            return Ok(());
        }
        let lines: Vec<String> =
            r.0.iter()
                .map(|x| format!("{} takes {}", setting_name(x.id), x.takes))
                .collect();
        anyhow::bail!("{}", lines.join("\n"))
    }
}

/// `HOST:PORT` or `:PORT` with a port number (a name is resolved when binding).
fn listen_address(s: &str) -> bool {
    match s.rsplit_once(':') {
        Some((host, port)) => {
            port.parse::<u16>().is_ok() && !host.contains(char::is_whitespace) && {
                // An IPv6 address needs brackets, else its last group would read as the port.
                let bare = host.trim_start_matches('[').trim_end_matches(']');
                !bare.contains(':') || (host.starts_with('[') && host.ends_with(']'))
            }
        }
        None => false,
    }
}

/// `sqlite://PATH` (not a directory) or a PostgreSQL URL.
fn database_url(url: &str) -> Result<(), String> {
    const TAKES: &str = "sqlite://PATH or postgres://USER[:PASSWORD]@HOST[:PORT]/DB";
    if let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        let path = rest.split('?').next().unwrap_or(rest);
        if path.is_empty() {
            return Err(format!("{TAKES}; the SQLite path is empty"));
        }
        if path != ":memory:" && std::path::Path::new(path).is_dir() {
            return Err(format!(
                "{TAKES}; {path} is a directory: name a file in it, such as {}/careq.db",
                path.trim_end_matches('/')
            ));
        }
        return Ok(());
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return match reqwest::Url::parse(url) {
            Ok(u) if u.host_str().is_some_and(|h| !h.is_empty()) => Ok(()),
            _ => Err(format!("{TAKES}; this PostgreSQL URL does not parse")),
        };
    }
    Err(TAKES.to_string())
}

fn http_url(s: &str) -> bool {
    reqwest::Url::parse(s).is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty())
    })
}

/// A host name or address as a `Host` header carries it, without a port.
fn host_name(s: &str) -> bool {
    let s = s.trim();
    !s.is_empty()
        && !s.contains(['/', '*', '@', '?', '#'])
        && !s.contains(char::is_whitespace)
        && (s.starts_with('[') || !s.contains(':'))
}

/// An origin exactly as a browser sends it in `Origin`: `scheme://host[:port]`, nothing else.
fn origin(s: &str) -> bool {
    let s = s.trim();
    reqwest::Url::parse(s).is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https")
            && u.origin().ascii_serialization().eq_ignore_ascii_case(s)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_urls_hosts_and_origins_are_told_apart() {
        for ok in [
            "127.0.0.1:8080",
            ":0",
            "localhost:80",
            "[::1]:8080",
            "0.0.0.0:1",
        ] {
            assert!(listen_address(ok), "{ok}");
        }
        for bad in [
            "notanaddress",
            "127.0.0.1",
            "::1:8080",
            "host:99999",
            "a b:1",
        ] {
            assert!(!listen_address(bad), "{bad}");
        }
        assert!(database_url("sqlite://careq.db").is_ok());
        assert!(database_url("postgres://u:p@db.example/careq").is_ok());
        assert!(database_url("mysql://x/y").is_err());
        assert!(database_url("sqlite://").is_err());
        assert!(database_url("sqlite:///tmp")
            .unwrap_err()
            .contains("directory"));
        assert!(http_url("https://sms.example/hook"));
        assert!(!http_url("not-a-url"));
        assert!(!http_url("ftp://x.example/"));
        assert!(host_name("clinic.example") && host_name("[::1]"));
        assert!(!host_name("*") && !host_name("https://clinic.example") && !host_name(" "));
        assert!(origin("https://desk.clinic.example") && origin("http://localhost:3000"));
        for bad in [
            "*",
            "null",
            "https://desk.clinic.example/",
            "https://desk.clinic.example:443",
            "desk.clinic.example",
            "https://x.example/path",
        ] {
            assert!(!origin(bad), "{bad}");
        }
    }

    #[test]
    fn every_refusal_names_its_variable_and_flag_together() {
        let config = Config {
            rate_burst: 0,
            cors_origins: vec!["*".into()],
            log: "careq=[bad".into(),
            notify_url: Some("not-a-url".into()),
            ..Config::default()
        };
        let e = config.check().unwrap_err().to_string();
        for name in [
            "CAREQ_RATE_BURST (--rate-burst) takes a whole number of at least 1",
            "CAREQ_CORS_ORIGINS (--cors-origins) takes",
            "CAREQ_LOG (--log) takes",
            "CAREQ_NOTIFY_URL (--notify-url) takes",
        ] {
            assert!(e.contains(name), "{e}");
        }
        assert!(Config::default().check().is_ok());
    }
}
