//! TLS of the plugin socket, as go-plugin's AutoMTLS expects it: the server
//! presents a certificate made fresh at every start (printed in the
//! handshake line, which only the parent Terraform reads), and requires the
//! client certificate Terraform put in `PLUGIN_CLIENT_CERT`, byte for byte.
//!
//! Terraform's certificate is ECDSA P-521 (go-plugin makes it with
//! `elliptic.P521()`). rustls' ring provider cannot verify P-521 signatures,
//! so the client's signature is verified with the aws-lc-rs provider's
//! algorithms, which can; an exact match of the certificate replaces chain
//! building (the certificate is self-signed and there is exactly one
//! acceptable client). Everything else of the handshake (key exchange,
//! ciphers, the server's signature, randomness) is ring's: aws-lc's random
//! generator seeds itself from CPU jitter on first use, about 40 ms of CPU
//! in every provider process (Terraform starts four per apply), while
//! signature verification needs no randomness.

use std::sync::Arc;

use anyhow::{anyhow, Context as _};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, Error, ServerConfig,
    SignatureScheme,
};

/// The server side of the plugin socket's TLS.
pub struct PluginTls {
    pub config: Arc<ServerConfig>,
    /// The server certificate (DER), for the handshake line.
    pub certificate: Vec<u8>,
}

impl PluginTls {
    /// TLS that serves only the holder of `client_cert_pem`'s key.
    pub fn new(client_cert_pem: &str) -> anyhow::Result<Self> {
        let client = first_certificate(client_cert_pem)?;
        let (certificate, key) = server_certificate()?;
        let verifier = Arc::new(PinnedClient {
            certificate: client,
            provider: Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
        });
        let handshake = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(handshake)
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![CertificateDer::from(certificate.clone())], key)
            .context("the server certificate")?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(PluginTls {
            config: Arc::new(config),
            certificate,
        })
    }
}

/// The first certificate of a PEM text, as DER.
fn first_certificate(pem: &str) -> anyhow::Result<Vec<u8>> {
    use base64::Engine as _;
    let begin = "-----BEGIN CERTIFICATE-----";
    let end = "-----END CERTIFICATE-----";
    let start = pem
        .find(begin)
        .ok_or_else(|| anyhow!("PLUGIN_CLIENT_CERT holds no PEM certificate"))?
        + begin.len();
    let stop = pem[start..]
        .find(end)
        .ok_or_else(|| anyhow!("PLUGIN_CLIENT_CERT: unterminated PEM certificate"))?;
    let body: String = pem[start..start + stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .context("PLUGIN_CLIENT_CERT: the certificate is not base64")
}

/// A self-signed certificate for `localhost`, as go-plugin makes its own: it
/// is its own CA (Terraform trusts exactly this certificate as a root) and
/// serves both ends' purposes.
fn server_certificate() -> anyhow::Result<(Vec<u8>, PrivateKeyDer<'static>)> {
    use rcgen::{
        BasicConstraints, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
    };
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()])?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "terraform-provider-nixbuild");
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::seconds(30);
    params.not_after = now + time::Duration::days(365 * 30);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::KeyAgreement,
        KeyUsagePurpose::KeyCertSign,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ClientAuth,
        ExtendedKeyUsagePurpose::ServerAuth,
    ];
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let certificate = params.self_signed(&key)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    Ok((certificate.der().to_vec(), key))
}

/// Accepts exactly one client certificate, and checks the handshake's
/// signature with it (P-521 included).
#[derive(Debug)]
struct PinnedClient {
    certificate: Vec<u8>,
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for PinnedClient {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        if end_entity.as_ref() == self.certificate.as_slice() {
            Ok(ClientCertVerified::assertion())
        } else {
            tracing::warn!(
                "refused a plugin connection: its client certificate is not the one Terraform gave"
            );
            Err(Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p521_is_among_the_client_signatures_offered() {
        let tls = PluginTls::new(&pem_of(&server_certificate().unwrap().0)).unwrap();
        assert!(tls.certificate.len() > 100);
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        assert!(provider
            .signature_verification_algorithms
            .supported_schemes()
            .contains(&SignatureScheme::ECDSA_NISTP521_SHA512));
    }

    #[test]
    fn a_pem_without_certificate_is_refused() {
        assert!(PluginTls::new("not a certificate").is_err());
    }

    fn pem_of(der: &[u8]) -> String {
        use base64::Engine as _;
        format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            base64::engine::general_purpose::STANDARD.encode(der)
        )
    }
}
