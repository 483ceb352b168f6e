//! The same check as the proxy, inside the process: an HTTP client for a function's SDK clients
//! that holds each call to the function's role before it leaves. The local gateway's functions run
//! in its own process, so their calls need no second HTTP hop (the proxy's, which cost a call about
//! a millisecond in the `ci` build and made a loaded stack several times slower); bootstraps
//! under the emulator, another process, go through the proxy. A refused call never leaves: the
//! client gets AWS's 400 answer from here, and reads it as the SDK reads AWS's. An allowed one goes
//! to the emulator under the stack's own key, as the proxy forwards it.

use std::sync::Arc;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;

use crate::requests::Service;
use crate::service::{LocalIam, Refusal};

/// An HTTP client that checks every call of `function` against its role.
#[derive(Debug, Clone)]
pub struct CheckedClient {
    inner: SharedHttpClient,
    iam: Arc<LocalIam>,
    function: String,
}

impl CheckedClient {
    /// `inner` (the SDK's own client) behind the check of `function`'s calls.
    pub fn shared(inner: SharedHttpClient, iam: Arc<LocalIam>, function: &str) -> SharedHttpClient {
        SharedHttpClient::new(Self {
            inner,
            iam,
            function: function.to_owned(),
        })
    }
}

impl HttpClient for CheckedClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(CheckedConnector {
            inner: self.inner.http_connector(settings, components),
            iam: self.iam.clone(),
            function: self.function.clone(),
        })
    }
}

#[derive(Debug)]
struct CheckedConnector {
    inner: SharedHttpConnector,
    iam: Arc<LocalIam>,
    function: String,
}

impl HttpConnector for CheckedConnector {
    fn call(&self, mut request: HttpRequest) -> HttpConnectorFuture {
        let (inner, iam, function) = (self.inner.clone(), self.iam.clone(), self.function.clone());
        HttpConnectorFuture::new(async move {
            let target = request
                .headers()
                .get("x-amz-target")
                .unwrap_or_default()
                .to_owned();
            let checked = match Service::of_target(&target) {
                Some((service, operation)) => {
                    let body = request.body().bytes().unwrap_or_default().to_vec();
                    iam.check_call(&function, service, operation, &body)
                        .await
                        .map_err(|refusal| (Some(service), refusal))
                }
                None => Err((
                    None,
                    Refusal::Unreadable(format!("unknown X-Amz-Target {target:?}")),
                )),
            };
            if let Err((service, refusal)) = checked {
                return refused(service, &refusal);
            }
            let original = request.headers().get("authorization").map(str::to_owned);
            let upstream = iam.upstream_authorization(original.as_deref());
            request.headers_mut().insert("authorization", upstream);
            inner.call(request).await
        })
    }
}

/// AWS's answer to a refused call, as the SDK would receive it.
fn refused(service: Option<Service>, refusal: &Refusal) -> Result<HttpResponse, ConnectorError> {
    let (content_type, body) = refusal.json_answer(service);
    let status = 400u16
        .try_into()
        .map_err(|e| ConnectorError::other(Box::new(e), None))?;
    let mut response = HttpResponse::new(status, SdkBody::from(body));
    response.headers_mut().insert("content-type", content_type);
    response
        .headers_mut()
        .insert("x-amzn-requestid", ulid::Ulid::new().to_string());
    Ok(response)
}
