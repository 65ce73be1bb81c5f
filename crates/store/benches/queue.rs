//! The review-queue bench: loads 10 million violation rows into a PostgreSQL
//! database of its own (created and dropped here), then times the queue's
//! first page and a deep page (keyset) through `Store::review_queue`.
//!
//! `cargo bench -p roadwarden-store --bench queue` (not part of `cargo test`).
//! ROADWARDEN_BENCH_PG: admin URL (default postgres://postgres@127.0.0.1:5432/postgres);
//! ROADWARDEN_BENCH_ROWS: row count (default 10_000_000).

use std::time::{Duration, Instant};

use roadwarden_store::{QueueCursor, QueueFilter, Status, Store, pgadmin};

const CAMERAS: i64 = 50;
const BASE_US: i64 = 1_700_000_000_000_000;
const STEP_US: i64 = 3_155; // 10M rows over about a year

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

async fn time_query(
    store: &Store,
    filter: &QueueFilter,
    after: Option<&QueueCursor>,
    n: usize,
) -> (f64, f64, usize) {
    let mut times = Vec::with_capacity(n);
    let mut len = 0;
    for _ in 0..n {
        let t = Instant::now();
        let page = store
            .review_queue(filter, after, 50)
            .await
            .expect("queue query");
        times.push(t.elapsed());
        len = page.items.len();
    }
    times.sort();
    (pct(&times, 0.5), pct(&times, 0.99), len)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let admin = std::env::var("ROADWARDEN_BENCH_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let rows: i64 = std::env::var("ROADWARDEN_BENCH_ROWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000_000);
    let name = format!("rw_bench_{}", std::process::id());
    let url = pgadmin::create_database(&admin, &name)
        .await
        .expect("create bench database");
    let result = run(&url, rows).await;
    pgadmin::drop_database(&admin, &name)
        .await
        .expect("drop bench database");
    result.expect("bench");
}

async fn run(url: &str, rows: i64) -> Result<(), roadwarden_store::StoreError> {
    let store = Store::connect(url).await?;
    store
        .execute_sql(&format!(
            "INSERT INTO cameras (id, name, created_at_us, chain_seq, chain_head) \
             SELECT 'cam-' || c, 'cam-' || c, 0, 0, repeat('0', 64) FROM generate_series(0, {}) c",
            CAMERAS - 1
        ))
        .await?;
    // Load without the queue indexes, then build them (counted in the load time).
    store
        .execute_sql("DROP INDEX violations_queue_camera")
        .await?;
    store.execute_sql("DROP INDEX violations_queue").await?;
    let t = Instant::now();
    let chunk = 1_000_000i64;
    let mut start = 0i64;
    while start < rows {
        let end = (start + chunk).min(rows) - 1;
        store
            .execute_sql(&format!(
                "INSERT INTO violations (id, camera_id, seq, kind, track_id, occurred_at_us, confidence, thresholds, \
                 detail, status, prev_hash, record_hash, recorded_at_us) \
                 SELECT md5(i::text)::uuid::text, 'cam-' || (i % {CAMERAS}), i / {CAMERAS} + 1, \
                        CASE WHEN i % 3 = 0 THEN 'red_light' ELSE 'no_helmet' END, i % 100000, \
                        {BASE_US} + i * {STEP_US}, 0.5 + (i % 50) / 100.0, '{{\"helmet.min_votes\":3.0}}', \
                        '{{\"frames\":[],\"signal\":[]}}', \
                        CASE WHEN i % 10 = 0 THEN 'pending' WHEN i % 10 < 4 THEN 'rejected' ELSE 'confirmed' END, \
                        md5((i - 1)::text) || md5((i - 1)::text), md5(i::text) || md5(i::text), {BASE_US} + i * {STEP_US} \
                 FROM generate_series({start}::bigint, {end}::bigint) i"
            ))
            .await?;
        start = end + 1;
        eprintln!("  loaded {start} rows ({:.1} s)", t.elapsed().as_secs_f64());
    }
    let loaded = t.elapsed();
    let ti = Instant::now();
    store
        .execute_sql("CREATE INDEX violations_queue_camera ON violations (status, camera_id, occurred_at_us, id)")
        .await?;
    store
        .execute_sql("CREATE INDEX violations_queue ON violations (status, occurred_at_us, id)")
        .await?;
    store.execute_sql("ANALYZE violations").await?;
    let indexed = ti.elapsed();
    println!(
        "rows: {rows}; load (INSERT .. SELECT in 1M-row batches, FK checked): {:.1} s; queue indexes + ANALYZE: {:.1} s; total {:.1} s",
        loaded.as_secs_f64(),
        indexed.as_secs_f64(),
        (loaded + indexed).as_secs_f64()
    );

    let all = QueueFilter {
        status: Status::Pending,
        camera: None,
    };
    let cam = QueueFilter {
        status: Status::Pending,
        camera: Some("cam-20".into()),
    };
    // Deep pages: the cursor of the row 90% of the way through the pending queue.
    let deep_i = (rows * 9 / 10) / 10 * 10; // a pending row (i % 10 == 0)
    let deep = QueueCursor {
        occurred_at_us: BASE_US + deep_i * STEP_US,
        id: String::new(),
    };
    let deep_cam_i = ((rows * 9 / 10) / 50) * 50 + 20; // a cam-20 row
    let deep_cam = QueueCursor {
        occurred_at_us: BASE_US + deep_cam_i * STEP_US,
        id: String::new(),
    };
    for _ in 0..20 {
        store.review_queue(&all, None, 50).await?; // warm up
    }
    let n = 500;
    for (label, filter, after) in [
        ("pending, all cameras, first page", &all, None),
        ("pending, all cameras, deep page (90%)", &all, Some(&deep)),
        ("pending, one camera, first page", &cam, None),
        (
            "pending, one camera, deep page (90%)",
            &cam,
            Some(&deep_cam),
        ),
    ] {
        let (p50, p99, len) = time_query(&store, filter, after, n).await;
        println!(
            "{label}: {n} queries of 50 rows ({len} returned): p50 {p50:.2} ms, p99 {p99:.2} ms"
        );
    }
    store.close().await;
    Ok(())
}
