//! HTTPS with rustls: the certificate and key are read from PEM files at start and again on
//! SIGHUP (renewals without downtime: connections made after the signal get the new pair, open
//! ones keep theirs). ALPN offers `h2` and `http/1.1`.
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::Context;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;

/// The certificate in use, replaceable while serving.
#[derive(Debug)]
pub struct Certificates {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl Certificates {
    /// Reads the pair; an unreadable file or one without a certificate or key is an error
    /// naming it.
    pub fn load(cert: &Path, key: &Path) -> anyhow::Result<Arc<Certificates>> {
        let pair = read_pair(cert, key)?;
        Ok(Arc::new(Certificates {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: RwLock::new(Arc::new(pair)),
        }))
    }

    /// Reads the files again; on failure the pair in use stays and the error is returned.
    pub fn reload(&self) -> anyhow::Result<()> {
        let pair = read_pair(&self.cert, &self.key)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(pair);
        Ok(())
    }

    /// The TLS acceptor: this certificate store, ALPN `h2` then `http/1.1`.
    pub fn acceptor(self: &Arc<Self>) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }
}

fn read_pair(cert: &Path, key: &Path) -> anyhow::Result<CertifiedKey> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading CAREQ_TLS_CERT {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("CAREQ_TLS_CERT {} is not PEM certificates", cert.display()))?;
    if chain.is_empty() {
        anyhow::bail!("CAREQ_TLS_CERT {} holds no certificate", cert.display());
    }
    let key_der = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading a private key from CAREQ_TLS_KEY {}", key.display()))?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key_der)
        .with_context(|| format!("CAREQ_TLS_KEY {} is not a usable key", key.display()))?;
    let pair = CertifiedKey::new(chain, signing);
    pair.keys_match().with_context(|| {
        format!(
            "CAREQ_TLS_KEY {} does not belong to CAREQ_TLS_CERT {}",
            key.display(),
            cert.display()
        )
    })?;
    Ok(pair)
}
