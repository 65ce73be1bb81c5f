//! Schemas of the types the API shows but other crates define (store, rules, types), and of the `Event`
//! union: the pieces the handlers' `#[schema(schema_with = ...)]` attributes and the document share.
//! Must not: name a handler or a route (the route table is `openapi`, which imports the handlers).

use roadwarden_rules::SignalSource;
use roadwarden_store::{Decision, EvidenceKind, Role, Status};
use roadwarden_types::SignalState;
use serde::Serialize;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat,
    SchemaType, Type,
};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use crate::Event;

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
