//! The OpenAPI 3.1 document, generated (utoipa) from the same route table
//! that builds the router: each handler's `#[utoipa::path]` says its method,
//! path, parameters, body and answers, and the types it answers derive their
//! schemas. Here: the route table, the document's header and security
//! schemes, the event schema, and the schemas of other crates' types.

use std::sync::OnceLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{InfoBuilder, OpenApi, SecurityRequirement};
use utoipa::{PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::{AppState, Event, accounts, api, control, export, metrics, page, preview, team};

/// The routes anyone may call.
pub(crate) fn public_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(api::healthz))
        .routes(routes!(api::readyz))
        .routes(routes!(accounts::login))
        .routes(routes!(page::index))
        .routes(routes!(page::static_file))
}

/// The routes behind authentication (the router puts them under
/// [`auth::require_auth`]); the role a route needs is its handler's extractor.
pub(crate) fn protected_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(metrics::metrics))
        .routes(routes!(openapi))
        .routes(routes!(accounts::logout))
        .routes(routes!(accounts::me))
        .routes(routes!(accounts::list_users, accounts::add_user))
        .routes(routes!(accounts::delete_user))
        .routes(routes!(accounts::disable_user))
        .routes(routes!(accounts::enable_user))
        .routes(routes!(accounts::unlock_user))
        .routes(routes!(accounts::revoke_tokens))
        .routes(routes!(api::audit))
        .routes(routes!(api::list_violations))
        .routes(routes!(api::violation))
        .routes(routes!(api::review))
        .routes(routes!(api::reopen))
        .routes(routes!(team::claim, team::release))
        .routes(routes!(team::undo))
        .routes(routes!(team::bulk_reject))
        .routes(routes!(team::next_case))
        .routes(routes!(team::queue_events))
        .routes(routes!(team::history))
        .routes(routes!(team::stats))
        .routes(routes!(team::put_time_zone))
        .routes(routes!(api::put_plate))
        .routes(routes!(export::package))
        .routes(routes!(export::violations_csv))
        .routes(routes!(api::review_reasons))
        .routes(routes!(api::evidence))
        .routes(routes!(api::cameras))
        .routes(routes!(control::reload))
        .routes(routes!(control::signal))
        .routes(routes!(control::pipeline))
        .routes(routes!(api::camera))
        .routes(routes!(api::all_thresholds))
        .routes(routes!(api::camera_thresholds))
        .routes(routes!(api::put_threshold))
        .routes(routes!(preview::preview))
}

/// The document: every route of [`public_routes`] and [`protected_routes`],
/// the event schema, and how to authenticate.
pub fn document() -> OpenApi {
    let mut doc = public_routes().merge(protected_routes()).into_openapi();
    doc.info = InfoBuilder::new()
        .title("roadwarden")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "Review helmet and red-light violations, download their evidence, tune thresholds. \
             Every endpoint except /healthz, /readyz, /api/login and the page needs a session cookie \
             (from /api/login) or `Authorization: Bearer <token>`. With a cookie, POST/PUT/DELETE also \
             need `X-CSRF-Token` (from the login answer or GET /api/me). Errors are `{error, message}`.",
        ))
        .build();
    let components = doc.components.get_or_insert_with(Default::default);
    components
        .schemas
        .insert(Event::name().into_owned(), Event::schema());
    components.security_schemes.insert(
        "session".to_owned(),
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(
            crate::auth::SESSION_COOKIE,
        ))),
    );
    components.security_schemes.insert(
        "bearer".to_owned(),
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    doc.security = Some(vec![
        SecurityRequirement::new("session", Vec::<String>::new()),
        SecurityRequirement::new("bearer", Vec::<String>::new()),
    ]);
    add_outage_answers(&mut doc);
    doc
}

/// Every operation that needs the store (a session or token check, or its data) answers 503
/// `store_unavailable` with `Retry-After` while the store's database cannot be reached; the
/// probes and `/metrics` answer from memory.
fn add_outage_answers(doc: &mut OpenApi) {
    use utoipa::openapi::{Content, Ref, RefOr, ResponseBuilder};
    for (path, item) in doc.paths.paths.iter_mut() {
        if matches!(path.as_str(), "/healthz" | "/readyz" | "/metrics") {
            continue;
        }
        let ops = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in ops.into_iter().flatten() {
            op.responses
                .responses
                .entry("503".to_owned())
                .or_insert_with(|| {
                    let body = Content::new(Some(RefOr::Ref(Ref::from_schema_name("ErrorBody"))));
                    RefOr::T(
                        ResponseBuilder::new()
                            .description(
                                "`store_unavailable`: the store's database cannot be reached; \
                                 retry after the `Retry-After` seconds",
                            )
                            .content("application/json", body)
                            .build(),
                    )
                });
        }
    }
}

/// The document as served (made once).
fn document_json() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| match document().to_json() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("the OpenAPI document does not serialize: {e}");
            String::from("{}")
        }
    })
}

/// `GET /api/openapi.json`.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "service",
    summary = "This document",
    description = "Roles: any logged-in user.",
    responses((status = 200, description = "the OpenAPI 3.1 document", content_type = "application/json"))
)]
pub(crate) async fn openapi() -> Response {
    let mut r = document_json().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use serde_json::Value;

    fn doc() -> Value {
        serde_json::to_value(document()).expect("document serializes")
    }

    /// Every operation of the route table is in the document, public ones
    /// say they need no credentials and protected ones do not.
    #[test]
    fn every_route_is_documented_with_its_access() {
        let doc = doc();
        let paths = doc["paths"].as_object().expect("paths");
        let mut seen = 0;
        for (routes, public) in [(public_routes(), true), (protected_routes(), false)] {
            let part = serde_json::to_value(routes.into_openapi()).expect("part");
            for (path, item) in part["paths"].as_object().expect("paths") {
                for (method, op) in item.as_object().expect("item") {
                    seen += 1;
                    let documented = &paths[path.as_str()][method.as_str()];
                    assert!(documented.is_object(), "{method} {path} is documented");
                    assert!(
                        documented["summary"]
                            .as_str()
                            .is_some_and(|s| !s.is_empty()),
                        "{method} {path} has a summary"
                    );
                    assert!(
                        documented["description"]
                            .as_str()
                            .is_some_and(|d| d.starts_with("Roles: ")),
                        "{method} {path} says who may call it"
                    );
                    let open = op["security"] == serde_json::json!([{}]);
                    assert_eq!(open, public, "{method} {path}: public {public}");
                    // /metrics answers from memory during an outage.
                    if !public && path != "/metrics" {
                        assert!(
                            documented["responses"]["503"].is_object(),
                            "{method} {path} documents the store outage's 503"
                        );
                    }
                }
            }
        }
        let total: usize = paths
            .values()
            .map(|i| i.as_object().map_or(0, |o| o.len()))
            .sum();
        assert_eq!(seen, total, "the document has no operation of its own");
        assert_eq!(doc["openapi"], "3.1.0");
    }

    /// The router adds no route of its own beside the table's (`routes!` is the only way in):
    /// with the test above, every route of the router is in the document.
    #[test]
    fn no_route_bypasses_the_table() {
        for (file, src) in [
            ("lib.rs", include_str!("lib.rs")),
            ("openapi.rs", include_str!("openapi.rs")),
        ] {
            for bypass in [
                concat!(".route", "("),
                concat!(".route_service", "("),
                concat!(".nest", "("),
                concat!(".nest_service", "("),
            ] {
                assert!(!src.contains(bypass), "{file} adds a route with {bypass}");
            }
        }
    }

    /// Every event variant fits its branch of the documented schema exactly.
    #[test]
    fn events_fit_the_schema() {
        let doc = doc();
        let schema = &doc["components"]["schemas"]["Event"];
        let events = [
            Event::Violation {
                id: uuid::Uuid::new_v4().to_string(),
                camera: "cam-a".into(),
                kind: "no_helmet".into(),
                occurred_at: Utc::now(),
                confidence: 0.5,
            },
            Event::Review {
                id: uuid::Uuid::new_v4().to_string(),
                camera: "cam-a".into(),
                kind: "red_light".into(),
                status: "rejected".into(),
                reason: Some("duplicate".into()),
                by: "rita".into(),
                at: Utc::now(),
            },
            Event::Threshold {
                camera: "cam-a".into(),
                class: "no_helmet".into(),
                before: None,
                after: 0.5,
                by: "otto".into(),
            },
        ];
        for e in events {
            let v = serde_json::to_value(&e).expect("event");
            let obj = v.as_object().expect("object");
            let branch = schema["oneOf"]
                .as_array()
                .expect("oneOf")
                .iter()
                .find(|b| b["properties"]["event"]["const"] == v["event"])
                .unwrap_or_else(|| panic!("no branch for {v}"));
            assert_eq!(branch["additionalProperties"], false);
            let mut required: Vec<&str> = branch["required"]
                .as_array()
                .expect("required")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
            required.sort_unstable();
            keys.sort_unstable();
            assert_eq!(keys, required, "{v}");
            for (k, value) in obj {
                if let Some(allowed) = branch["properties"][k]["enum"].as_array() {
                    assert!(allowed.contains(value), "{k}={value}");
                }
            }
        }
    }
}
