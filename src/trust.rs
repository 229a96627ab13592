//! The certificate authorities the function trusts for HTTPS, chosen once at
//! init.
//!
//! In the `aws` partition the function trusts the five roots of Amazon Trust
//! Services (`trust/amazon-roots.pem`), which every AWS service endpoint
//! chains to, instead of the system's store: reading and parsing that store
//! (about 150 certificates, in one or more files) was the largest part of the
//! function's init beyond the bare runtime's (docs/performance.md). An
//! operator adds a CA, for a custom endpoint or a TLS-inspecting proxy, with
//! `AWS_CA_BUNDLE`; `SSL_CERT_FILE` or `SSL_CERT_DIR` brings back a system
//! store, as in every program built on rustls-native-certs. Other partitions
//! (China, GovCloud, ISO, the European Sovereign Cloud) keep the system store:
//! their endpoints' chains are not Amazon Trust Services' everywhere.
//!
//! The command-line tool always uses the system store (on a laptop, a
//! corporate proxy's CA is installed there), with `AWS_CA_BUNDLE` added.

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore};
use aws_smithy_http_client::{Builder, Connector, ConnectorBuilder};
use aws_smithy_runtime_api::client::http::HttpConnectorSettings;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::CertificateDer;
use stopper_core::{ErrorKind, StopError};

/// Amazon Trust Services' roots: Amazon Root CA 1 to 4 and Starfield
/// Services Root Certificate Authority - G2 (www.amazontrust.com/repository).
pub const AMAZON_ROOTS: &[u8] = include_bytes!("trust/amazon-roots.pem");

/// A CA bundle larger than this is refused: a whole system bundle is about
/// 220 KB, and the file is read on every cold start.
pub const MAX_CA_BUNDLE_BYTES: usize = 4 * 1024 * 1024;

/// Where the trusted roots come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Roots {
    /// `AMAZON_ROOTS`, compiled in.
    Amazon,
    /// The system's store, read by rustls-native-certs (`SSL_CERT_FILE`,
    /// `SSL_CERT_DIR`, else the platform's usual files and directories).
    System,
}

/// The function's trust: its roots, why those, and what `AWS_CA_BUNDLE` adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trust {
    pub roots: Roots,
    pub why: &'static str,
    /// `AWS_CA_BUNDLE`'s path and its PEM text, checked: every certificate
    /// in it parses as a trust anchor.
    pub added: Option<(String, Vec<u8>)>,
}

impl Trust {
    /// Chooses from the environment (`env`) and `read` (a file's contents,
    /// for `AWS_CA_BUNDLE`), before the AWS configuration is loaded (its
    /// loading needs the HTTP client): the region is `AWS_REGION`, which
    /// Lambda always sets, else `AWS_DEFAULT_REGION`; with neither, the
    /// system store. A bundle that cannot be read or holds no valid
    /// certificate fails the init, naming the variable: otherwise every stop
    /// would fail its handshake.
    pub fn for_function(
        env: impl Fn(&str) -> Option<String>,
        read: impl Fn(&str) -> std::io::Result<Vec<u8>>,
    ) -> Result<Self, StopError> {
        let set = |name: &str| env(name).filter(|v| !v.is_empty());
        let region = set("AWS_REGION").or_else(|| set("AWS_DEFAULT_REGION"));
        let partition = region.as_deref().map(stopper_core::arn::partition_of);
        let (roots, why) = if set("SSL_CERT_FILE").is_some() || set("SSL_CERT_DIR").is_some() {
            (Roots::System, "SSL_CERT_FILE or SSL_CERT_DIR is set")
        } else if partition != Some("aws") {
            (Roots::System, "the region is not in the aws partition")
        } else {
            (Roots::Amazon, "the aws partition's endpoints chain to them")
        };
        let added = added_bundle(set("AWS_CA_BUNDLE"), read)?;
        Ok(Trust { roots, why, added })
    }

    /// The command-line tool's trust: the system store, and `AWS_CA_BUNDLE`
    /// added to it (the AWS CLI uses it instead of its bundle).
    pub fn for_cli(
        env: impl Fn(&str) -> Option<String>,
        read: impl Fn(&str) -> std::io::Result<Vec<u8>>,
    ) -> Result<Self, StopError> {
        let added = added_bundle(env("AWS_CA_BUNDLE").filter(|v| !v.is_empty()), read)?;
        Ok(Trust {
            roots: Roots::System,
            why: "the command-line tool",
            added,
        })
    }

    /// `loader` with this trust's HTTP client, when the SDK's default is not
    /// it. Given to the loader, not to the clients after it: the credential
    /// providers it builds (web identity's STS client, for one) would
    /// otherwise build the default client, which reads the whole system
    /// store at init (measured: 4.4 ms of a 6.4 ms init; docs/performance.md).
    pub fn configure(&self, loader: aws_config::ConfigLoader) -> aws_config::ConfigLoader {
        match self.http_client() {
            Some(http_client) => loader.http_client(http_client),
            None => loader,
        }
    }

    /// The HTTP client for every AWS client the function builds (through
    /// the `SdkConfig`), or `None` where the SDK's default is exactly this
    /// trust (the system store, nothing added).
    pub fn http_client(&self) -> Option<SharedHttpClient> {
        let store = match (self.roots, &self.added) {
            (Roots::System, None) => return None,
            (Roots::System, Some(_)) => TrustStore::default(),
            (Roots::Amazon, _) => TrustStore::empty().with_pem_certificate(AMAZON_ROOTS),
        };
        let store = match &self.added {
            Some((_, pem)) => store.with_pem_certificate(pem.clone()),
            None => store,
        };
        // Checked above (`check_bundle`); the roots are tested (tests/trust.rs).
        let tls = TlsContext::builder()
            .with_trust_store(store)
            .build()
            .expect("the trust store's certificates were checked");
        Some(https_client(tls))
    }

    /// One line for the init log: which roots, why, and what was added.
    pub fn describe(&self) -> String {
        let roots = match self.roots {
            Roots::Amazon => "Amazon Trust Services' five roots",
            Roots::System => "the system's certificate store",
        };
        match &self.added {
            Some((path, _)) => format!(
                "TLS trusts {roots} ({}), and AWS_CA_BUNDLE {path:?}",
                self.why
            ),
            None => format!("TLS trusts {roots} ({})", self.why),
        }
    }
}

/// The SDK's default HTTPS client (aws-smithy-runtime's
/// `default_https_client` at `BehaviorVersion::latest()`: rustls with
/// aws-lc, the proxy from `HTTPS_PROXY`/`NO_PROXY`, the SDK's timeouts and
/// sleep), with `tls` instead of the native roots.
fn https_client(tls: TlsContext) -> SharedHttpClient {
    Builder::new().build_with_connector_fn(move |settings, components| {
        // Called once when a client is built (to check its configuration:
        // no components) and once per timeout configuration at first use.
        let what = if components.is_some() {
            "connector"
        } else {
            "connector_check"
        };
        crate::timing::timed(what, || connector(&tls, settings, components))
    })
}

fn connector(
    tls: &TlsContext,
    settings: Option<&HttpConnectorSettings>,
    components: Option<&RuntimeComponents>,
) -> Connector {
    let mut connector = ConnectorBuilder::default()
        .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(tls.clone());
    connector.set_connector_settings(settings.cloned());
    if let Some(components) = components {
        connector.set_sleep_impl(components.sleep_impl());
    }
    connector.set_proxy_config(Some(ProxyConfig::from_env()));
    connector.build()
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

/// `AWS_CA_BUNDLE`'s file, read and checked, when it is set.
fn added_bundle(
    path: Option<String>,
    read: impl Fn(&str) -> std::io::Result<Vec<u8>>,
) -> Result<Option<(String, Vec<u8>)>, StopError> {
    let Some(path) = path else { return Ok(None) };
    let pem = read(&path).map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::InvalidInput => e.to_string(),
            kind => kind.to_string(),
        };
        bundle_error(&path, &why)
    })?;
    check_bundle(&pem).map_err(|why| bundle_error(&path, &why))?;
    Ok(Some((path, pem)))
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
