//! The webhook notifier's client, below every handler (the app's state holds it): one
//! HTTPS-capable client for the process, the URL, the signing secret and the deadline.
use std::time::Duration;

use anyhow::Context;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header a signed delivery carries.
pub const SIGNATURE_HEADER: &str = "x-careq-signature";

/// The notifier: one HTTPS-capable client for the process (connections are reused), the URL,
/// the signing secret and the deadline.
pub struct Notifier {
    pub(crate) client: reqwest::Client,
    pub(crate) url: Option<String>,
    pub(crate) secret: Option<String>,
    pub(crate) timeout: Duration,
}

impl Notifier {
    /// Builds the client: rustls with the bundled public roots, plus the roots in
    /// `CAREQ_NOTIFY_CA_FILE`. A file that cannot be read or holds no certificate is an error
    /// naming it, so `careq serve` stops at start rather than failing every delivery later.
    pub fn from_config(config: &crate::config::Config) -> anyhow::Result<Notifier> {
        let timeout = Duration::from_millis(config.notify_timeout_ms);
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            // A redirect would resend a patient's message to an address nobody configured: a
            // 3xx is the notifier's answer (502), not an instruction.
            .redirect(reqwest::redirect::Policy::none())
            .use_rustls_tls();
        if let Some(path) = &config.notify_ca_file {
            let pem = std::fs::read(path)
                .with_context(|| format!("reading CAREQ_NOTIFY_CA_FILE {}", path.display()))?;
            let roots = reqwest::Certificate::from_pem_bundle(&pem).with_context(|| {
                format!(
                    "CAREQ_NOTIFY_CA_FILE {} is not PEM certificates",
                    path.display()
                )
            })?;
            if roots.is_empty() {
                anyhow::bail!(
                    "CAREQ_NOTIFY_CA_FILE {} holds no certificate",
                    path.display()
                );
            }
            for root in roots {
                builder = builder.add_root_certificate(root);
            }
        }
        Ok(Notifier {
            client: builder
                .build()
                .context("building the notifier's HTTP client")?,
            url: config.notify_url.clone(),
            secret: config.notify_secret.clone(),
            timeout,
        })
    }
}

/// `X-Careq-Signature: t=UNIX_SECONDS,v1=HEX`, where HEX is the HMAC-SHA256, keyed with the
/// secret, of the decimal timestamp, a `.`, and the exact body bytes. A receiver recomputes it
/// and compares in constant time, and refuses old timestamps to stop replays.
pub fn signature(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}
