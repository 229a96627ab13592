//! The function's trust store (src/trust.rs): the compiled-in roots are
//! Amazon Trust Services' five, as amazontrust.com publishes them; which
//! roots are chosen, and when; what AWS_CA_BUNDLE may hold.

use std::collections::HashMap;

use sagemaker_pipeline_stopper::trust::{check_bundle, Roots, Trust, AMAZON_ROOTS};
use stopper_core::ErrorKind;

/// SHA-256 of each root's SubjectPublicKeyInfo, from
/// https://www.amazontrust.com/repository/ ("Root CAs"): Amazon Root CA 1, 2,
/// 3, 4, Starfield Services Root Certificate Authority - G2.
const PUBLISHED_SPKI_SHA256: [&str; 5] = [
    "fbe3018031f9586bcbf41727e417b7d1c45c2f47f93be372a17b96b50757d5a2",
    "7f4296fc5b6a4e3b35d3c369623e364ab1af381d8fa7121533c9d6c633ea2461",
    "36abc32656acfc645c61b71613c4bf21c787f5cabbee48348d58597803d7abc9",
    "f7ecded5c66047d28ed6466b543c40e0743abe81d109254dcf845d4c2c7853c5",
    "2b071c59a0a0ae76b0eadb2bad23bad4580b69c3601b630c2eaf0613afa83f92",
];

/// The DER of a trust anchor's SubjectPublicKeyInfo: webpki keeps the
/// SEQUENCE's contents, so its tag and length are put back.
fn spki_der(contents: &[u8]) -> Vec<u8> {
    let len = contents.len();
    let mut der = vec![0x30];
    match len {
        0..=127 => der.push(len as u8),
        128..=255 => der.extend([0x81, len as u8]),
        _ => der.extend([0x82, (len >> 8) as u8, len as u8]),
    }
    der.extend_from_slice(contents);
    der
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn anchors(pem: &[u8]) -> rustls::RootCertStore {
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    roots
}

#[test]
fn the_compiled_in_roots_are_amazon_trust_services_five_as_published() {
    let roots = anchors(AMAZON_ROOTS);
    let hashes: Vec<String> = roots
        .roots
        .iter()
        .map(|anchor| {
            let der = spki_der(&anchor.subject_public_key_info);
            hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &der).as_ref())
        })
        .collect();
    assert_eq!(hashes, PUBLISHED_SPKI_SHA256);
    assert_eq!(check_bundle(AMAZON_ROOTS), Ok(5));
}

fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| vars.get(name).cloned()
}

fn no_file(path: &str) -> std::io::Result<Vec<u8>> {
    panic!("{path} must not be read")
}

#[test]
fn the_aws_partition_trusts_amazon_roots_and_builds_its_own_client() {
    let trust = Trust::for_function(env(&[("AWS_REGION", "us-east-1")]), no_file).unwrap();
    assert_eq!((trust.roots, &trust.added), (Roots::Amazon, &None));
    assert!(trust.http_client().is_some());
    assert!(trust.describe().contains("Amazon Trust Services"));
}

#[test]
fn ssl_cert_file_or_dir_or_another_partition_keep_the_system_store_and_the_sdk_client() {
    for vars in [
        &[
            ("SSL_CERT_FILE", "/etc/ssl/cert.pem"),
            ("AWS_REGION", "us-east-1"),
        ][..],
        &[
            ("SSL_CERT_DIR", "/etc/ssl/certs"),
            ("AWS_REGION", "eu-west-1"),
        ][..],
        &[("AWS_REGION", "cn-north-1")][..],
        &[("AWS_REGION", "us-gov-west-1")][..],
        &[("AWS_REGION", "us-iso-east-1")][..],
        &[("AWS_REGION", "eusc-de-east-1")][..],
        // AWS_REGION wins, as in the SDK's chain.
        &[
            ("AWS_REGION", "cn-north-1"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
        ][..],
        &[("AWS_DEFAULT_REGION", "cn-north-1")][..],
        // No region: the init fails elsewhere (setup::home_scope); nothing is assumed here.
        &[][..],
        &[("AWS_REGION", "")][..],
    ] {
        let trust = Trust::for_function(env(vars), no_file).unwrap();
        assert_eq!(trust.roots, Roots::System, "{vars:?}");
        assert!(
            trust.http_client().is_none(),
            "the SDK's own client serves this"
        );
    }
    for vars in [
        &[("AWS_DEFAULT_REGION", "eu-west-1")][..],
        &[
            ("AWS_REGION", "us-west-2"),
            ("AWS_DEFAULT_REGION", "cn-north-1"),
        ][..],
        // Empty values are unset, as in the SDK.
        &[
            ("AWS_REGION", "us-east-1"),
            ("SSL_CERT_FILE", ""),
            ("SSL_CERT_DIR", ""),
            ("AWS_CA_BUNDLE", ""),
        ][..],
    ] {
        let trust = Trust::for_function(env(vars), no_file).unwrap();
        assert_eq!(
            (trust.roots, &trust.added),
            (Roots::Amazon, &None),
            "{vars:?}"
        );
    }
}

#[test]
fn aws_ca_bundle_is_added_to_either_store() {
    let read = |path: &str| {
        assert_eq!(path, "/opt/ca.pem");
        Ok(AMAZON_ROOTS[..].to_vec())
    };
    let vars = [
        ("AWS_CA_BUNDLE", "/opt/ca.pem"),
        ("AWS_REGION", "us-east-1"),
    ];
    let amazon = Trust::for_function(env(&vars), read).unwrap();
    assert_eq!(amazon.roots, Roots::Amazon);
    assert_eq!(
        amazon.added.as_ref().map(|(p, _)| p.as_str()),
        Some("/opt/ca.pem")
    );
    assert!(amazon.describe().contains("/opt/ca.pem"));
    let vars = [
        ("AWS_CA_BUNDLE", "/opt/ca.pem"),
        ("AWS_REGION", "cn-north-1"),
    ];
    let system = Trust::for_function(env(&vars), read).unwrap();
    assert_eq!(system.roots, Roots::System);
    assert!(system.added.is_some());
    assert!(
        system.http_client().is_some(),
        "the bundle needs our client"
    );
}

#[test]
fn an_unusable_aws_ca_bundle_fails_the_init_naming_it() {
    let garbage_cert = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    let bad_base64 = b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
    let huge = vec![b' '; sagemaker_pipeline_stopper::trust::MAX_CA_BUNDLE_BYTES + 1];
    let cases: [(&[u8], &str); 6] = [
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
    ];
    for (contents, why) in cases {
        let err = Trust::for_function(env(&[("AWS_CA_BUNDLE", "/opt/ca.pem")]), |_| {
            Ok(contents.to_vec())
        })
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Configuration);
        assert!(
            err.message.contains("AWS_CA_BUNDLE \"/opt/ca.pem\""),
            "{}",
            err.message
        );
        assert!(err.message.contains(why), "{why}: {}", err.message);
    }
    // A valid certificate followed by a broken one: the broken one is named.
    let mut mixed = AMAZON_ROOTS.to_vec();
    mixed.extend_from_slice(garbage_cert);
    assert_eq!(
        check_bundle(&mixed),
        Err("certificate 6 is not a valid X.509 certificate".to_owned())
    );
    let err = Trust::for_function(env(&[("AWS_CA_BUNDLE", "/missing\n\u{1b}[2J")]), |_| {
        Err(std::io::Error::from(std::io::ErrorKind::NotFound))
    })
    .unwrap_err();
    assert!(err.message.contains("not found"), "{}", err.message);
    assert!(
        !err.message.contains('\n') && !err.message.contains('\u{1b}'),
        "{}",
        err.message
    );
}
