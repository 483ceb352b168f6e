//! Builds the HTTP API (payload format 2.0) event that API Gateway sends a Lambda integration, from
//! a request the local gateway received.

use std::collections::{BTreeMap, HashMap};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::routes::Matched;

/// What the gateway knows of the incoming request.
#[derive(Debug)]
pub struct Incoming<'a> {
    pub method: &'a str,
    /// The path as sent, percent-encoded.
    pub raw_path: &'a str,
    pub raw_query: &'a str,
    pub headers: &'a axum::http::HeaderMap,
    pub body: &'a [u8],
    pub source_ip: String,
}

/// The API's fixed facts: its id, stage and domain.
#[derive(Debug, Clone)]
pub struct ApiFacts {
    pub api_id: String,
    pub stage: String,
    pub domain_name: String,
}

fn decode(raw: &str) -> String {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8_lossy()
        .into_owned()
}

/// `a=1&a=2&b=x%20y` → `{"a": "1,2", "b": "x y"}`, as API Gateway joins repeated keys.
fn query_parameters(raw: &str) -> BTreeMap<String, String> {
    let mut params: BTreeMap<String, String> = BTreeMap::new();
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (decode(k), decode(v));
        params
            .entry(k)
            .and_modify(|existing| {
                existing.push(',');
                existing.push_str(&v);
            })
            .or_insert(v);
    }
    params
}

/// The event API Gateway would build. `claims` are the authorizer's, already strings.
pub fn http_api_event(
    incoming: &Incoming<'_>,
    matched: &Matched,
    claims: &HashMap<String, String>,
    facts: &ApiFacts,
    request_id: &str,
    now: chat_shared::platform::time::Timestamp,
) -> Value {
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    let mut cookies = Vec::new();
    for (name, value) in incoming.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name == axum::http::header::COOKIE {
            cookies.extend(value.split(';').map(|c| c.trim().to_owned()));
            continue;
        }
        headers
            .entry(name.as_str().to_owned())
            .and_modify(|v| {
                v.push(',');
                v.push_str(&value);
            })
            .or_insert(value);
    }
    let user_agent = headers.get("user-agent").cloned().unwrap_or_default();
    // HTTP APIs hand the path to the function decoded.
    let path = decode(incoming.raw_path);
    let path_parameters: BTreeMap<&str, &str> = matched
        .path_parameters
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (body, is_base64) = match std::str::from_utf8(incoming.body) {
        _ if incoming.body.is_empty() => (Value::Null, false),
        Ok(text) => (json!(text), false),
        Err(_) => (json!(STANDARD.encode(incoming.body)), true),
    };
    let mut event = json!({
        "version": "2.0",
        "routeKey": matched.route.route_key(),
        "rawPath": path,
        "rawQueryString": incoming.raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": facts.api_id,
            "domainName": facts.domain_name,
            "domainPrefix": facts.domain_name.split('.').next().unwrap_or_default(),
            "http": {
                "method": incoming.method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": incoming.source_ip,
                "userAgent": user_agent,
            },
            "requestId": request_id,
            "routeKey": matched.route.route_key(),
            "stage": facts.stage,
            "time": now.to_string(),
            "timeEpoch": now.unix_millis(),
            "authorizer": {"jwt": {"claims": claims, "scopes": null}},
        },
        "isBase64Encoded": is_base64,
    });
    if !cookies.is_empty() {
        event["cookies"] = json!(cookies);
    }
    let query = query_parameters(incoming.raw_query);
    if !query.is_empty() {
        event["queryStringParameters"] = json!(query);
    }
    if !path_parameters.is_empty() {
        event["pathParameters"] = json!(path_parameters);
    }
    if !body.is_null() {
        event["body"] = body;
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_query_keys_are_joined_and_values_decoded() {
        let q = query_parameters("a=1&b=x%20y&a=2&flag");
        assert_eq!(q["a"], "1,2");
        assert_eq!(q["b"], "x y");
        assert_eq!(q["flag"], "");
    }

    #[test]
    fn the_event_is_one_lambda_http_reads_as_http_api() {
        use lambda_http::RequestExt;
        let matched = crate::routes::find("GET", "/users/a%23b").unwrap();
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("user-agent", "test".parse().unwrap());
        headers.insert("cookie", "a=1; b=2".parse().unwrap());
        let incoming = Incoming {
            method: "GET",
            raw_path: "/users/a%23b",
            raw_query: "x=1",
            headers: &headers,
            body: b"",
            source_ip: "127.0.0.1".into(),
        };
        let facts = ApiFacts {
            api_id: "local".into(),
            stage: "$default".into(),
            domain_name: "127.0.0.1:3000".into(),
        };
        let claims = HashMap::from([("sub".to_owned(), "u1".to_owned())]);
        let event = http_api_event(
            &incoming,
            &matched,
            &claims,
            &facts,
            "req-1",
            chat_shared::platform::time::Clock::system().now(),
        );
        let request = lambda_http::request::from_str(&event.to_string()).unwrap();
        assert_eq!(request.path_parameters().first("userId"), Some("a#b"));
        assert_eq!(request.query_string_parameters().first("x"), Some("1"));
        assert_eq!(chat_shared::edge::http::request_id(&request), "req-1");
        let caller = chat_shared::edge::http::caller(&request).unwrap();
        assert_eq!(caller.user_id.as_str(), "u1");
        assert_eq!(event["cookies"], json!(["a=1", "b=2"]));
    }
}
