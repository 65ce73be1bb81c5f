//! The exports over real HTTP: a server on 127.0.0.1:0 over a real store (an
//! SQLite file, or a PostgreSQL database of its own at 127.0.0.1:5432),
//! violations seeded through the store's insert (hashed with the real chain
//! hash) with real files on disk, and a real HTTP client. Every test body
//! runs on both dialects.

mod common;

use std::collections::BTreeMap;
use std::io::{Cursor, Read};
use std::time::Duration;

use chrono::{SecondsFormat, TimeZone, Utc};
use common::{USERS, dual_test};
use reqwest::StatusCode;
use roadwarden_evidence::chain::record_hash;
use roadwarden_evidence::package::{Manifest, PackagedViolation};
use roadwarden_server::ServerConfig;
use roadwarden_store::*;
use roadwarden_types::{FrameRole, Violation, ViolationKind};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// cam-a alone.
fn site() -> String {
    common::site_toml(&[common::camera_toml("cam-a", None, &[])])
}

/// A camera id a spreadsheet would run as a command.
const HOSTILE_CAMERA: &str = "=cmd|' /C calc'!A0";
/// A reviewer whose name a spreadsheet would read as a formula.
const HOSTILE_REVIEWER: &str = "@mallory";
const BASE_S: i64 = 1_780_000_000;

struct Seeded {
    id: String,
    files: Vec<(String, Vec<u8>)>,
}

struct Harness {
    base: String,
    http: reqwest::Client,
    store: Store,
    data: DataDir,
    /// cam-a ×4 (no_helmet, t = 0, 60, 120, 180 s), cam-b ×2 (red_light, t = 30, 90 s), the hostile camera ×1 (t = 200 s).
    seeded: Vec<Seeded>,
    pg_name: Option<String>,
    server: common::Server,
    _dir: tempfile::TempDir,
}

fn at(s: i64) -> chrono::DateTime<Utc> {
    Utc.timestamp_opt(BASE_S + s, 0).single().expect("time")
}

fn rfc3339(s: i64) -> String {
    at(s).to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

async fn seed(
    store: &Store,
    data: &DataDir,
    camera: &str,
    kind: ViolationKind,
    at_s: i64,
    conf: f32,
    with_files: bool,
) -> Seeded {
    let v = Violation {
        plate_read: None,
        thresholds: BTreeMap::from([("class.no_helmet".to_owned(), 0.4)]),
        ..common::violation(camera, kind, at(at_s), conf)
    };
    let id = v.id.0.to_string();
    let mut files = Vec::new();
    let mut evidence = Vec::new();
    let specs: &[(&str, EvidenceKind, Option<FrameRole>)] = if with_files {
        &[
            ("key-photo.jpg", EvidenceKind::Photo, Some(FrameRole::Key)),
            ("key-raw.jpg", EvidenceKind::Raw, Some(FrameRole::Key)),
            ("clip.mp4", EvidenceKind::Clip, None),
        ]
    } else {
        &[]
    };
    for (name, kind, role) in specs {
        // The folder is the test's; the recorder sanitises camera ids the same way.
        let rel = format!("evidence/cam-{}/{id}/{name}", camera.len());
        let bytes = common::evidence_bytes(name, &id, 2000);
        evidence.push(common::write_evidence(data, &rel, &bytes, *kind, *role));
        files.push((rel, bytes));
    }
    let out = common::insert(store, v, evidence, record_hash).await;
    assert!(matches!(out, InsertOutcome::Inserted { .. }), "{out:?}");
    Seeded { id, files }
}

impl Harness {
    async fn start(dialect: &'static str) -> Harness {
        let (dir, data) = common::temp_data();
        let (store, pg_name) = common::open_store(dialect, &data, "rw_export").await;
        common::put_users(&store, USERS).await;
        store
            .ensure_user(HOSTILE_REVIEWER, "reviewer")
            .await
            .expect("hostile reviewer");
        let mut seeded = Vec::new();
        for i in 0..4 {
            seeded.push(
                seed(
                    &store,
                    &data,
                    "cam-a",
                    ViolationKind::NoHelmet,
                    i * 60,
                    0.5 + i as f32 * 0.05,
                    true,
                )
                .await,
            );
        }
        for i in 0..2 {
            seeded.push(
                seed(
                    &store,
                    &data,
                    "cam-b",
                    ViolationKind::RedLight,
                    30 + i * 60,
                    0.9,
                    true,
                )
                .await,
            );
        }
        seeded.push(
            seed(
                &store,
                &data,
                HOSTILE_CAMERA,
                ViolationKind::NoHelmet,
                200,
                0.75,
                true,
            )
            .await,
        );
        // Decisions: cam-a #0 confirmed by the hostile reviewer, cam-a #1 rejected, cam-b #0 confirmed then reopened.
        let decide = |id: &str, who: &'static str, d: Decision, reason: &'static str| {
            let (store, id) = (store.clone(), id.to_owned());
            async move {
                let out = store.decide(&id, who, d, reason, "").await.expect("decide");
                assert!(matches!(out, DecideOutcome::Changed { .. }), "{out:?}");
            }
        };
        decide(&seeded[0].id, HOSTILE_REVIEWER, Decision::Confirm, "").await;
        decide(&seeded[1].id, "rita", Decision::Reject, "helmet_worn").await;
        decide(&seeded[4].id, "rita", Decision::Confirm, "").await;
        store
            .reopen(&seeded[4].id, "ada", "second look")
            .await
            .expect("reopen");
        let server = common::Server::start(&store, &data, &site(), ServerConfig::default()).await;
        let http = common::http_client(Duration::from_secs(20), true);
        Harness {
            base: server.base.clone(),
            http,
            store,
            data,
            seeded,
            pg_name,
            server,
            _dir: dir,
        }
    }

    /// A session cookie for `role`.
    async fn login(&self, role: &str) -> String {
        let (name, pw, _) = USERS
            .iter()
            .find(|(_, _, r)| r.as_str() == role)
            .expect("known role");
        let r = common::login(&self.http, &self.base, name, pw, &format!("{role} login")).await;
        common::session_cookie(&r)
    }

    /// GET `path` (already percent-encoded) with `cookie`: status, content type, body.
    async fn get(&self, cookie: Option<&str>, path: &str) -> (StatusCode, String, Vec<u8>) {
        let mut rb = self.http.get(format!("{}{path}", self.base));
        if let Some(c) = cookie {
            rb = rb.header("cookie", c);
        }
        let r = rb.send().await.expect("request");
        let status = r.status();
        let ct = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        (status, ct, r.bytes().await.expect("body").to_vec())
    }

    /// The export with `query` pairs (encoded by the client).
    async fn csv(&self, cookie: &str, query: &[(&str, &str)]) -> (StatusCode, Vec<Vec<String>>) {
        let r = self
            .http
            .get(format!("{}/api/export/violations.csv", self.base))
            .query(query)
            .header("cookie", cookie)
            .send()
            .await
            .expect("request");
        let status = r.status();
        let ct = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let text = r.text().await.expect("body");
        if status != StatusCode::OK {
            return (status, vec![vec![text]]);
        }
        assert_eq!(ct, "text/csv; charset=utf-8");
        let rows = parse_csv(&text);
        assert_eq!(
            rows.first().map(|r| r.join(",")).as_deref(),
            Some(
                "id,camera,kind,occurred_at,confidence,status,reviewed_by,reviewed_at,reason,record_hash,evidence_count,plate"
            ),
            "{text}"
        );
        (status, rows[1..].to_vec())
    }

    async fn finish(mut self) {
        self.server.stop();
        common::close_store(&self.store, self.pg_name.take()).await;
    }
}

/// RFC 4180: fields split on commas, quoted fields with doubled quotes, CRLF line ends.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(
        !quoted && field.is_empty() && row.is_empty(),
        "the CSV ends with a line end"
    );
    rows
}

fn ids(rows: &[Vec<String>]) -> Vec<&str> {
    rows.iter().map(|r| r[0].as_str()).collect()
}

async fn csv_with_filters_has_exactly_the_rows(h: &Harness) {
    let cookie = h.login("reviewer").await;
    let s = |i: usize| h.seeded[i].id.as_str();

    // Everything, oldest first: a0 (0 s), b0 (30), a1 (60), b1 (90), a2 (120), a3 (180), hostile (200).
    let (st, all) = h.csv(&cookie, &[]).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(ids(&all), [s(0), s(4), s(1), s(5), s(2), s(3), s(6)]);
    for r in &all {
        assert_eq!(r.len(), 12, "{r:?}");
        let rec = h.store.get(&r[0]).await.expect("get").expect("row");
        assert_eq!(r[9], rec.record_hash, "record hash of {}", r[0]);
        assert_eq!(r[10], "3", "evidence count of {}", r[0]);
        assert_eq!(
            r[3],
            rfc3339((rec.fields.occurred_at_us / 1_000_000) - BASE_S)
        );
    }
    let a0 = &all[0];
    assert_eq!(
        a0[1..9],
        [
            "cam-a",
            "no_helmet",
            rfc3339(0).as_str(),
            "0.5",
            "confirmed",
            // The reviewer's name would be a formula: neutralised.
            format!("'{HOSTILE_REVIEWER}").as_str(),
            a0[7].as_str(),
            ""
        ]
    );
    assert!(a0[7].ends_with('Z') && a0[7].starts_with("20"), "{a0:?}");
    // The hostile camera id is neutralised too, and round-trips through the quoting.
    assert_eq!(all[6][1], format!("'{HOSTILE_CAMERA}"));
    // No cell of the export starts a formula.
    for r in &all {
        for c in r {
            assert!(!c.starts_with(['=', '+', '-', '@']), "{c:?} in {r:?}");
        }
    }

    let (_, rejected) = h.csv(&cookie, &[("status", "rejected")]).await;
    assert_eq!(ids(&rejected), [s(1)]);
    assert_eq!(
        rejected[0][5..9],
        ["rejected", "rita", rejected[0][7].as_str(), "helmet_worn"]
    );
    let (_, confirmed) = h.csv(&cookie, &[("status", "confirmed")]).await;
    assert_eq!(ids(&confirmed), [s(0)]);
    // Reopened: pending again, and no decision in force.
    let (_, red) = h.csv(&cookie, &[("kind", "red_light")]).await;
    assert_eq!(ids(&red), [s(4), s(5)]);
    assert_eq!(red[0][5..9], ["pending", "", "", ""]);
    let (_, window) = h
        .csv(
            &cookie,
            &[
                ("camera", "cam-a"),
                ("from", &rfc3339(60)),
                ("to", &rfc3339(180)),
            ],
        )
        .await;
    assert_eq!(ids(&window), [s(1), s(2)]);
    let from_us = (at(30).timestamp_micros()).to_string();
    let (_, since) = h
        .csv(
            &cookie,
            &[
                ("from", &from_us),
                ("status", "pending"),
                ("kind", "no_helmet"),
            ],
        )
        .await;
    assert_eq!(ids(&since), [s(2), s(3), s(6)]);
    let (_, hostile) = h.csv(&cookie, &[("camera", HOSTILE_CAMERA)]).await;
    assert_eq!(ids(&hostile), [s(6)]);
    let (_, none) = h.csv(&cookie, &[("camera", "' OR '1'='1")]).await;
    assert!(none.is_empty(), "{none:?}");

    // The same filter through the listing selects the same violations.
    let (st, _, body) = h
        .get(Some(&cookie), "/api/violations?camera=cam-a&status=pending")
        .await;
    assert_eq!(st, StatusCode::OK);
    let listed: Value = serde_json::from_slice(&body).expect("json");
    let listed: Vec<&str> = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["id"].as_str().expect("id"))
        .collect();
    let (_, exported) = h
        .csv(&cookie, &[("camera", "cam-a"), ("status", "pending")])
        .await;
    assert_eq!(ids(&exported), listed);
    assert_eq!(listed, [s(2), s(3)]);

    // Every role may export; nobody anonymous.
    for role in ["ops", "admin"] {
        let c = h.login(role).await;
        let (st, rows) = h.csv(&c, &[("kind", "red_light")]).await;
        assert_eq!((st, rows.len()), (StatusCode::OK, 2), "{role}");
    }
    let (st, _, _) = h.get(None, "/api/export/violations.csv").await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    // Each export is in the audit log: who, and with which filter.
    let log = h.store.audit_log(None).await.expect("audit");
    let exports: Vec<(&str, Value)> = log
        .iter()
        .filter(|e| e.1 == "export_csv" && e.2.is_none())
        .map(|e| {
            let after = e.4.as_deref().expect("the filter");
            (e.0.as_str(), serde_json::from_str(after).expect("JSON"))
        })
        .collect();
    let asked: Vec<(&str, Option<&str>)> = exports
        .iter()
        .map(|e| (e.0, e.1["query"].as_str()))
        .collect();
    assert!(
        asked.contains(&("rita", Some("camera=cam-a&status=pending"))),
        "{asked:?}"
    );
    assert_eq!(
        asked[asked.len() - 2..],
        [
            ("otto", Some("kind=red_light")),
            ("ada", Some("kind=red_light"))
        ]
    );
}
dual_test!(csv_with_filters_has_exactly_the_rows);

async fn hostile_filters_are_400_not_500(h: &Harness) {
    let cookie = h.login("reviewer").await;
    let long = "x".repeat(500);
    let bad: Vec<(&str, &str)> = vec![
        ("status", "=1+1"),
        ("status", "pending' OR '1'='1"),
        ("status", "PENDING"),
        ("kind", "<script>alert(1)</script>"),
        ("kind", "red_light; DROP TABLE violations"),
        ("camera", "cam\0a"),
        ("camera", "cam\r\nX-Injected: 1"),
        ("camera", &long),
        ("from", "yesterday"),
        ("from", "99999999999999999999999999"),
        ("to", "2026-13-45T99:99:99Z"),
        ("to", "=NOW()"),
        ("after", "0_00000000-0000-0000-0000-000000000000"),
        ("limit", "10"),
    ];
    for (k, v) in &bad {
        let (st, body) = h.csv(&cookie, &[(k, v)]).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{k}={v:?}: {body:?}");
        let e: Value = serde_json::from_str(&body[0][0]).expect("a JSON error");
        assert_eq!(e["error"], "bad_request", "{e}");
    }
    // Bytes that are no UTF-8, a repeated key, malformed numbers, an unknown key's neighbour.
    for q in [
        "status=%FF%FE",
        "status=pending&status=rejected",
        "limit=-1",
        "limit=1e99",
        "from=%00",
    ] {
        let (st, _, body) = h
            .get(Some(&cookie), &format!("/api/export/violations.csv?{q}"))
            .await;
        assert_eq!(
            st,
            StatusCode::BAD_REQUEST,
            "{q}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    // The listing shares the parser: a NUL in `camera` was a PostgreSQL error before.
    let (st, _, body) = h.get(Some(&cookie), "/api/violations?camera=cam%00a").await;
    assert_eq!(
        st,
        StatusCode::BAD_REQUEST,
        "{}",
        String::from_utf8_lossy(&body)
    );
    // The store is untouched.
    let (st, rows) = h.csv(&cookie, &[]).await;
    assert_eq!((st, rows.len()), (StatusCode::OK, 7));
}
dual_test!(hostile_filters_are_400_not_500);

async fn csv_streams_past_one_store_page(h: &Harness) {
    // More rows than one store page (500): the export pages through the store by keyset.
    for i in 0..520 {
        seed(
            &h.store,
            &h.data,
            "bulk",
            ViolationKind::RedLight,
            1000 + i / 3,
            0.6,
            false,
        )
        .await;
    }
    let cookie = h.login("ops").await;
    let (st, rows) = h.csv(&cookie, &[("camera", "bulk")]).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(rows.len(), 520);
    let keys: Vec<(String, String)> = rows.iter().map(|r| (r[3].clone(), r[0].clone())).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(keys, sorted, "oldest first, by (time, id), each once");
    assert!(rows.iter().all(|r| r[10] == "0" && r[1] == "bulk"));
    let (_, all) = h.csv(&cookie, &[]).await;
    assert_eq!(all.len(), 527);
}
dual_test!(csv_streams_past_one_store_page);

fn unzip(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut z = zip::ZipArchive::new(Cursor::new(bytes)).expect("a ZIP");
    let mut out = BTreeMap::new();
    for i in 0..z.len() {
        let mut f = z.by_index(i).expect("entry");
        let mut b = Vec::new();
        f.read_to_end(&mut b).expect("read entry");
        out.insert(f.name().expect("name").into_owned(), b);
    }
    out
}

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

async fn package_zip_holds_the_record_and_its_files(h: &Harness) {
    let cookie = h.login("ops").await;
    let v = &h.seeded[0];
    // A reviewer read its plate: the package carries it, in violation.json and the signed manifest.
    let plate = Plate::parse("ab-12 cd").expect("plate");
    h.store
        .set_plate(&v.id, "rita", Some(&plate))
        .await
        .expect("set plate");
    let r = h
        .http
        .get(format!("{}/api/violations/{}/package.zip", h.base, v.id))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::OK);
    let header = |n: &str| {
        r.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    assert_eq!(header("content-type"), "application/zip");
    assert_eq!(
        header("content-disposition"),
        format!("attachment; filename=\"violation-{}.zip\"", v.id)
    );
    let package_sha = header("x-package-sha256");
    let bytes = r.bytes().await.expect("body").to_vec();
    assert_eq!(sha(&bytes), package_sha);

    let files = unzip(&bytes);
    let manifest: Manifest = serde_json::from_slice(&files["manifest.json"]).expect("manifest");
    assert_eq!(manifest.format, "roadwarden-evidence-package");
    assert_eq!(manifest.version, 2);
    assert_eq!(manifest.violation, v.id);
    assert!((Utc::now() - manifest.created_at).num_seconds().abs() < 3600);
    // Every file: listed with its hash and size, and byte for byte the one on disk.
    assert_eq!(manifest.files.len(), v.files.len());
    let mut names: Vec<&str> = files.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "evidence/clip.mp4",
            "evidence/key-photo.jpg",
            "evidence/key-raw.jpg",
            "manifest.json",
            "manifest.sig",
            "violation.json"
        ]
    );
    for (path, disk) in &v.files {
        let mf = manifest
            .files
            .iter()
            .find(|f| &f.evidence_path == path)
            .unwrap_or_else(|| panic!("{path} not in the manifest"));
        let packed = &files[&mf.name];
        assert_eq!(packed, disk, "{}", mf.name);
        assert_eq!(mf.sha256, sha(packed));
        assert_eq!(mf.size, packed.len() as u64);
    }
    // violation.json: its hash in the manifest, the stored record, the chain hash recomputable.
    assert_eq!(manifest.violation_sha256, sha(&files["violation.json"]));
    let rec: PackagedViolation =
        serde_json::from_slice(&files["violation.json"]).expect("violation.json");
    let stored = h.store.get(&v.id).await.expect("get").expect("row");
    assert_eq!(rec.fields, stored.fields);
    assert_eq!(rec.record_hash, stored.record_hash);
    assert_eq!(record_hash(&rec.fields), rec.record_hash);
    assert_eq!(rec.status, Status::Confirmed);
    assert_eq!(rec.reviews.len(), 1);
    assert_eq!(rec.reviews[0].reviewer, HOSTILE_REVIEWER);
    assert_eq!(rec.plate.as_deref(), Some("AB12CD"));
    assert_eq!(manifest.plate.as_deref(), Some("AB12CD"));
    // Signed with this installation's key, and its review-log entry proves the decision.
    let (key, _) = roadwarden_evidence::InstallationKey::load_or_create(&h.data).expect("key");
    let report = roadwarden_evidence::check_package(Cursor::new(&bytes), Some(&key.public()))
        .expect("a package");
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(manifest.review_log.len(), 1);
    assert_eq!(manifest.review_log[0].fields.actor, HOSTILE_REVIEWER);
    // The export is audited with the package's hash.
    let log = h.store.audit_log(Some(&v.id)).await.expect("audit");
    let entry = log
        .iter()
        .find(|e| e.1 == "export_package")
        .expect("export audited");
    assert_eq!(entry.0, "otto");
    assert!(
        entry.4.as_deref().is_some_and(|a| a.contains(&package_sha)),
        "{entry:?}"
    );

    // Every role may download a package; nobody anonymous.
    for role in ["reviewer", "admin"] {
        let c = h.login(role).await;
        let (st, ct, _) = h
            .get(
                Some(&c),
                &format!("/api/violations/{}/package.zip", h.seeded[6].id),
            )
            .await;
        assert_eq!(
            (st, ct.as_str()),
            (StatusCode::OK, "application/zip"),
            "{role}"
        );
    }
    let path = format!("/api/violations/{}/package.zip", v.id);
    assert_eq!(h.get(None, &path).await.0, StatusCode::UNAUTHORIZED);
    // Not a UUID, an unknown one, a path in place of the id: refused, never a file.
    for (p, want) in [
        (
            "/api/violations/not-a-uuid/package.zip",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/violations/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd/package.zip",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/violations/0190f0e0-0000-7000-8000-000000000000/package.zip",
            StatusCode::NOT_FOUND,
        ),
    ] {
        assert_eq!(h.get(Some(&cookie), p).await.0, want, "{p}");
    }
    // An evidence file altered on disk: refused with 409 naming it, not packaged.
    let (rel, _) = &h.seeded[2].files[0];
    std::fs::write(h.data.resolve(rel).expect("inside"), b"edited").expect("edit");
    let (st, _, body) = h
        .get(
            Some(&cookie),
            &format!("/api/violations/{}/package.zip", h.seeded[2].id),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
    let e: Value = serde_json::from_slice(&body).expect("json error");
    assert_eq!(e["error"], "evidence_broken");
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains(rel.as_str())),
        "{e}"
    );
}
dual_test!(package_zip_holds_the_record_and_its_files);
