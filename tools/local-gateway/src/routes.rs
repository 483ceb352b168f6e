//! The Lambda route table: which function's handler serves which `METHOD /path`, exactly as the
//! `HttpApi` events of `template.yaml` say (a test holds the two together). The gateway's own
//! routes (`/_local/...`) are not in it: they are not deployed.

use chat_functions::{
    http_add_members, http_create_conversation, http_create_realtime_ticket, http_delete_reaction,
    http_edit_message, http_get_conversation, http_get_me, http_get_unread, http_get_user,
    http_list_changes, http_list_conversations, http_list_messages, http_mark_read,
    http_put_reaction, http_remove_member, http_send_message, http_unsend_message,
    http_update_conversation, http_update_conversation_settings, http_update_me,
};
use std::future::Future;
use std::pin::Pin;

use chat_shared::services::deps::RouteDeps;
use lambda_http::{Body, Request, Response};

pub type HandlerFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Response<Body>, lambda_http::Error>> + Send + 'a>>;

/// A function's `handle`, as its `main.rs` runs it.
pub type Handler = for<'a> fn(&'a RouteDeps, Request) -> HandlerFuture<'a>;

#[derive(Debug, Clone, Copy)]
pub struct LambdaRoute {
    pub method: &'static str,
    /// API Gateway's path template: `/users/{userId}`.
    pub path: &'static str,
    /// The function's package (and binary) name.
    pub function: &'static str,
    pub handler: Handler,
}

impl LambdaRoute {
    /// API Gateway's `routeKey`: `GET /users/{userId}`.
    pub fn route_key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

macro_rules! route {
    ($method:literal, $path:literal, $krate:ident) => {
        LambdaRoute {
            method: $method,
            path: $path,
            function: stringify!($krate),
            handler: |deps, req| Box::pin($krate::handle(deps, req)),
        }
    };
}

/// Every HTTP route of the API. `function` is the crate name with `_`; see [`function_name`].
pub const LAMBDA_ROUTES: &[LambdaRoute] = &[
    route!("GET", "/me", http_get_me),
    route!("GET", "/me/unread", http_get_unread),
    route!("PATCH", "/me", http_update_me),
    route!("GET", "/users/{userId}", http_get_user),
    route!("POST", "/conversations", http_create_conversation),
    route!("GET", "/conversations", http_list_conversations),
    route!("GET", "/conversations/{id}", http_get_conversation),
    route!("PATCH", "/conversations/{id}", http_update_conversation),
    route!(
        "PATCH",
        "/conversations/{id}/settings",
        http_update_conversation_settings
    ),
    route!("POST", "/conversations/{id}/members", http_add_members),
    route!(
        "DELETE",
        "/conversations/{id}/members/{userId}",
        http_remove_member
    ),
    route!("POST", "/conversations/{id}/messages", http_send_message),
    route!("GET", "/conversations/{id}/messages", http_list_messages),
    route!("POST", "/conversations/{id}/read", http_mark_read),
    route!(
        "PATCH",
        "/conversations/{id}/messages/{seq}",
        http_edit_message
    ),
    route!(
        "DELETE",
        "/conversations/{id}/messages/{seq}",
        http_unsend_message
    ),
    route!(
        "PUT",
        "/conversations/{id}/messages/{seq}/reactions/{emoji}",
        http_put_reaction
    ),
    route!(
        "DELETE",
        "/conversations/{id}/messages/{seq}/reactions/{emoji}",
        http_delete_reaction
    ),
    route!("GET", "/conversations/{id}/changes", http_list_changes),
    route!("POST", "/realtime/tickets", http_create_realtime_ticket),
];

/// The function (package) name of a route: `http-get-me`.
pub fn function_name(route: &LambdaRoute) -> String {
    route.function.replace('_', "-")
}

/// A route that matched, with its path parameters (percent-decoded).
#[derive(Debug)]
pub struct Matched {
    pub route: &'static LambdaRoute,
    pub path_parameters: Vec<(String, String)>,
}

/// Why no route matched.
#[derive(Debug, PartialEq, Eq)]
pub enum NoRoute {
    /// No route has this path (API Gateway: 404 `{"message":"Not Found"}`).
    NotFound,
}

/// Finds the route for a method and a raw (still percent-encoded) path. Segments are matched
/// encoded and parameters decoded afterwards, so an id holding `/` (as `%2F`) stays one segment.
pub fn find(method: &str, raw_path: &str) -> Result<Matched, NoRoute> {
    let segments: Vec<&str> = raw_path.trim_start_matches('/').split('/').collect();
    for route in LAMBDA_ROUTES
        .iter()
        .filter(|r| r.method.eq_ignore_ascii_case(method))
    {
        if let Some(path_parameters) = match_template(route.path, &segments) {
            return Ok(Matched {
                route,
                path_parameters,
            });
        }
    }
    Err(NoRoute::NotFound)
}

fn match_template(template: &str, segments: &[&str]) -> Option<Vec<(String, String)>> {
    let parts: Vec<&str> = template.trim_start_matches('/').split('/').collect();
    if parts.len() != segments.len() {
        return None;
    }
    let mut params = Vec::new();
    for (part, segment) in parts.iter().zip(segments) {
        if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            if segment.is_empty() {
                return None;
            }
            let value = percent_encoding::percent_decode_str(segment)
                .decode_utf8()
                .ok()?;
            params.push((name.to_owned(), value.into_owned()));
        } else if part != segment {
            return None;
        }
    }
    Some(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_literal_and_parameter_segments() {
        let m = find("GET", "/me").unwrap();
        assert_eq!(m.route.function, "http_get_me");
        let m = find("PATCH", "/me").unwrap();
        assert_eq!(function_name(m.route), "http-update-me");
        let m = find("GET", "/users/auth0%7Cada%2Fx").unwrap();
        assert_eq!(m.route.route_key(), "GET /users/{userId}");
        assert_eq!(
            m.path_parameters,
            [("userId".to_owned(), "auth0|ada/x".to_owned())]
        );
    }

    /// The table and `template.yaml` name the same routes and functions, both ways: a route that
    /// is deployed but not served locally, or the reverse, fails here.
    #[test]
    fn the_route_table_is_the_template_routes() {
        let template =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml"))
                .unwrap();
        let deployed = local_stack::template::http_api_routes(&template).unwrap();
        let mut served: Vec<local_stack::template::TemplateRoute> = LAMBDA_ROUTES
            .iter()
            .map(|r| local_stack::template::TemplateRoute {
                method: r.method.to_owned(),
                path: r.path.to_owned(),
                function: function_name(r),
            })
            .collect();
        served.sort();
        assert!(!deployed.is_empty());
        assert_eq!(served, deployed);
    }

    #[test]
    fn unknown_paths_and_methods_do_not_match() {
        assert_eq!(find("GET", "/users").unwrap_err(), NoRoute::NotFound);
        assert_eq!(find("GET", "/users/").unwrap_err(), NoRoute::NotFound);
        assert_eq!(find("DELETE", "/me").unwrap_err(), NoRoute::NotFound);
        assert_eq!(find("GET", "/me/extra").unwrap_err(), NoRoute::NotFound);
    }
}
