//! Verification of Partner Center webhook callbacks (domain.md §2.4): the
//! `Authorization: Signature <base64>` (or `x-ms-signature`) header is an RSA
//! PKCS#1 v1.5 signature over the raw body, made with the key of the certificate
//! at `x-ms-certificate-url`, whose algorithm `x-ms-signature-algorithm` names
//! (`rsa-sha256`). The certificate is fetched only from an allow-listed host,
//! cached, and must be valid now and issued by `O=Microsoft Corporation`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_lc_rs::signature::{self, UnparsedPublicKey};
use base64::Engine;

use crate::runtime::BoxFuture;

/// Why a callback was refused (answered 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A required header is absent.
    #[error("missing header `{0}`")]
    MissingHeader(&'static str),
    /// The signature header is not `Signature <base64>`.
    #[error("the signature header is not `Signature <base64>`")]
    MalformedSignature,
    /// An algorithm other than RSA with SHA-256/384/512.
    #[error("unsupported signature algorithm `{0}`")]
    Algorithm(String),
    /// The certificate URL is not on an allowed host (or not a URL).
    #[error("certificate URL `{0}` is not on an allowed host")]
    CertificateHost(String),
    /// The certificate could not be fetched.
    #[error("cannot fetch the certificate: {0}")]
    CertificateFetch(String),
    /// The certificate does not parse or is not valid now.
    #[error("invalid certificate: {0}")]
    Certificate(String),
    /// The issuer is not Microsoft.
    #[error("certificate issuer `{0}` is not O=Microsoft Corporation")]
    Issuer(String),
    /// The signature does not match the body.
    #[error("the signature does not match the body")]
    BadSignature,
}

/// Fetches a certificate's bytes (PEM or DER) from a URL.
pub trait CertificateFetcher: Send + Sync {
    /// GETs `url`.
    fn fetch<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<Vec<u8>, String>>;
}

/// The public key of a verified certificate.
#[derive(Debug)]
struct TrustedKey {
    spki: Vec<u8>,
}

/// Verifies callbacks, caching certificates by URL.
pub struct Verifier {
    allowed_hosts: Vec<String>,
    issuer: String,
    fetcher: Box<dyn CertificateFetcher>,
    cache: Mutex<HashMap<String, Arc<TrustedKey>>>,
}

/// The signature headers of one callback.
#[derive(Debug, Clone, Default)]
pub struct SignatureHeaders {
    /// `Authorization` (or `x-ms-signature`) value.
    pub signature: Option<String>,
    /// `x-ms-certificate-url`.
    pub certificate_url: Option<String>,
    /// `x-ms-signature-algorithm`.
    pub algorithm: Option<String>,
}

impl SignatureHeaders {
    /// Reads the headers (the signature from `x-ms-signature` when present, else
    /// `Authorization`).
    pub fn from_headers(h: &http::HeaderMap) -> SignatureHeaders {
        let get = |name: &str| {
            h.get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        SignatureHeaders {
            signature: get("x-ms-signature").or_else(|| get("authorization")),
            certificate_url: get("x-ms-certificate-url"),
            algorithm: get("x-ms-signature-algorithm"),
        }
    }
}

/// The required issuer organisation of real Partner Center certificates.
pub const MICROSOFT_ISSUER: &str = "O=Microsoft Corporation";

impl Verifier {
    /// A verifier that fetches certificates only from `allowed_hosts` (host, or
    /// host:port) and requires `issuer` (e.g. [`MICROSOFT_ISSUER`]) in the issuer.
    pub fn new(
        allowed_hosts: Vec<String>,
        issuer: &str,
        fetcher: Box<dyn CertificateFetcher>,
    ) -> Verifier {
        Verifier {
            allowed_hosts,
            issuer: issuer.to_string(),
            fetcher,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn host_allowed(&self, url: &url::Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        let with_port = url.port().map(|p| format!("{host}:{p}"));
        self.allowed_hosts.iter().any(|a| {
            a.eq_ignore_ascii_case(host)
                || with_port
                    .as_deref()
                    .is_some_and(|hp| a.eq_ignore_ascii_case(hp))
        })
    }

    async fn key(&self, url: &str) -> Result<Arc<TrustedKey>, VerifyError> {
        if let Some(k) = self.cache.lock().ok().and_then(|c| c.get(url).cloned()) {
            return Ok(k);
        }
        let parsed =
            url::Url::parse(url).map_err(|_| VerifyError::CertificateHost(url.to_string()))?;
        if !matches!(parsed.scheme(), "https" | "http") || !self.host_allowed(&parsed) {
            return Err(VerifyError::CertificateHost(url.to_string()));
        }
        let bytes = self
            .fetcher
            .fetch(url)
            .await
            .map_err(VerifyError::CertificateFetch)?;
        let key = Arc::new(self.trust(&bytes)?);
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(url.to_string(), key.clone());
        }
        Ok(key)
    }

    fn trust(&self, bytes: &[u8]) -> Result<TrustedKey, VerifyError> {
        let der = if bytes.starts_with(b"-----BEGIN") {
            let (_, pem) = x509_parser::pem::parse_x509_pem(bytes)
                .map_err(|e| VerifyError::Certificate(e.to_string()))?;
            pem.contents
        } else {
            bytes.to_vec()
        };
        let (_, cert) = x509_parser::parse_x509_certificate(&der)
            .map_err(|e| VerifyError::Certificate(e.to_string()))?;
        if !cert.validity().is_valid() {
            return Err(VerifyError::Certificate("not valid at this time".into()));
        }
        let issuer = cert.issuer().to_string();
        if !issuer.contains(&self.issuer) {
            return Err(VerifyError::Issuer(issuer));
        }
        Ok(TrustedKey {
            spki: cert.public_key().subject_public_key.data.to_vec(),
        })
    }

    /// Verifies one callback's signature over its raw `body`.
    pub async fn verify(&self, headers: &SignatureHeaders, body: &[u8]) -> Result<(), VerifyError> {
        let sig = headers
            .signature
            .as_deref()
            .ok_or(VerifyError::MissingHeader("Authorization"))?;
        let url = headers
            .certificate_url
            .as_deref()
            .ok_or(VerifyError::MissingHeader("x-ms-certificate-url"))?;
        let alg = headers
            .algorithm
            .as_deref()
            .ok_or(VerifyError::MissingHeader("x-ms-signature-algorithm"))?;
        let algorithm: &'static dyn signature::VerificationAlgorithm =
            match alg.trim().to_ascii_lowercase().as_str() {
                "rsa-sha256" => &signature::RSA_PKCS1_2048_8192_SHA256,
                "rsa-sha384" => &signature::RSA_PKCS1_2048_8192_SHA384,
                "rsa-sha512" => &signature::RSA_PKCS1_2048_8192_SHA512,
                other => return Err(VerifyError::Algorithm(other.to_string())),
            };
        let encoded = sig
            .trim()
            .strip_prefix("Signature ")
            .ok_or(VerifyError::MalformedSignature)?;
        let signature = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| VerifyError::MalformedSignature)?;
        let key = self.key(url).await?;
        UnparsedPublicKey::new(algorithm, &key.spki)
            .verify(body, &signature)
            .map_err(|_| VerifyError::BadSignature)
    }
}

/// Fetches certificates over HTTP(S) with a short timeout (the verifier has
/// already checked the URL's host).
pub struct HttpFetcher {
    client: reqwest::Client,
}

impl HttpFetcher {
    /// A fetcher with a 10 s timeout that follows no redirects (a redirect could
    /// leave the allowed hosts).
    pub fn new() -> Result<HttpFetcher, String> {
        reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map(|client| HttpFetcher { client })
            .map_err(|e| e.to_string())
    }
}

impl CertificateFetcher for HttpFetcher {
    fn fetch<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<Vec<u8>, String>> {
        Box::pin(async move {
            let response = self
                .client
                .get(url)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if !response.status().is_success() {
                return Err(format!("{url} answered {}", response.status()));
            }
            let bytes = response.bytes().await.map_err(|e| e.to_string())?;
            if bytes.len() > 64 * 1024 {
                return Err("the certificate is larger than 64 KiB".into());
            }
            Ok(bytes.to_vec())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(Vec<u8>);

    impl CertificateFetcher for Fixed {
        fn fetch<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Vec<u8>, String>> {
            Box::pin(async move { Ok(self.0.clone()) })
        }
    }

    /// A self-signed "Microsoft" certificate and a signer for it.
    fn signer(org: &str) -> (Vec<u8>, aws_lc_rs::rsa::KeyPair) {
        let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
            .unwrap_or_else(|e| panic!("{e}"));
        let pkcs8 = aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&key)
            .unwrap_or_else(|e| panic!("{e}"));
        let kp = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
            &pkcs8.as_ref().into(),
            &rcgen::PKCS_RSA_SHA256,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into()])
            .unwrap_or_else(|e| panic!("{e}"));
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, org);
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            "pcnotifications-dispatch.microsoft.com",
        );
        let cert = params.self_signed(&kp).unwrap_or_else(|e| panic!("{e}"));
        (cert.pem().into_bytes(), key)
    }

    fn sign(key: &aws_lc_rs::rsa::KeyPair, body: &[u8]) -> String {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let mut sig = vec![0; key.public_modulus_len()];
        key.sign(&signature::RSA_PKCS1_SHA256, &rng, body, &mut sig)
            .unwrap_or_else(|e| panic!("{e}"));
        format!(
            "Signature {}",
            base64::engine::general_purpose::STANDARD.encode(sig)
        )
    }

    fn headers(sig: String, url: &str) -> SignatureHeaders {
        SignatureHeaders {
            signature: Some(sig),
            certificate_url: Some(url.into()),
            algorithm: Some("rsa-sha256".into()),
        }
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|e| panic!("{e}"))
            .block_on(f)
    }

    #[test]
    fn a_signed_body_verifies_and_a_tampered_one_does_not() {
        let (pem, key) = signer("Microsoft Corporation");
        let v = Verifier::new(
            vec!["certs.example".into()],
            MICROSOFT_ISSUER,
            Box::new(Fixed(pem)),
        );
        let body = br#"{"EventName":"referral-created","ResourceUri":"https://x/engagements/v1/referrals/1"}"#;
        let h = headers(sign(&key, body), "https://certs.example/pc.cer");
        assert_eq!(block_on(v.verify(&h, body)), Ok(()));
        let tampered = br#"{"EventName":"referral-created","ResourceUri":"https://x/engagements/v1/referrals/2"}"#;
        assert_eq!(
            block_on(v.verify(&h, tampered)),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn certificates_come_only_from_allowed_hosts_and_from_microsoft() {
        let (pem, key) = signer("Microsoft Corporation");
        let v = Verifier::new(
            vec!["certs.example".into()],
            MICROSOFT_ISSUER,
            Box::new(Fixed(pem)),
        );
        let body = b"{}";
        let h = headers(sign(&key, body), "https://evil.example/pc.cer");
        assert!(matches!(
            block_on(v.verify(&h, body)),
            Err(VerifyError::CertificateHost(_))
        ));
        let (pem, key) = signer("Contoso Ltd");
        let v = Verifier::new(
            vec!["certs.example".into()],
            MICROSOFT_ISSUER,
            Box::new(Fixed(pem)),
        );
        let h = headers(sign(&key, body), "https://certs.example/pc.cer");
        assert!(matches!(
            block_on(v.verify(&h, body)),
            Err(VerifyError::Issuer(_))
        ));
    }

    #[test]
    fn malformed_headers_are_refused() {
        let (pem, _) = signer("Microsoft Corporation");
        let v = Verifier::new(
            vec!["certs.example".into()],
            MICROSOFT_ISSUER,
            Box::new(Fixed(pem)),
        );
        let mut h = headers("Bearer abc".into(), "https://certs.example/pc.cer");
        assert_eq!(
            block_on(v.verify(&h, b"{}")),
            Err(VerifyError::MalformedSignature)
        );
        h.algorithm = Some("hmac-sha1".into());
        assert!(matches!(
            block_on(v.verify(&h, b"{}")),
            Err(VerifyError::Algorithm(_))
        ));
        h.signature = None;
        assert_eq!(
            block_on(v.verify(&h, b"{}")),
            Err(VerifyError::MissingHeader("Authorization"))
        );
    }
}
