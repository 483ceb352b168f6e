//! The IAM proxy over HTTPS, for the cold-start benchmark: on AWS a function's first DynamoDB,
//! Kinesis or `@connections` call opens a TLS connection, which the plain-HTTP emulators never
//! make it pay. `local-gateway serve` serves this beside the plain proxy when given a certificate
//! and its key (PEM files, `CHAT_IAM_TLS_CERT` and `CHAT_IAM_TLS_KEY`); a bootstrap trusts it
//! with `TLS_ROOTS=<the certificate>` (`chat_shared::platform::aws::TlsRoots`), as it trusts Amazon's roots
//! on AWS.

use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::service::LocalIam;

/// How long a client may take over its handshake before the next is accepted.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// A TCP listener whose connections are TLS, for `axum::serve`.
struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, address)) = self.tcp.accept().await else {
                continue;
            };
            // As a service's endpoint does: without it, a response split over TLS records
            // waits out the client's delayed ACK (40 ms here) behind Nagle's algorithm.
            let _ = stream.set_nodelay(true);
            // A failed or slow handshake is that client's problem: the next is accepted.
            if let Ok(Ok(tls)) =
                tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor.accept(stream)).await
            {
                return (tls, address);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// The server's TLS settings: the certificate chain and key of the PEM texts, HTTP/1.1.
fn server_config(cert_pem: &[u8], key_pem: &[u8]) -> Result<rustls::ServerConfig, String> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the certificate: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| format!("the key: {e}"))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(|e| e.to_string())?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

impl LocalIam {
    /// Serves the proxy over HTTPS on a free loopback port, for as long as the runtime runs;
    /// its URL (`https://127.0.0.1:<port>`: the certificate must name that address).
    pub async fn start_tls(
        self: &Arc<Self>,
        cert_pem: &[u8],
        key_pem: &[u8],
    ) -> Result<String, String> {
        let acceptor = TlsAcceptor::from(Arc::new(server_config(cert_pem, key_pem)?));
        let tcp = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let port = tcp.local_addr().map_err(|e| e.to_string())?.port();
        let router = crate::service::router(self.clone());
        tokio::spawn(async move {
            let _ = axum::serve(TlsListener { tcp, acceptor }, router).await;
        });
        Ok(format!("https://127.0.0.1:{port}"))
    }
}
