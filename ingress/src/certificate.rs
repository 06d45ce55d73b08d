//! The edge's TLS certificate, reloadable: every handshake takes the certificate and key loaded
//! last, so a renewed certificate (a certbot deploy hook sends SIGHUP) is served to new
//! connections at once while open connections go on with theirs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use pingora::tls::sign::CertifiedKey;
use pingora::tls::{ClientHello, CryptoProvider, ResolvesServerCert};

use crate::Error;

/// The certificate chain and key files, and what was last loaded from them.
#[derive(Debug)]
pub struct Certificate {
    cert: PathBuf,
    key: PathBuf,
    current: ArcSwap<CertifiedKey>,
}

impl Certificate {
    /// Load `cert` (PEM chain, leaf first) and `key` (PEM, PKCS#8, PKCS#1 or SEC1).
    pub fn load(cert: &Path, key: &Path) -> Result<Self, Error> {
        let current = ArcSwap::from_pointee(read(cert, key)?);
        Ok(Certificate { cert: cert.into(), key: key.into(), current })
    }

    /// Read the files again. On error the certificate in use stays.
    pub fn reload(&self) -> Result<(), Error> {
        self.current.store(Arc::new(read(&self.cert, &self.key)?));
        Ok(())
    }

    /// The files it is read from.
    pub fn paths(&self) -> (&Path, &Path) {
        (&self.cert, &self.key)
    }
}

impl ResolvesServerCert for Certificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

fn read(cert: &Path, key: &Path) -> Result<CertifiedKey, Error> {
    let fail = |what: String| Error::Tls(format!("{} / {}: {what}", cert.display(), key.display()));
    pingora::tls::install_default_crypto_provider();
    let (chain, private) = pingora::tls::load_certs_and_key_files(&cert.to_string_lossy(), &key.to_string_lossy())
        .map_err(|e| fail(e.to_string()))?
        .ok_or_else(|| fail("no certificate in the one, or no private key in the other".into()))?;
    let provider = CryptoProvider::get_default().ok_or_else(|| fail("no TLS crypto provider".into()))?;
    // Also checks that the key is the certificate's.
    CertifiedKey::from_der(chain, private, provider).map_err(|e| fail(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed(dir: &Path, name: &str) {
        let out = std::process::Command::new("openssl")
            .current_dir(dir)
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
            .args(["-keyout", &format!("{name}.key"), "-out", &format!("{name}.pem"), "-days", "1"])
            .args(["-subj", &format!("/CN={name}")])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    #[test]
    fn reload_swaps_and_a_bad_file_keeps_what_is_in_use() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        self_signed(d, "a");
        self_signed(d, "b");
        let (cert, key) = (d.join("cert.pem"), d.join("key.pem"));
        std::fs::copy(d.join("a.pem"), &cert).unwrap();
        std::fs::copy(d.join("a.key"), &key).unwrap();
        let c = Certificate::load(&cert, &key).unwrap();
        let first = c.current.load_full().cert[0].clone();

        std::fs::copy(d.join("b.pem"), &cert).unwrap();
        std::fs::copy(d.join("b.key"), &key).unwrap();
        c.reload().unwrap();
        let second = c.current.load_full().cert[0].clone();
        assert_ne!(first, second);

        // A key that is not the certificate's, then garbage: refused, the second stays.
        std::fs::copy(d.join("a.key"), &key).unwrap();
        assert!(c.reload().is_err());
        std::fs::write(&cert, "not a certificate").unwrap();
        let e = c.reload().unwrap_err().to_string();
        assert!(e.contains("cert.pem"), "{e}");
        assert_eq!(c.current.load_full().cert[0], second);
        assert!(Certificate::load(&d.join("missing.pem"), &key).is_err());
    }
}
