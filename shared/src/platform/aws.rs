//! The AWS SDK configuration every binary loads once in `main`.
//!
//! Timeouts and retries are bounded so that a frozen dependency costs a request a few seconds,
//! not the function's whole timeout: the caller gets 503 and may retry. Endpoints come from the
//! SDK's own `AWS_ENDPOINT_URL_*` variables (the local stack sets them), so there is no local
//! switch in code.
//!
//! Two choices make a cold start cheaper (BENCHMARKS.md, "Cold start"):
//! - **Credentials and region.** Lambda hands a function its role's credentials and its region in
//!   the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
//!   `AWS_REGION`). When they are there they are taken from there alone, as the default chain
//!   would take them first anyway, without building the rest of it (its web-identity provider
//!   makes an STS client, and with it one more TLS context). Without them, the default chain.
//! - **Root certificates** ([`TlsRoots`], `TLS_ROOTS`). By default the HTTPS client trusts
//!   Amazon Trust Services' roots alone, compiled in: every AWS endpoint chains to one of them.
//!   The SDK's own default reads the system's whole store at init (on Debian, one file per
//!   certificate) and parses it for every client made, which was most of a function's init.
//!   `TLS_ROOTS=system` gives the SDK's default back (a proxy that re-signs TLS, or another
//!   partition's endpoints); `TLS_ROOTS=<path>` trusts the PEM certificates of that file.

use std::time::Duration;

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use aws_smithy_http_client::{Builder, ConnectorBuilder};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::platform::config::{ConfigError, Env};

/// Per attempt: connecting, then the whole attempt; and the operation with its retries.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(1_000);
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(2_000);
pub const OPERATION_TIMEOUT: Duration = Duration::from_millis(5_000);
pub const MAX_ATTEMPTS: u32 = 3;

/// Amazon Root CA 1 to 4 and Starfield Services Root Certificate Authority - G2 (the file says
/// where they come from, with their fingerprints).
pub const AMAZON_TRUST_SERVICES_PEM: &str = include_str!("../../certs/amazon-trust-services.pem");

/// Which root certificates the SDK's HTTPS client trusts (`TLS_ROOTS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsRoots {
    /// `amazon` (the default): [`AMAZON_TRUST_SERVICES_PEM`].
    Amazon,
    /// `system`: the SDK's default client, with the system's store (`SSL_CERT_FILE`,
    /// `SSL_CERT_DIR` or the platform's own).
    System,
    /// A path: the certificates of that PEM file, read and checked when the config loads.
    Pem(Vec<u8>),
}

impl TlsRoots {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid {
            name: "TLS_ROOTS",
            reason,
        };
        match env.optional("TLS_ROOTS").as_deref() {
            None | Some("amazon") => Ok(Self::Amazon),
            Some("system") => Ok(Self::System),
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    invalid(format!("`amazon`, `system` or a PEM file: {path}: {e}"))
                })?;
                let count = root_count(&pem).map_err(|e| invalid(format!("{path}: {e}")))?;
                if count == 0 {
                    return Err(invalid(format!("{path} holds no PEM certificate")));
                }
                Ok(Self::Pem(pem))
            }
        }
    }

    /// The HTTPS client that trusts these roots; `None` for the SDK's default.
    pub fn https_client(&self) -> Option<SharedHttpClient> {
        let pem = match self {
            Self::Amazon => AMAZON_TRUST_SERVICES_PEM.as_bytes().to_vec(),
            Self::System => return None,
            Self::Pem(pem) => pem.clone(),
        };
        // The builder only stores what it is given (it never fails); were it to, the SDK's
        // default client would stand in.
        let context = TlsContext::builder()
            .with_trust_store(TrustStore::empty().with_pem_certificate(pem))
            .build()
            .ok()?;
        // As the SDK builds its default client (aws-smithy-runtime's `default_https_client`),
        // with this trust store.
        Some(
            Builder::new().build_with_connector_fn(move |settings, components| {
                let mut connector = ConnectorBuilder::default()
                    .tls_provider(tls::Provider::Rustls(
                        tls::rustls_provider::CryptoMode::AwsLc,
                    ))
                    .tls_context(context.clone());
                connector.set_connector_settings(settings.cloned());
                if let Some(components) = components {
                    connector.set_sleep_impl(components.sleep_impl());
                }
                connector.set_proxy_config(Some(ProxyConfig::from_env()));
                connector.build()
            }),
        )
    }
}

/// How many trust anchors a PEM file gives; an error where the SDK's client would panic on it
/// (it expects every certificate it is given to parse).
fn root_count(pem: &[u8]) -> Result<usize, String> {
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not PEM: {e}"))?;
    let mut store = rustls::RootCertStore::empty();
    for certificate in certificates {
        store
            .add(certificate)
            .map_err(|e| format!("a certificate that does not parse: {e}"))?;
    }
    Ok(store.len())
}

/// The SDK configuration: bounded timeouts and retries, credentials, region and TLS roots as the
/// module says. Fails only on a malformed `TLS_ROOTS`.
pub async fn load_sdk_config() -> Result<SdkConfig, ConfigError> {
    let env = crate::platform::config::process_env();
    let roots = TlsRoots::from_env(&env)?;
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS));
    if let Some(client) = roots.https_client() {
        loader = loader.http_client(client);
    }
    if env.optional("AWS_ACCESS_KEY_ID").is_some()
        && env.optional("AWS_SECRET_ACCESS_KEY").is_some()
    {
        loader = loader.credentials_provider(EnvironmentVariableCredentialsProvider::new());
    }
    if let Some(region) = env.optional("AWS_REGION") {
        loader = loader.region(Region::new(region));
    }
    Ok(loader.load().await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compiled_in_roots_are_amazon_trust_services_five() {
        assert_eq!(root_count(AMAZON_TRUST_SERVICES_PEM.as_bytes()), Ok(5));
        for name in [
            "Amazon Root CA 1",
            "Amazon Root CA 2",
            "Amazon Root CA 3",
            "Amazon Root CA 4",
            "Starfield Services Root Certificate Authority - G2",
        ] {
            let certificates: Vec<_> =
                CertificateDer::pem_slice_iter(AMAZON_TRUST_SERVICES_PEM.as_bytes())
                    .filter_map(Result::ok)
                    .filter(|c| c.windows(name.len()).any(|w| w == name.as_bytes()))
                    .collect();
            assert_eq!(certificates.len(), 1, "{name}");
        }
    }

    #[test]
    fn tls_roots_from_the_environment() {
        let env = |value: Option<&'static str>| {
            Env::new(move |name: &str| {
                (name == "TLS_ROOTS")
                    .then_some(value)
                    .flatten()
                    .map(str::to_owned)
            })
        };
        assert_eq!(TlsRoots::from_env(&env(None)), Ok(TlsRoots::Amazon));
        assert_eq!(
            TlsRoots::from_env(&env(Some(" amazon "))),
            Ok(TlsRoots::Amazon)
        );
        assert_eq!(
            TlsRoots::from_env(&env(Some("system"))),
            Ok(TlsRoots::System)
        );
        for bad in ["/nonexistent/roots.pem", "Cargo.toml"] {
            match TlsRoots::from_env(&env(Some(bad))) {
                Err(ConfigError::Invalid { name, reason }) => {
                    assert_eq!(name, "TLS_ROOTS");
                    assert!(reason.contains(bad), "{reason}");
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
        assert!(TlsRoots::Amazon.https_client().is_some());
        assert!(TlsRoots::System.https_client().is_none());
    }
}
