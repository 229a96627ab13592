//! The certificate authorities TLS trusts: what the SDK trusts by default
//! (the system's store, read by rustls-native-certs: `SSL_CERT_FILE`,
//! `SSL_CERT_DIR`, else the platform's usual files), plus the PEM file
//! `AWS_CA_BUNDLE` names, for a custom endpoint or a TLS-inspecting proxy.
//! The AWS CLI and the other SDKs read that variable; the Rust SDK does not
//! (awslabs/aws-sdk-rust#1362), so the function and the CLI add it here.

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use aws_smithy_http_client::{Builder, ConnectorBuilder};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::CertificateDer;
use stopper_core::{ErrorKind, StopError};

/// A CA bundle larger than this is refused: a whole system bundle is about
/// 220 KB, and the file is read on every cold start.
pub const MAX_CA_BUNDLE_BYTES: usize = 4 * 1024 * 1024;

/// `loader` with `AWS_CA_BUNDLE`'s CAs added to the system store, when the
/// variable is set (`env`; `read` gives a file's contents). Given to the
/// loader, not to the clients after it, so the credential providers it builds
/// (web identity's STS client, for one) trust the same CAs. A bundle that
/// cannot be read or holds no valid certificate is a configuration error
/// naming the variable: otherwise every call would fail its handshake.
pub fn configure(
    loader: aws_config::ConfigLoader,
    env: impl Fn(&str) -> Option<String>,
    read: impl Fn(&str) -> std::io::Result<Vec<u8>>,
) -> Result<aws_config::ConfigLoader, StopError> {
    let Some(path) = env("AWS_CA_BUNDLE").filter(|v| !v.is_empty()) else {
        return Ok(loader);
    };
    let pem = read(&path).map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::InvalidInput => e.to_string(),
            kind => kind.to_string(),
        };
        bundle_error(&path, &why)
    })?;
    let certificates = check_bundle(&pem).map_err(|why| bundle_error(&path, &why))?;
    tracing::debug!(
        path = path.as_str(),
        certificates,
        "TLS trusts the system store and AWS_CA_BUNDLE"
    );
    let tls = TlsContext::builder()
        .with_trust_store(TrustStore::default().with_pem_certificate(pem))
        .build()
        .expect("the bundle's certificates were checked");
    // The SDK's default HTTPS client (aws-smithy-runtime's
    // `default_https_client`: rustls with aws-lc, the proxy from
    // `HTTPS_PROXY`/`NO_PROXY`, the SDK's timeouts and sleep), with the
    // bundle added to its trust store.
    let client = Builder::new().build_with_connector_fn(move |settings, components| {
        let mut connector = ConnectorBuilder::default()
            .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
            .tls_context(tls.clone());
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    });
    Ok(loader.http_client(client))
}

/// Reads an `AWS_CA_BUNDLE` file: a regular file only (opening a FIFO would
/// hang the init; `/dev/zero` would fill the memory), and at most one byte
/// past the limit, which [`check_bundle`] then refuses.
pub fn read_bundle(path: &str) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    if !std::fs::metadata(path)?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mut pem = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_CA_BUNDLE_BYTES as u64 + 1)
        .read_to_end(&mut pem)?;
    Ok(pem)
}

/// Every certificate in `pem` must parse as a trust anchor, and there must
/// be one: the HTTP client would otherwise panic building its connector.
pub fn check_bundle(pem: &[u8]) -> Result<usize, String> {
    if pem.len() > MAX_CA_BUNDLE_BYTES {
        return Err(format!("it is larger than {MAX_CA_BUNDLE_BYTES} bytes"));
    }
    let mut roots = rustls::RootCertStore::empty();
    for (n, cert) in CertificateDer::pem_slice_iter(pem).enumerate() {
        let cert = cert.map_err(|_| format!("certificate {} is not valid PEM", n + 1))?;
        roots
            .add(cert)
            .map_err(|_| format!("certificate {} is not a valid X.509 certificate", n + 1))?;
    }
    if roots.is_empty() {
        return Err("it holds no PEM certificate".to_owned());
    }
    Ok(roots.len())
}

fn bundle_error(path: &str, why: &str) -> StopError {
    StopError::new(
        ErrorKind::Configuration,
        format!(
            "AWS_CA_BUNDLE {} cannot be used: {why}; give a file of PEM certificates",
            stopper_core::arn::quote(path)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Amazon Root CA 1, as www.amazontrust.com/repository publishes it: any
    /// valid certificate would do.
    const ONE_ROOT: &[u8] = include_bytes!("trust/test-root.pem");

    fn with_bundle(pem: &[u8]) -> Result<aws_config::ConfigLoader, StopError> {
        let env = |name: &str| (name == "AWS_CA_BUNDLE").then(|| "/opt/ca.pem".to_owned());
        configure(aws_config::from_env(), env, |path| {
            assert_eq!(path, "/opt/ca.pem");
            Ok(pem.to_vec())
        })
    }

    #[test]
    fn without_aws_ca_bundle_nothing_is_read() {
        for value in [None, Some(String::new())] {
            let env = |_: &str| value.clone();
            let read = |path: &str| -> std::io::Result<Vec<u8>> { panic!("{path} read") };
            assert!(configure(aws_config::from_env(), env, read).is_ok());
        }
    }

    #[test]
    fn a_bundle_of_valid_certificates_is_accepted() {
        assert!(with_bundle(ONE_ROOT).is_ok());
        assert_eq!(check_bundle(&[ONE_ROOT, ONE_ROOT].concat()), Ok(2));
    }

    #[test]
    fn an_unusable_aws_ca_bundle_is_a_configuration_error_naming_it() {
        let garbage_cert = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let bad_base64 = b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        let huge = vec![b' '; MAX_CA_BUNDLE_BYTES + 1];
        let mixed = [ONE_ROOT, garbage_cert].concat();
        let cases: [(&[u8], &str); 7] = [
            (b"", "holds no PEM certificate"),
            (b"not a certificate\n", "holds no PEM certificate"),
            (
                b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                "holds no PEM certificate",
            ),
            (
                garbage_cert,
                "certificate 1 is not a valid X.509 certificate",
            ),
            (bad_base64, "certificate 1 is not valid PEM"),
            (&huge, "larger than"),
            (&mixed, "certificate 2 is not a valid X.509 certificate"),
        ];
        for (contents, why) in cases {
            let err = with_bundle(contents).unwrap_err();
            assert_eq!(err.kind, ErrorKind::Configuration);
            assert!(
                err.message.contains("AWS_CA_BUNDLE \"/opt/ca.pem\""),
                "{}",
                err.message
            );
            assert!(err.message.contains(why), "{why}: {}", err.message);
        }
    }

    #[test]
    fn an_unreadable_bundle_is_named_escaped() {
        let env = |_: &str| Some("/missing\n\u{1b}[2J".to_owned());
        let read = |_: &str| Err(std::io::Error::from(std::io::ErrorKind::NotFound));
        let err = configure(aws_config::from_env(), env, read).unwrap_err();
        assert!(err.message.contains("not found"), "{}", err.message);
        assert!(
            !err.message.contains('\n') && !err.message.contains('\u{1b}'),
            "{}",
            err.message
        );
    }
}
