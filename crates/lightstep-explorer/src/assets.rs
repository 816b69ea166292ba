//! The pages' files, embedded in the binary when it is compiled (no Node, no build step), each
//! served with an explicit content type.
//!
//! Every page is the same document (`index.html`); its script reads the URL and draws the
//! view, so that each view has its own URL and the back button works.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;

use crate::api::{Body, plain};

/// `(name, content type, bytes)` of every file under `/assets/`.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/app.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/style.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../assets/favicon.svg"),
    ),
];

const INDEX: &[u8] = include_bytes!("../assets/index.html");

/// The first path segments of the pages.
const PAGES: &[&str] = &["search", "trace", "contribution", "compare"];

/// Whether the path (decoded segments) is one of the pages.
pub(crate) fn is_page(segments: &[String]) -> bool {
    match segments.first() {
        None => true,
        Some(first) => PAGES.contains(&first.as_str()),
    }
}

/// The document every page starts from.
pub(crate) fn page() -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from_static(INDEX)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// A file under `/assets/`.
pub(crate) fn asset(name: &str) -> Response<Body> {
    let Some((_, content_type, bytes)) = ASSETS.iter().find(|(n, _, _)| *n == name) else {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    };
    let mut response = Response::new(Full::new(Bytes::from_static(bytes)));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // The files change only with the binary; a short cache spares reloads the round trips.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=60"),
    );
    response
}
