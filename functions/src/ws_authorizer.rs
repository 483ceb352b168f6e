//! `ws-authorizer`: the REQUEST authorizer of the WebSocket API's `$connect`. A browser connects
//! with `?ticket=` (from `POST /realtime/tickets`, consumed here, so it opens one connection), other
//! clients with `?token=<JWT>`, verified as the HTTP API's authorizer does (RS256, `iss`, `aud` or
//! `client_id`, `exp`, `nbf`) against the issuer's JWKS (found by OIDC discovery unless
//! `JWKS_URL` names it), cached by `kid` with a bounded refresh.
//! A refusal fails the invocation with `Unauthorized`, which API Gateway answers with 401 (a Deny
//! policy would be 403); the socket never opens. It declares no identity source, since either
//! parameter may be absent.

use aws_lambda_events::event::apigw::{
    ApiGatewayCustomAuthorizerPolicy, ApiGatewayCustomAuthorizerRequestTypeRequest,
    ApiGatewayCustomAuthorizerResponse,
};
use aws_lambda_events::event::iam::{IamPolicyEffect, IamPolicyStatement};
use chat_shared::adapters::store::DynamoStore;
use chat_shared::adapters::store::StoreConfig;
use chat_shared::domain::UserId;
use chat_shared::edge::jwt::{JwksCache, JwtPolicy, discovery_url};
use chat_shared::platform::config::{ConfigError, Env};
use lambda_runtime::{Error, LambdaEvent};
use serde_json::json;

/// What the authorizer builds once.
#[derive(Debug)]
pub struct Deps {
    pub store: DynamoStore,
    pub jwks: JwksCache,
    pub policy: JwtPolicy,
}

impl Deps {
    /// `TABLE_NAME`, `JWT_ISSUER`, `JWT_AUDIENCE` (comma-separated), and where the issuer's keys
    /// are: `JWKS_URL` when set, else the `jwks_uri` of the issuer's OpenID Connect discovery
    /// document, `<JWT_ISSUER>/.well-known/openid-configuration`, whose `issuer` must be
    /// `JWT_ISSUER` exactly (as the HTTP API's JWT authorizer finds them: Cognito, Auth0 and
    /// Google serve one; Google's keys are not under its issuer). Both are fetched on the first
    /// token, not here; a failed fetch refuses that token and the next one tries again.
    ///
    /// `OIDC_DISCOVERY_URL` moves the discovery document (the issuer stays `JWT_ISSUER`): for the
    /// local stack, whose issuer `https://local-issuer.chat.invalid` serves nothing, so that the
    /// local gateway can serve its document (`/_local/.well-known/openid-configuration`) and the
    /// discovery path runs locally as it does in AWS. Unset in the template.
    pub async fn from_env<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
    ) -> Result<Self, ConfigError> {
        let table = StoreConfig::from_env(env)?.table_name;
        let issuer = env.required("JWT_ISSUER")?;
        let audiences: Vec<String> = env
            .required("JWT_AUDIENCE")?
            .split(',')
            .map(|a| a.trim().to_owned())
            .filter(|a| !a.is_empty())
            .collect();
        let jwks = match env.optional("JWKS_URL") {
            Some(url) => JwksCache::new(url),
            None => JwksCache::discover(
                env.optional("OIDC_DISCOVERY_URL")
                    .unwrap_or_else(|| discovery_url(&issuer)),
                issuer.clone(),
            ),
        };
        let clock = chat_shared::platform::time::Clock::from_env(env)?;
        let sdk = chat_shared::platform::aws::load_sdk_config().await?;
        Ok(Self {
            store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table, clock),
            jwks,
            policy: JwtPolicy { issuer, audiences },
        })
    }
}

/// The failure API Gateway turns into 401.
#[derive(Debug)]
pub struct Unauthorized;

impl std::fmt::Display for Unauthorized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Unauthorized")
    }
}

impl std::error::Error for Unauthorized {}

/// Who is connecting, if anyone may.
pub async fn authenticate(
    deps: &Deps,
    request: &ApiGatewayCustomAuthorizerRequestTypeRequest,
) -> Result<Option<UserId>, Error> {
    let query = &request.query_string_parameters;
    if let Some(ticket) = query.first("ticket") {
        return Ok(chat_shared::services::realtime::consume(&deps.store, ticket).await?);
    }
    if let Some(token) = query.first("token") {
        return Ok(
            match deps
                .jwks
                .verify(token, &deps.policy, deps.store.now())
                .await
            {
                Ok(claims) => claims
                    .get("sub")
                    .and_then(|s| s.as_str())
                    .and_then(|s| s.parse().ok()),
                Err(reason) => {
                    tracing::info!(?reason, "token refused at $connect");
                    None
                }
            },
        );
    }
    Ok(None)
}

/// An Allow policy for this connection, with the user in the context the routes read.
pub fn allow(user: &UserId, method_arn: &str) -> ApiGatewayCustomAuthorizerResponse {
    let mut statement = IamPolicyStatement::default();
    statement.action = vec!["execute-api:Invoke".to_owned()];
    statement.effect = IamPolicyEffect::Allow;
    statement.resource = vec![method_arn.to_owned()];
    let mut policy = ApiGatewayCustomAuthorizerPolicy::default();
    policy.version = Some("2012-10-17".to_owned());
    policy.statement = vec![statement];
    let mut response = ApiGatewayCustomAuthorizerResponse::default();
    response.principal_id = Some(user.to_string());
    response.policy_document = policy;
    response.context = json!({"userId": user});
    response
}

pub async fn handle(
    deps: &Deps,
    event: LambdaEvent<ApiGatewayCustomAuthorizerRequestTypeRequest>,
) -> Result<ApiGatewayCustomAuthorizerResponse, Error> {
    let request = event.payload;
    match authenticate(deps, &request).await? {
        Some(user) => Ok(allow(&user, request.method_arn.as_deref().unwrap_or("*"))),
        None => Err(Unauthorized.into()),
    }
}
