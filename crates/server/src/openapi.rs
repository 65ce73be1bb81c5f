//! The OpenAPI 3.1 document, generated (utoipa) from the same route table
//! that builds the router: each handler's `#[utoipa::path]` says its method,
//! path, parameters, body and answers, and the types it answers derive their
//! schemas. Here: the route table, the document's header and security
//! schemes, the event schema, and the schemas of other crates' types.

use std::sync::OnceLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use roadwarden_rules::SignalSource;
use roadwarden_store::{Decision, EvidenceKind, Role, Status};
use roadwarden_types::SignalState;
use serde::Serialize;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat,
    SchemaType, Type,
};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{InfoBuilder, OpenApi, RefOr, Schema, SecurityRequirement};
use utoipa::{PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::{AppState, Event, api, auth, control, export, metrics, page, preview};

/// The routes anyone may call.
pub(crate) fn public_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(api::healthz))
        .routes(routes!(api::readyz))
        .routes(routes!(auth::login))
        .routes(routes!(page::index))
        .routes(routes!(page::static_file))
}

/// The routes behind authentication (the router puts them under
/// [`auth::require_auth`]); the role a route needs is its handler's extractor.
pub(crate) fn protected_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(metrics::metrics))
        .routes(routes!(openapi))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::me))
        .routes(routes!(auth::list_users, auth::add_user))
        .routes(routes!(api::audit))
        .routes(routes!(api::list_violations))
        .routes(routes!(api::violation))
        .routes(routes!(api::review))
        .routes(routes!(api::reopen))
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
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(auth::SESSION_COOKIE))),
    );
    components.security_schemes.insert(
        "bearer".to_owned(),
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    doc.security = Some(vec![
        SecurityRequirement::new("session", Vec::<String>::new()),
        SecurityRequirement::new("bearer", Vec::<String>::new()),
    ]);
    doc
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

// ------------------------------------------------------------------ schemas of other crates' types

/// A string schema of these values, as the type serializes them.
fn string_enum<T: Serialize>(values: &[T]) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(
            values.iter().filter_map(|v| serde_json::to_value(v).ok()),
        ))
}

/// Any JSON value.
pub(crate) fn any() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(SchemaType::AnyValue)
}

/// A violation's review status.
pub(crate) fn status() -> ObjectBuilder {
    // A new variant fails to compile here until it is listed.
    let all = |s: Status| match s {
        Status::Pending | Status::Confirmed | Status::Rejected => s,
    };
    string_enum(&[all(Status::Pending), Status::Confirmed, Status::Rejected])
}

pub(crate) fn role() -> ObjectBuilder {
    string_enum(&Role::ALL)
}

pub(crate) fn decision() -> ObjectBuilder {
    let all = |d: Decision| match d {
        Decision::Confirm | Decision::Reject => d,
    };
    string_enum(&[all(Decision::Confirm), Decision::Reject])
}

pub(crate) fn signal_state() -> ObjectBuilder {
    let all = |s: SignalState| match s {
        SignalState::Red | SignalState::Amber | SignalState::Green | SignalState::Unknown => s,
    };
    string_enum(&[
        all(SignalState::Red),
        SignalState::Amber,
        SignalState::Green,
        SignalState::Unknown,
    ])
}

pub(crate) fn signal_source() -> ObjectBuilder {
    let all = |s: SignalSource| match s {
        SignalSource::Video | SignalSource::External => s,
    };
    string_enum(&[all(SignalSource::Video), SignalSource::External])
}

pub(crate) fn evidence_kind() -> ObjectBuilder {
    let all = |k: EvidenceKind| match k {
        EvidenceKind::Photo | EvidenceKind::Raw | EvidenceKind::Clip | EvidenceKind::Crop => k,
    };
    string_enum(&[
        all(EvidenceKind::Photo),
        EvidenceKind::Raw,
        EvidenceKind::Clip,
        EvidenceKind::Crop,
    ])
}

fn typed(t: Type) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(t)
}

/// A violation's review decisions, oldest first.
pub(crate) fn reviews() -> ArrayBuilder {
    let row = ObjectBuilder::new()
        .property("reviewer", typed(Type::String))
        .required("reviewer")
        .property("status", status())
        .required("status")
        .property(
            "reason",
            typed(Type::String).description(Some("the reason code of a rejection, else empty")),
        )
        .required("reason")
        .property("note", typed(Type::String))
        .required("note")
        .property(
            "reviewed_at_us",
            typed(Type::Integer).format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64))),
        )
        .required("reviewed_at_us");
    ArrayBuilder::new().items(row)
}

/// Violations counted by review status.
pub(crate) fn status_counts() -> ObjectBuilder {
    ["total", "pending", "confirmed", "rejected"]
        .into_iter()
        .fold(ObjectBuilder::new(), |o, k| {
            o.property(k, typed(Type::Integer)).required(k)
        })
}

// ------------------------------------------------------------------ the event schema

fn constant(value: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::AnyValue)
        .extensions(Some(Extensions::from_iter([("const", value)])))
}

fn time() -> ObjectBuilder {
    typed(Type::String).format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
}

fn uuid() -> ObjectBuilder {
    typed(Type::String).format(Some(SchemaFormat::Custom("uuid".to_owned())))
}

fn kind() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::AnyValue)
        .enum_values(Some(["no_helmet", "red_light"]))
}

fn nullable(t: Type, what: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([t, Type::Null]))
        .description(Some(what))
}

/// One branch of the event schema: `event` is `name`; these properties, all required.
fn branch(name: &str, props: Vec<(&str, ObjectBuilder)>) -> ObjectBuilder {
    props.into_iter().fold(
        ObjectBuilder::new()
            .property("event", constant(name))
            .required("event")
            .additional_properties(Some(AdditionalProperties::FreeForm(false))),
        |o, (k, s)| o.property(k, s).required(k),
    )
}

/// The JSON Schema of the events published on MQTT (`roadwarden/{camera}/violations`, QoS 1;
/// violation and review events) and on the webhook (every event); see docs/events.md. A test
/// checks every variant of [`Event`] against it.
impl PartialSchema for Event {
    fn schema() -> RefOr<Schema> {
        let status = ObjectBuilder::new()
            .schema_type(SchemaType::AnyValue)
            .enum_values(Some(["pending", "confirmed", "rejected"]));
        OneOfBuilder::new()
            .description(Some(
                "An event on MQTT or the webhook: a new violation, a review decision (status `pending` \
                 after an admin reopens), or (webhook only) a threshold change.",
            ))
            .item(branch(
                "violation",
                vec![
                    ("id", uuid()),
                    ("camera", typed(Type::String)),
                    ("kind", kind()),
                    ("occurred_at", time()),
                    (
                        "confidence",
                        typed(Type::Number).minimum(Some(0)).maximum(Some(1)),
                    ),
                ],
            ))
            .item(branch(
                "review",
                vec![
                    ("id", uuid()),
                    ("camera", typed(Type::String)),
                    ("kind", kind()),
                    ("status", status),
                    (
                        "reason",
                        nullable(Type::String, "the reason code of a rejection"),
                    ),
                    ("by", typed(Type::String)),
                    ("at", time()),
                ],
            ))
            .item(branch(
                "threshold",
                vec![
                    ("camera", typed(Type::String)),
                    ("class", typed(Type::String)),
                    (
                        "before",
                        nullable(
                            Type::Number,
                            "the value in force before (null: the model's own)",
                        ),
                    ),
                    ("after", typed(Type::Number)),
                    ("by", typed(Type::String)),
                ],
            ))
            .into()
    }
}

impl ToSchema for Event {}

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
