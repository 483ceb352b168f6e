//! The web client's built files (`examples/web-client/dist`), served at `/` where no API route
//! matches, for `GET` and `HEAD` only. Development only: in AWS the page is hosted elsewhere and
//! talks to the deployed APIs across origins (CORS).
//!
//! Only plain relative paths are served (segments of `[A-Za-z0-9._-]`, none starting with `.`),
//! `/` is `index.html`, and anything else, a path that is no file included, falls through to the
//! API's own 404 `{"message": "Not Found"}`.

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;

/// The environment variable naming the directory (`local-gateway serve --web-root DIR` wins).
pub const WEB_ROOT_ENV: &str = "WEB_CLIENT_DIR";

/// The file under `root` that `raw_path` names, if the path is a plain relative one.
pub fn file_for(root: &Path, raw_path: &str) -> Option<PathBuf> {
    let relative = raw_path.strip_prefix('/')?;
    let relative = if relative.is_empty() {
        "index.html"
    } else {
        relative
    };
    let plain = relative.split('/').all(|segment| {
        !segment.is_empty()
            && !segment.starts_with('.')
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    });
    plain.then(|| root.join(relative))
}

/// The `Content-Type` of a file, by its extension.
pub fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "webp" => "image/webp",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The file's answer, or `None` when this request is not for a file of the web client.
pub async fn serve(root: Option<&Path>, method: &Method, raw_path: &str) -> Option<Response> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    let path = file_for(root?, raw_path)?;
    if !tokio::fs::metadata(&path).await.ok()?.is_file() {
        return None;
    }
    let bytes = tokio::fs::read(&path).await.ok()?;
    let length = bytes.len();
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(bytes)
    };
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&path)),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Vite names the files under assets/ by their content; index.html is read anew each time.
    let cache = if raw_path.starts_with("/assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    Some(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_paths_name_files() {
        let root = Path::new("/srv/web");
        assert_eq!(file_for(root, "/"), Some(root.join("index.html")));
        assert_eq!(
            file_for(root, "/assets/index-Ab_1.js"),
            Some(root.join("assets/index-Ab_1.js"))
        );
        for refused in [
            "/../secret",
            "/assets/../../x",
            "/.env",
            "/assets/.hidden",
            "//etc/passwd",
            "/a//b",
            "/a%2F..%2Fb",
            "/a\\b",
            "/assets/",
            "relative",
        ] {
            assert_eq!(file_for(root, refused), None, "{refused}");
        }
    }

    #[test]
    fn content_types_by_extension() {
        assert_eq!(
            content_type(Path::new("index.html")),
            "text/html; charset=utf-8"
        );
        assert_eq!(
            content_type(Path::new("a.js")),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type(Path::new("a")), "application/octet-stream");
    }
}
