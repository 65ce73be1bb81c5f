//! Exports: the filtered violation list as CSV, streamed page by page over
//! the listing's keyset pagination, and one violation's evidence package
//! (ZIP, built by the evidence crate from its row and files).

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::SecondsFormat;
use futures_util::StreamExt;
use roadwarden_evidence::{InstallationKey, PackageError, build_package};
use roadwarden_store::{ExportDetail, QueueCursor, QueuePage, Store, ViolationFilter, from_micros};

use crate::api::{ListQuery, filter_of};
use crate::auth::Principal;
use crate::error::ErrorBody;
use crate::extract::{ApiQuery, ViolationId};
use crate::{ApiError, AppState};

/// Rows fetched from the store per round trip.
const PAGE: u32 = 500;

/// The CSV's columns.
pub(crate) const CSV_HEADER: &[&str] = &[
    "id",
    "camera",
    "kind",
    "occurred_at",
    "confidence",
    "status",
    "reviewed_by",
    "reviewed_at",
    "reason",
    "record_hash",
    "evidence_count",
    "plate",
];

/// One CSV cell: a cell a spreadsheet would read as a formula (starting
/// with `=`, `+`, `-`, `@`, a tab or a carriage return) gets a leading
/// apostrophe; a cell with a comma, quote or line break is quoted, quotes doubled.
pub(crate) fn csv_cell(out: &mut String, value: &str) {
    let formula = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quote = value.contains([',', '"', '\n', '\r']);
    if quote {
        out.push('"');
    }
    if formula {
        out.push('\'');
    }
    for c in value.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    if quote {
        out.push('"');
    }
}

fn csv_line(out: &mut String, cells: &[&str]) {
    for (i, c) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_cell(out, c);
    }
    out.push_str("\r\n");
}

fn rfc3339(us: i64) -> String {
    from_micros(us).to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The CSV lines of one page.
fn page_csv(page: &QueuePage, details: &[ExportDetail]) -> String {
    let mut out = String::with_capacity(page.items.len() * 200);
    for item in &page.items {
        let d = details.iter().find(|d| d.id == item.id);
        let review = d.and_then(|d| d.review.as_ref());
        // Confidences are f32 scores stored as f64: the shortest form of the score.
        let confidence = (item.confidence as f32).to_string();
        let reviewed_at = review
            .map(|r| rfc3339(r.reviewed_at_us))
            .unwrap_or_default();
        let evidence_count = d.map(|d| d.evidence_count.to_string()).unwrap_or_default();
        csv_line(
            &mut out,
            &[
                &item.id,
                &item.camera,
                &item.kind,
                &rfc3339(item.occurred_at_us),
                &confidence,
                item.status.as_str(),
                review.map(|r| r.reviewer.as_str()).unwrap_or(""),
                &reviewed_at,
                review.map(|r| r.reason.as_str()).unwrap_or(""),
                d.map(|d| d.record_hash.as_str()).unwrap_or(""),
                &evidence_count,
                item.plate.as_deref().unwrap_or(""),
            ],
        );
    }
    out
}

/// One page of the export: its CSV lines and where the next starts.
async fn fetch(
    store: &Store,
    filter: &ViolationFilter,
    after: Option<&QueueCursor>,
) -> Result<(String, Option<QueueCursor>), roadwarden_store::StoreError> {
    let page = store.list_violations(filter, after, PAGE).await?;
    let ids: Vec<String> = page.items.iter().map(|i| i.id.clone()).collect();
    let details = store.export_details(&ids).await?;
    Ok((page_csv(&page, &details), page.next.clone()))
}

/// `GET /api/export/violations.csv?status&kind&camera&from&to&plate`: every
/// violation the same filter as `GET /api/violations` selects, oldest first,
/// as CSV. The first page is read before answering (so a bad filter or an
/// unreachable store is a proper error); the rest streams, one store page at
/// a time, so the export's size is bounded by nothing but the store.
/// Audited as `export_csv` with the filter as asked, before the first byte.
#[utoipa::path(
    get,
    path = "/api/export/violations.csv",
    tag = "violations",
    summary = "The violations a filter selects, oldest first, as CSV (streamed; every match, no paging)",
    description = "Roles: any logged-in user. Columns: id, camera, kind, occurred_at, confidence, status, reviewed_by, reviewed_at, reason, record_hash, evidence_count, plate (the reviewer's, normalised); cells a spreadsheet would run as a formula get a leading apostrophe. Audited as `export_csv` with the query. `after` and `limit` are refused.",
    params(ListQuery),
    responses(
        (status = 200, description = "`text/csv` with a header row", content_type = "text/csv"),
        (status = 400, description = "bad filter, or `after`/`limit` given", body = ErrorBody),
        (status = 401, description = "not logged in", body = ErrorBody),
    )
)]
pub(crate) async fn violations_csv(
    State(state): State<AppState>,
    p: Principal,
    uri: axum::http::Uri,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let filter = filter_of(&q)?;
    if q.after.is_some() || q.limit.is_some() {
        return Err(ApiError::bad_request(
            "an export has every matching violation: `after` and `limit` are for GET /api/violations",
        ));
    }
    let store = state.0.store.clone();
    let (first, next) = fetch(&store, &filter, None).await?;
    store
        .audit(
            &p.user.name,
            "export_csv",
            None,
            None,
            Some(serde_json::json!({ "query": uri.query().unwrap_or("") }).to_string()),
        )
        .await?;
    let mut head = String::new();
    csv_line(&mut head, CSV_HEADER);
    head.push_str(&first);
    enum Step {
        Next(QueueCursor),
        Done,
    }
    let start = next.map_or(Step::Done, Step::Next);
    let rest = futures_util::stream::unfold(start, move |step| {
        let store = store.clone();
        let filter = filter.clone();
        async move {
            let Step::Next(cursor) = step else {
                return None;
            };
            match fetch(&store, &filter, Some(&cursor)).await {
                Ok((csv, next)) => Some((
                    Ok::<_, std::io::Error>(Bytes::from(csv)),
                    next.map_or(Step::Done, Step::Next),
                )),
                Err(e) => {
                    // The header is sent: all that is left is to cut the body short.
                    tracing::error!("CSV export stopped after {}: {e}", cursor.token());
                    Some((Err(std::io::Error::other(e.to_string())), Step::Done))
                }
            }
        }
    });
    let body = futures_util::stream::once(async move { Ok(Bytes::from(head)) }).chain(rest);
    let mut resp = Body::from_stream(body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"violations.csv\""),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// `GET /api/violations/{id}/package.zip`: the violation's evidence package
/// (every evidence file, `violation.json`, `manifest.json` signed in `manifest.sig`); audited as
/// `export_package` with the package's SHA-256. 409 when an evidence file is
/// gone or altered (the service never hands out a package that does not check).
#[utoipa::path(
    get,
    path = "/api/violations/{id}/package.zip",
    tag = "violations",
    summary = "A violation's evidence package (ZIP)",
    description = "Roles: any logged-in user. `evidence/...` (every file of the record), `violation.json` (the stored record: chain fields, record hash, status, reviews, the reviewer's plate), `manifest.json` (format version, creation time, record hash, status, plate, signing key fingerprint, SHA-256 and size of every file and of violation.json, the violation's review-log entries) and `manifest.sig` (the installation's Ed25519 signature over manifest.json); check it with `roadwarden verify --package FILE.zip --key PUBKEY` (the key from `roadwarden key show`). Audited as `export_package`.",
    params(("id" = String, Path, description = "violation id (UUID)")),
    responses(
        (status = 200, description = "the ZIP; `X-Package-SHA256` carries its hash", content_type = "application/zip"),
        (status = 400, description = "not a UUID", body = ErrorBody),
        (status = 401, description = "not logged in", body = ErrorBody),
        (status = 404, description = "unknown", body = ErrorBody),
        (status = 409, description = "an evidence file is missing or no longer matches its recorded hash", body = ErrorBody),
    )
)]
pub(crate) async fn package(
    State(state): State<AppState>,
    p: Principal,
    ViolationId(id): ViolationId,
) -> Result<Response, ApiError> {
    let store = &state.0.store;
    let record = store
        .get(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("violation {id} is not in the store")))?;
    let reviews = store.reviews_of(&id).await?;
    let review_log = store.review_log_of(&id).await?;
    let data = state.0.data.clone();
    let pkg = tokio::task::spawn_blocking(move || {
        // The installation's key (created at first start; made here if this data folder has none yet).
        let (key, _) = InstallationKey::load_or_create(&data)
            .map_err(|e| ApiError::internal("loading the installation's signing key", e))?;
        Ok::<_, ApiError>(build_package(
            &record,
            &reviews,
            &review_log,
            &data,
            &key,
            chrono::Utc::now(),
        ))
    })
    .await
    .map_err(|e| ApiError::internal("building the evidence package", e))??
    .map_err(|e| match e {
        PackageError::FileMissing { .. } | PackageError::FileAltered { .. } => ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "evidence_broken",
            e.to_string(),
        ),
        e => ApiError::internal("building the evidence package", e),
    })?;
    store
        .audit(
            &p.user.name,
            "export_package",
            Some(&id),
            None,
            Some(
                serde_json::json!({
                    "sha256": pkg.sha256,
                    "files": pkg.manifest.files.len(),
                    "created_at": pkg.manifest.created_at,
                })
                .to_string(),
            ),
        )
        .await?;
    let disposition = format!("attachment; filename=\"violation-{id}.zip\"");
    let mut resp = Body::from(pkg.bytes).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&disposition)
            .map_err(|e| ApiError::internal("the package's file name", e))?,
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "x-package-sha256",
        HeaderValue::from_str(&pkg.sha256)
            .map_err(|e| ApiError::internal("the package hash", e))?,
    );
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(v: &str) -> String {
        let mut s = String::new();
        csv_cell(&mut s, v);
        s
    }

    #[test]
    fn cells_are_quoted_and_formulas_neutralised() {
        assert_eq!(cell("cam-a"), "cam-a");
        assert_eq!(cell(""), "");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("two\nlines"), "\"two\nlines\"");
        assert_eq!(cell("=1+2"), "'=1+2");
        assert_eq!(cell("+1"), "'+1");
        assert_eq!(cell("-1"), "'-1");
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell("\tx"), "'\tx");
        assert_eq!(
            cell("=HYPERLINK(\"x\",\"y\")"),
            "\"'=HYPERLINK(\"\"x\"\",\"\"y\"\")\""
        );
        assert_eq!(cell("=cmd|' /C calc'!A0"), "'=cmd|' /C calc'!A0");
        assert_eq!(cell("a=b"), "a=b");
    }
}
