//! HTTPS for `veil serve`: loads the PEM certificate chain and private key into a rustls server configuration
//! (ring provider, TLS 1.2 and 1.3), with start-up errors that name the file and the fix. Nothing read from the key
//! file is ever repeated in a message.

use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

use crate::config::TlsFiles;

/// The rustls configuration for `files`: the chain's first certificate must be the one the key belongs to.
pub fn server_config(files: &TlsFiles) -> anyhow::Result<ServerConfig> {
    let cert_path = files.cert.display();
    let key_path = files.key.display();
    let cert_pem = std::fs::read(&files.cert)
        .with_context(|| format!("cannot read the TLS certificate {cert_path}"))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, pem::Error>>()
        .map_err(|error| anyhow!("the TLS certificate {cert_path} is not valid PEM ({error})"))?;
    if chain.is_empty() {
        bail!(
            "the TLS certificate {cert_path} holds no certificate: expected a PEM file with \
             -----BEGIN CERTIFICATE----- blocks, the server's certificate first"
        );
    }
    let key_pem =
        std::fs::read(&files.key).with_context(|| format!("cannot read the TLS key {key_path}"))?;
    // pem errors may quote a line of the file: name the file and the expected form only.
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|error| match error {
        pem::Error::NoItemsFound => anyhow!(
            "the TLS key {key_path} holds no private key: expected a PEM block \
             -----BEGIN PRIVATE KEY----- (or RSA PRIVATE KEY, EC PRIVATE KEY)"
        ),
        _ => anyhow!("the TLS key {key_path} is not a valid PEM private key"),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("cannot set up TLS")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|error| match error {
            rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => anyhow!(
                "the TLS key {key_path} does not belong to the certificate {cert_path} \
                 (the first certificate in the file must be the server's own)"
            ),
            other => anyhow!(
                "cannot use the TLS certificate {cert_path} with the key {key_path}: {other}"
            ),
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn write(dir: &Path, name: &str, contents: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    fn check(cert: &str, key: &str, expected: &str) {
        let dir = tempfile::tempdir().unwrap();
        let files = TlsFiles {
            cert: write(dir.path(), "cert.pem", cert),
            key: write(dir.path(), "key.pem", key),
        };
        match server_config(&files) {
            Ok(_) => assert!(expected.is_empty(), "accepted, expected {expected:?}"),
            Err(error) => {
                let message = format!("{error:#}");
                assert!(!expected.is_empty(), "refused: {message}");
                assert!(message.contains(expected), "{message}");
                assert!(
                    !message.contains("MII"),
                    "key or cert material in: {message}"
                );
            }
        }
    }

    #[test]
    fn certificates_and_keys_are_checked_with_clear_errors() {
        let ours = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let theirs = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let cert = ours.cert.pem();
        let key = ours.signing_key.serialize_pem();
        let other_key = theirs.signing_key.serialize_pem();
        check(&cert, &key, "");
        check(&cert, &other_key, "does not belong to the certificate");
        check("not a certificate", &key, "holds no certificate");
        check(
            "-----BEGIN CERTIFICATE-----\nAAAA\n",
            &key,
            "is not valid PEM",
        );
        check(&cert, "", "holds no private key");
        check(&cert, &cert, "holds no private key");
        check(
            &cert,
            "-----BEGIN PRIVATE KEY-----\nMIIsecret\n",
            "is not a valid PEM private key",
        );
        check(
            &cert,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "cannot use the TLS certificate",
        );
    }

    #[test]
    fn unreadable_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let files = TlsFiles {
            cert: dir.path().join("missing-cert.pem"),
            key: dir.path().join("missing-key.pem"),
        };
        let message = format!("{:#}", server_config(&files).unwrap_err());
        assert!(
            message.contains("cannot read the TLS certificate")
                && message.contains("missing-cert.pem"),
            "{message}"
        );
    }
}
