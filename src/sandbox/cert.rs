//! The webhook signing identity: an RSA 2048 key (aws-lc-rs) and a self-signed X.509
//! certificate (rcgen) whose subject and issuer contain `O=Microsoft Corporation`, as
//! receivers check. Served by the admin listener as DER (`/_sandbox/certificate.cer`,
//! the URL in `x-ms-certificate-url`) and PEM (`/_sandbox/certificate.pem`).

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::RSA_PKCS1_SHA256;
use base64::Engine;
use rcgen::{CertificateParams, DistinguishedName, DnType, date_time_ymd};

/// The subject (and issuer) common name of the sandbox certificate.
pub const CERTIFICATE_COMMON_NAME: &str = "pcnotifications-dispatch.sandbox.cosync";

/// The signing key of this process (PKCS#8 DER), generated once.
static PROCESS_KEY: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();

/// Signs webhook bodies; holds the certificate that verifies them.
pub(crate) struct Signer {
    key: KeyPair,
    pkcs8: Vec<u8>,
    der: Vec<u8>,
    pem: String,
}

impl Signer {
    /// A certificate for the process's signing key, generated on first use. Sandboxes
    /// started in one process share the key (as Partner Center's deliveries share one
    /// dispatch certificate); each gets its own certificate.
    pub(crate) fn generate() -> Result<Signer, String> {
        if let Some(key) = PROCESS_KEY.get() {
            return Signer::from_pkcs8(key);
        }
        let key =
            KeyPair::generate(KeySize::Rsa2048).map_err(|e| format!("RSA key generation: {e}"))?;
        let pkcs8 = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der<'static>>::as_der(&key)
            .map_err(|e| format!("RSA key encoding: {e}"))?
            .as_ref()
            .to_vec();
        Signer::from_pkcs8(PROCESS_KEY.get_or_init(|| pkcs8))
    }

    /// A certificate for a stored key (PKCS#8 DER).
    pub(crate) fn from_pkcs8(pkcs8: &[u8]) -> Result<Signer, String> {
        let key = KeyPair::from_pkcs8(pkcs8).map_err(|e| format!("RSA key: {e}"))?;
        let certificate_key =
            rcgen::KeyPair::try_from(pkcs8).map_err(|e| format!("certificate key: {e}"))?;
        let mut params = CertificateParams::new(vec![CERTIFICATE_COMMON_NAME.to_owned()])
            .map_err(|e| format!("certificate parameters: {e}"))?;
        let mut name = DistinguishedName::new();
        name.push(DnType::CountryName, "US");
        name.push(DnType::StateOrProvinceName, "Washington");
        name.push(DnType::LocalityName, "Redmond");
        name.push(DnType::OrganizationName, "Microsoft Corporation");
        name.push(DnType::CommonName, CERTIFICATE_COMMON_NAME);
        params.distinguished_name = name;
        params.not_before = date_time_ymd(2024, 1, 1);
        params.not_after = date_time_ymd(2099, 12, 31);
        let certificate = params
            .self_signed(&certificate_key)
            .map_err(|e| format!("certificate signing: {e}"))?;
        Ok(Signer {
            key,
            pkcs8: pkcs8.to_vec(),
            der: certificate.der().to_vec(),
            pem: certificate.pem(),
        })
    }

    /// The private key as PKCS#8 DER (persisted with `--state`).
    pub(crate) fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The certificate, DER.
    pub(crate) fn der(&self) -> &[u8] {
        &self.der
    }

    /// The certificate, PEM.
    pub(crate) fn pem(&self) -> &str {
        &self.pem
    }

    /// RSA PKCS#1 v1.5 SHA-256 signature of `body`, base64.
    pub(crate) fn sign(&self, body: &[u8]) -> Result<String, String> {
        let mut signature = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                body,
                &mut signature,
            )
            .map_err(|e| format!("signing: {e}"))?;
        Ok(base64::engine::general_purpose::STANDARD.encode(signature))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_with_the_certificate_key() {
        let signer = Signer::generate().unwrap_or_else(|e| panic!("{e}"));
        let signature = signer.sign(b"{}").unwrap_or_else(|e| panic!("{e}"));
        let signature = base64::engine::general_purpose::STANDARD
            .decode(signature)
            .unwrap_or_default();
        let (_, certificate) =
            x509_parser::parse_x509_certificate(signer.der()).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            certificate
                .issuer()
                .to_string()
                .contains("O=Microsoft Corporation")
        );
        let key = aws_lc_rs::signature::UnparsedPublicKey::new(
            &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
            certificate.public_key().subject_public_key.data.as_ref(),
        );
        assert!(key.verify(b"{}", &signature).is_ok());
        assert!(key.verify(b"{ }", &signature).is_err());
        let again = Signer::from_pkcs8(signer.pkcs8()).unwrap_or_else(|e| panic!("{e}"));
        assert!(again.pem().starts_with("-----BEGIN CERTIFICATE-----"));
    }
}
