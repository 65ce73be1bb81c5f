//! The review page, embedded in the binary (no CDN, no third-party code):
//! static HTML, CSS and JavaScript modules that talk to the API with the
//! session cookie. The files hold no data; everything they show comes from
//! authenticated API calls.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::ApiError;
use crate::error::ErrorBody;
use crate::extract::ApiPath;

const INDEX: &str = include_str!("page/index.html");

/// JavaScript, modules included (a module script of another type is refused by the browser).
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Every file under `/static/`: name, content type, body. `app.js` is the
/// entry module (`<script type="module">`); it imports the others.
const STATIC: &[(&str, &str, &str)] = &[
    ("app.js", JS, include_str!("page/app.js")),
    ("api.js", JS, include_str!("page/api.js")),
    ("util.js", JS, include_str!("page/util.js")),
    ("review.js", JS, include_str!("page/review.js")),
    ("history.js", JS, include_str!("page/history.js")),
    ("ops.js", JS, include_str!("page/ops.js")),
    ("stats.js", JS, include_str!("page/stats.js")),
    ("style.css", CSS, include_str!("page/style.css")),
    ("team.css", CSS, include_str!("page/team.css")),
];

/// Only this origin, no inline script or style, never framed.
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                              media-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; \
                              frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

/// `GET /`.
#[utoipa::path(
    get,
    path = "/",
    tag = "page",
    summary = "The review and ops page",
    description = "Roles: none (the page logs in over the API).",
    security(()),
    responses((status = 200, description = "HTML", content_type = "text/html"))
)]
pub(crate) async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX)
}

/// `GET /static/{file}`: one of the page's modules or its style sheet.
#[utoipa::path(
    get,
    path = "/static/{file}",
    tag = "page",
    summary = "The page's JavaScript modules and style sheet",
    description = "Roles: none. app.js (the entry module), api.js, util.js, review.js, history.js, ops.js, stats.js, style.css, team.css.",
    security(()),
    params(("file" = String, Path, description = "file name, e.g. app.js")),
    responses(
        (status = 200, description = "the file", content_type = "text/javascript"),
        (status = 404, description = "no such file", body = ErrorBody),
    )
)]
pub(crate) async fn static_file(ApiPath(file): ApiPath<String>) -> Result<Response, ApiError> {
    STATIC
        .iter()
        .find(|(name, _, _)| *name == file)
        .map(|(_, content_type, body)| asset(content_type, body))
        .ok_or_else(|| ApiError::not_found(format!("no static file `{}`", file.escape_debug())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every module another imports is served, and every served script is a checked module.
    #[test]
    fn modules_are_served_and_checked() {
        let names: Vec<&str> = STATIC.iter().map(|(n, _, _)| *n).collect();
        assert!(INDEX.contains("<script type=\"module\" src=\"/static/app.js\">"));
        for (name, content_type, body) in STATIC {
            if *content_type != JS {
                continue;
            }
            assert!(
                body.starts_with("// @ts-check"),
                "{name} opens with // @ts-check"
            );
            for line in body.lines().filter(|l| l.starts_with("import ")) {
                let target = line
                    .rsplit_once("from \"./")
                    .and_then(|(_, t)| t.strip_suffix("\";"))
                    .unwrap_or_else(|| panic!("{name}: import not from \"./x.js\": {line}"));
                assert!(
                    names.contains(&target),
                    "{name} imports {target}, not served"
                );
            }
        }
    }
}
