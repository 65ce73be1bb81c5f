//! The database: one [`Store`] over SQLite or PostgreSQL. Every statement is
//! written once, in SQL both dialects accept (`$n` parameters, `RETURNING`,
//! row values, `ON CONFLICT`), and compiled for each driver by [`on_pool!`] (statements that write) or [`on_read!`] (statements that only read).

use std::borrow::Cow;
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Row};

use crate::model::*;
use crate::{DataDir, NodeId, Spool, StoreError, redact_url};

/// Appends one audit-log row through `$exec` (a pool, a connection or a transaction).
macro_rules! audit {
    ($exec:expr, $at:expr, $actor:expr, $action:expr, $violation:expr, $before:expr, $after:expr $(,)?) => {
        sqlx::query(
            "INSERT INTO audit_log (at_us, actor, action, violation_id, before_state, after_state) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind($at)
        .bind($actor)
        .bind($action)
        .bind($violation)
        .bind($before)
        .bind($after)
        .execute($exec)
        .await
        .map(|_| ())
    };
}

/// The connections of a store. SQLite allows one writer at a time, and a deferred transaction that reads
/// before it writes cannot wait for the write lock (it fails at once with "database is locked"), so every
/// statement that writes goes through `write`, a pool of ONE connection: writers queue for it in the
/// process instead of racing for the file's lock. Reads run beside it on `read` (read-only connections,
/// so a write sent there by mistake fails in every test, not only under load); WAL lets them read while
/// the writer writes. PostgreSQL takes concurrent writers itself: one pool.
#[derive(Clone)]
pub(crate) enum Pool {
    Sqlite { write: SqlitePool, read: SqlitePool },
    Postgres(PgPool),
}

/// Runs `$body` with `$p` bound to the concrete pool, once per dialect; on SQLite, the one writer
/// connection. The default for every statement: anything that writes (or may) must run here.
macro_rules! on_pool {
    ($pool:expr, $p:ident => $body:expr) => {
        match $pool {
            Pool::Sqlite { write: $p, .. } => $body,
            Pool::Postgres($p) => $body,
        }
    };
}

/// [`on_pool!`] for statements that only read: on SQLite, the read-only connections beside the writer.
macro_rules! on_read {
    ($pool:expr, $p:ident => $body:expr) => {
        match $pool {
            Pool::Sqlite { read: $p, .. } => $body,
            Pool::Postgres($p) => $body,
        }
    };
}

/// The review-queue page of `rows` selected as (id, camera, kind, track_id, occurred_at_us, confidence,
/// status, plate), `LIMIT limit`: a cursor after the last item when the page is full. A macro because each
/// dialect's rows are their own type (see [`on_pool`]).
macro_rules! queue_page {
    ($rows:expr, $limit:expr) => {{
        let mut items = Vec::with_capacity($rows.len());
        for r in &$rows {
            items.push(QueueItem {
                id: r.try_get(0)?,
                camera: r.try_get(1)?,
                kind: r.try_get(2)?,
                track_id: r.try_get(3)?,
                occurred_at_us: r.try_get(4)?,
                confidence: r.try_get(5)?,
                status: Status::parse(&r.try_get::<String, _>(6)?)?,
                plate: r.try_get(7)?,
            });
        }
        let next = if items.len() as i64 == $limit {
            items.last().map(|i| QueueCursor {
                occurred_at_us: i.occurred_at_us,
                id: i.id.clone(),
            })
        } else {
            None
        };
        Ok(QueuePage { items, next })
    }};
}

#[derive(Debug)]
struct Migrations(&'static [(i64, &'static str, &'static str)]);

impl<'s> MigrationSource<'s> for Migrations {
    #[allow(clippy::type_complexity)]
    fn resolve(
        self,
    ) -> Pin<
        Box<
            dyn Future<Output = Result<Vec<Migration>, Box<dyn std::error::Error + Send + Sync>>>
                + Send
                + 's,
        >,
    > {
        Box::pin(async move {
            Ok(self
                .0
                .iter()
                .map(|(v, d, sql)| {
                    Migration::new(
                        *v,
                        Cow::Borrowed(*d),
                        MigrationType::Simple,
                        Cow::Borrowed(*sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "accounts",
        include_str!("../migrations/sqlite/0002_accounts.sql"),
    ),
    (
        3,
        "account_disable",
        include_str!("../migrations/sqlite/0003_account_disable.sql"),
    ),
    (
        4,
        "review log",
        include_str!("../migrations/sqlite/0004_review_log.sql"),
    ),
    (
        5,
        "team",
        include_str!("../migrations/sqlite/0005_team.sql"),
    ),
    (
        6,
        "nodes",
        include_str!("../migrations/sqlite/0006_nodes.sql"),
    ),
    (
        8,
        "reviewer plate",
        include_str!("../migrations/sqlite/0008_reviewer_plate.sql"),
    ),
];
const PG_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "accounts",
        include_str!("../migrations/postgres/0002_accounts.sql"),
    ),
    (
        3,
        "account_disable",
        include_str!("../migrations/postgres/0003_account_disable.sql"),
    ),
    (
        4,
        "review log",
        include_str!("../migrations/postgres/0004_review_log.sql"),
    ),
    (
        5,
        "team",
        include_str!("../migrations/postgres/0005_team.sql"),
    ),
    (
        6,
        "nodes",
        include_str!("../migrations/postgres/0006_nodes.sql"),
    ),
    (
        8,
        "reviewer plate",
        include_str!("../migrations/postgres/0008_reviewer_plate.sql"),
    ),
];

/// One camera's chain head as the cameras table keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraChain {
    pub camera: String,
    /// The last record's seq (0: none yet).
    pub seq: i64,
    /// The last record's hash.
    pub head: String,
}

/// What a spool replay did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    pub inserted: usize,
    pub already_present: usize,
}

/// What a retention purge did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// Violations turned into tombstones.
    pub tombstoned: Vec<String>,
    /// Evidence files deleted (relative paths).
    pub files_deleted: Vec<String>,
}

/// The violation store.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: Pool,
    url: String,
    /// The node whose data folder this store's writer records evidence into ([`Store::with_node`]).
    node: Option<NodeId>,
}

const VIOLATION_COLS: &str = "id, camera_id, seq, kind, track_id, occurred_at_us, confidence, thresholds, detail, \
                              status, prev_hash, record_hash, tombstoned_at_us, plate, node";

fn now_us() -> i64 {
    crate::to_micros(chrono::Utc::now())
}

impl Store {
    /// Opens `url` (`postgres://...`, `sqlite:...`, or a plain path to an
    /// SQLite file, created if missing) and brings its schema up to date.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        let shown = redact_url(url);
        let connect_err = |source: sqlx::Error| StoreError::Connect {
            url: shown.clone(),
            source,
        };
        let pool = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = PgConnectOptions::from_str(url)
                .map_err(connect_err)?
                .log_statements(tracing::log::LevelFilter::Trace);
            // One plain attempt first: the pool would retry a refused connection until
            // its acquire timeout, and a recorder facing an outage must fail fast and spool.
            let probe = tokio::time::timeout(Duration::from_secs(3), opts.connect())
                .await
                .map_err(|_| StoreError::ConnectTimeout {
                    url: shown.clone(),
                    after: Duration::from_secs(3),
                })?
                .map_err(connect_err)?;
            let _ = sqlx::Connection::close(probe).await;
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(3))
                .connect_lazy_with(opts);
            Pool::Postgres(pool)
        } else {
            let opts = if url.starts_with("sqlite:") {
                SqliteConnectOptions::from_str(url).map_err(connect_err)?
            } else {
                SqliteConnectOptions::new().filename(url)
            };
            let opts = opts
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10))
                .log_statements(tracing::log::LevelFilter::Trace);
            // The writer first: it creates the file and turns WAL on, which the readers need.
            let write = SqlitePoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(opts.clone())
                .await
                .map_err(connect_err)?;
            let read = SqlitePoolOptions::new()
                .max_connections(4)
                .acquire_timeout(Duration::from_secs(10))
                .connect_lazy_with(opts.read_only(true));
            Pool::Sqlite { write, read }
        };
        let store = Store {
            pool,
            url: shown,
            node: None,
        };
        store.migrate().await?;
        Ok(store)
    }

    /// The SQLite file in `data`.
    pub async fn open_data_dir(data: &DataDir) -> Result<Store, StoreError> {
        data.create()?;
        Store::connect(&data.sqlite_path().to_string_lossy()).await
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let m = StoreError::Migrate;
        match &self.pool {
            Pool::Sqlite { write: p, .. } => Migrator::new(Migrations(SQLITE_MIGRATIONS))
                .await
                .map_err(m)?
                .run(p)
                .await
                .map_err(m),
            Pool::Postgres(p) => Migrator::new(Migrations(PG_MIGRATIONS))
                .await
                .map_err(m)?
                .run(p)
                .await
                .map_err(m),
        }
    }

    /// The same store, recording `node` as the holder of the evidence of every violation it inserts
    /// (the `node` column) and reconciling only that node's files.
    pub fn with_node(mut self, node: Option<NodeId>) -> Store {
        self.node = node;
        self
    }

    /// The node this store records as the evidence holder, if named.
    pub fn node(&self) -> Option<&NodeId> {
        self.node.as_ref()
    }

    /// `sqlite` or `postgres`.
    pub fn dialect(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite { .. } => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// The URL, password redacted.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite { write, read } => {
                read.close().await;
                write.close().await;
            }
            Pool::Postgres(p) => p.close().await,
        }
    }

    /// Runs one raw SQL statement (maintenance and tests); returns rows affected.
    pub async fn execute_sql(&self, sql: &str) -> Result<u64, StoreError> {
        Ok(on_pool!(&self.pool, p => sqlx::query(sql).execute(p).await?.rows_affected()))
    }

    /// Inserts a violation and its evidence rows as the next record of its
    /// camera's chain, in one transaction. Idempotent on the violation id: a
    /// second insert of the same id writes nothing.
    pub async fn insert(
        &self,
        new: &NewViolation,
        hasher: ChainHasher,
    ) -> Result<InsertOutcome, StoreError> {
        // Validate (and serialize) before touching the database.
        let probe = new.chain_fields(0, GENESIS_HASH)?;
        let now = now_us();
        on_pool!(&self.pool, p => {
            let mut tx = p.begin().await?;
            // Take the camera's chain lock: a row lock on PostgreSQL, the write lock on SQLite.
            sqlx::query(
                "INSERT INTO cameras (id, name, created_at_us, chain_seq, chain_head) VALUES ($1, $1, $2, 0, $3) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(&probe.camera)
            .bind(now)
            .bind(GENESIS_HASH)
            .execute(&mut *tx)
            .await?;
            let head = sqlx::query("UPDATE cameras SET chain_seq = chain_seq WHERE id = $1 RETURNING chain_seq, chain_head")
                .bind(&probe.camera)
                .fetch_one(&mut *tx)
                .await?;
            let (seq, prev): (i64, String) = (head.try_get(0)?, head.try_get(1)?);
            let exists = sqlx::query("SELECT 1 FROM violations WHERE id = $1")
                .bind(&probe.id)
                .fetch_optional(&mut *tx)
                .await?;
            if exists.is_some() {
                tx.rollback().await?;
                return Ok(InsertOutcome::AlreadyPresent);
            }
            let mut f = probe;
            f.seq = seq + 1;
            f.prev_hash = prev;
            let hash = hasher(&f);
            sqlx::query(
                "INSERT INTO violations (id, camera_id, seq, kind, track_id, occurred_at_us, confidence, thresholds, \
                 detail, status, prev_hash, record_hash, recorded_at_us, node) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', $10, $11, $12, $13)",
            )
            .bind(&f.id)
            .bind(&f.camera)
            .bind(f.seq)
            .bind(&f.kind)
            .bind(f.track_id)
            .bind(f.occurred_at_us)
            .bind(f.confidence)
            .bind(&f.thresholds)
            .bind(&f.detail)
            .bind(&f.prev_hash)
            .bind(&hash)
            .bind(now)
            .bind(self.node.as_ref().map(NodeId::as_str))
            .execute(&mut *tx)
            .await?;
            for e in &f.evidence {
                let size = i64::try_from(e.size).map_err(|_| StoreError::Invalid(format!("{}: size too large", e.path)))?;
                sqlx::query(
                    "INSERT INTO evidence (violation_id, kind, role, path, sha256, size_bytes) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&f.id)
                .bind(e.kind.as_str())
                .bind(e.role.as_deref())
                .bind(&e.path)
                .bind(&e.sha256)
                .bind(size)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query("UPDATE cameras SET chain_seq = $2, chain_head = $3 WHERE id = $1")
                .bind(&f.camera)
                .bind(f.seq)
                .bind(&hash)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(InsertOutcome::Inserted { seq: f.seq, record_hash: hash })
        })
    }

    /// Whether a violation with this id is stored.
    pub async fn contains(&self, id: &str) -> Result<bool, StoreError> {
        Ok(
            on_read!(&self.pool, p => sqlx::query("SELECT 1 FROM violations WHERE id = $1").bind(id).fetch_optional(p).await?.is_some()),
        )
    }

    /// Replays the spool in order into the store, then empties it. On any
    /// error the spool is left whole (a later replay skips what is already in).
    pub async fn replay(
        &self,
        spool: &mut Spool,
        hasher: ChainHasher,
    ) -> Result<ReplayReport, StoreError> {
        let mut report = ReplayReport::default();
        for rec in spool.records()? {
            match self.insert(&rec, hasher).await? {
                InsertOutcome::Inserted { .. } => report.inserted += 1,
                InsertOutcome::AlreadyPresent => report.already_present += 1,
            }
        }
        spool.clear()?;
        Ok(report)
    }

    /// Every camera's chain head.
    pub async fn cameras(&self) -> Result<Vec<CameraChain>, StoreError> {
        on_read!(&self.pool, p => {
            let rows = sqlx::query("SELECT id, chain_seq, chain_head FROM cameras ORDER BY id").fetch_all(p).await?;
            rows.iter()
                .map(|r| Ok(CameraChain { camera: r.try_get(0)?, seq: r.try_get(1)?, head: r.try_get(2)? }))
                .collect()
        })
    }

    /// Up to `limit` records of `camera`'s chain with seq > `after_seq`, in seq order.
    pub async fn chain_page(
        &self,
        camera: &str,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        on_read!(&self.pool, p => {
            let rows = sqlx::query(&format!(
                "SELECT {VIOLATION_COLS} FROM violations WHERE camera_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
            ))
            .bind(camera)
            .bind(after_seq)
            .bind(limit)
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                out.push(record_from_row(r)?);
            }
            if let (Some(first), Some(last)) = (out.first(), out.last()) {
                let ev = sqlx::query(
                    "SELECT e.violation_id, e.kind, e.role, e.path, e.sha256, e.size_bytes, e.purged_at_us \
                     FROM evidence e JOIN violations v ON v.id = e.violation_id \
                     WHERE v.camera_id = $1 AND v.seq >= $2 AND v.seq <= $3 ORDER BY e.path",
                )
                .bind(camera)
                .bind(first.fields.seq)
                .bind(last.fields.seq)
                .fetch_all(p)
                .await?;
                attach_evidence(&mut out, ev.iter().map(evidence_from_row).collect::<Result<Vec<_>, _>>()?);
            }
            Ok(out)
        })
    }

    /// One violation by id.
    pub async fn get(&self, id: &str) -> Result<Option<StoredRecord>, StoreError> {
        on_read!(&self.pool, p => {
            let Some(r) = sqlx::query(&format!("SELECT {VIOLATION_COLS} FROM violations WHERE id = $1"))
                .bind(id)
                .fetch_optional(p)
                .await?
            else {
                return Ok(None);
            };
            let mut recs = vec![record_from_row(&r)?];
            let ev = sqlx::query(
                "SELECT violation_id, kind, role, path, sha256, size_bytes, purged_at_us FROM evidence \
                 WHERE violation_id = $1 ORDER BY path",
            )
            .bind(id)
            .fetch_all(p)
            .await?;
            attach_evidence(&mut recs, ev.iter().map(evidence_from_row).collect::<Result<Vec<_>, _>>()?);
            Ok(recs.pop())
        })
    }

    /// Number of violation rows (tombstones included).
    pub async fn count_violations(&self) -> Result<i64, StoreError> {
        Ok(
            on_read!(&self.pool, p => sqlx::query("SELECT COUNT(*) FROM violations").fetch_one(p).await?.try_get(0)?),
        )
    }

    /// Every evidence path the store references, with whether it was purged; with a node
    /// ([`Store::with_node`]), only the paths of violations whose files that node holds (or no node
    /// named): another node's files are in its own data folder.
    pub async fn evidence_paths(&self) -> Result<Vec<(String, bool)>, StoreError> {
        let node = self.node.as_ref().map(NodeId::as_str);
        on_read!(&self.pool, p => {
            let rows = sqlx::query(
                "SELECT e.path, e.purged_at_us FROM evidence e JOIN violations v ON v.id = e.violation_id \
                 WHERE $1 IS NULL OR v.node IS NULL OR v.node = $1 ORDER BY e.path",
            )
            .bind(node)
            .fetch_all(p)
            .await?;
            rows.iter()
                .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<Option<i64>, _>(1)?.is_some())))
                .collect()
        })
    }

    /// One page of the review queue, oldest first, by keyset on (occurred_at, id).
    pub async fn review_queue(
        &self,
        filter: &QueueFilter,
        after: Option<&QueueCursor>,
        limit: u32,
    ) -> Result<QueuePage, StoreError> {
        let limit = i64::from(limit.clamp(1, 1000));
        let mut sql = String::from(
            "SELECT id, camera_id, kind, track_id, occurred_at_us, confidence, status, plate FROM violations WHERE status = $1",
        );
        let mut n = 1;
        if filter.camera.is_some() {
            n += 1;
            sql.push_str(&format!(" AND camera_id = ${n}"));
        }
        if after.is_some() {
            sql.push_str(&format!(
                " AND (occurred_at_us, id) > (${}, ${})",
                n + 1,
                n + 2
            ));
            n += 2;
        }
        sql.push_str(&format!(" ORDER BY occurred_at_us, id LIMIT ${}", n + 1));
        on_read!(&self.pool, p => {
            let mut q = sqlx::query(&sql).bind(filter.status.as_str());
            if let Some(c) = &filter.camera {
                q = q.bind(c);
            }
            if let Some(a) = after {
                q = q.bind(a.occurred_at_us).bind(&a.id);
            }
            let rows = q.bind(limit).fetch_all(p).await?;
            queue_page!(rows, limit)
        })
    }

    /// Creates the user if missing; returns its id.
    pub async fn ensure_user(&self, name: &str, role: &str) -> Result<i64, StoreError> {
        on_pool!(&self.pool, p => {
            sqlx::query("INSERT INTO users (name, role, created_at_us) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
                .bind(name)
                .bind(role)
                .bind(now_us())
                .execute(p)
                .await?;
            Ok(sqlx::query("SELECT id FROM users WHERE name = $1").bind(name).fetch_one(p).await?.try_get(0)?)
        })
    }

    /// Records a reviewer's decision: a review row, the new status, and an
    /// audit entry with the status before and after.
    pub async fn review(
        &self,
        id: &str,
        reviewer: &str,
        decision: Decision,
        reason: &str,
    ) -> Result<(), StoreError> {
        let user_id = self.ensure_user(reviewer, "reviewer").await?;
        let now = now_us();
        let new_status = decision.status().as_str();
        on_pool!(&self.pool, p => {
            let mut tx = p.begin().await?;
            let before: String = sqlx::query("UPDATE violations SET status = status WHERE id = $1 RETURNING status")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| StoreError::NotFound(id.to_owned()))?
                .try_get(0)?;
            sqlx::query("INSERT INTO reviews (violation_id, user_id, decision, reason, reviewed_at_us) VALUES ($1, $2, $3, $4, $5)")
                .bind(id)
                .bind(user_id)
                .bind(new_status)
                .bind(reason)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE violations SET status = $2 WHERE id = $1")
                .bind(id)
                .bind(new_status)
                .execute(&mut *tx)
                .await?;
            review_log_append!(tx, id, reviewer, "review", decision.status(), reason, "", now);
            audit!(&mut *tx, now, reviewer, "review", Some(id),
                Some(serde_json::json!({ "status": before }).to_string()),
                Some(serde_json::json!({ "status": new_status, "reason": reason }).to_string()))?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Appends one audit entry.
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        violation: Option<&str>,
        before: Option<String>,
        after: Option<String>,
    ) -> Result<(), StoreError> {
        on_pool!(&self.pool, p => {
            Ok(audit!(p, now_us(), actor, action, violation, before, after)?)
        })
    }

    /// The audit log, oldest first: (actor, action, violation, before, after).
    #[allow(clippy::type_complexity)]
    pub async fn audit_log(
        &self,
        violation: Option<&str>,
    ) -> Result<
        Vec<(
            String,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
        )>,
        StoreError,
    > {
        let page = self.audit_page(violation, None, u32::MAX).await?;
        Ok(page
            .into_iter()
            .rev()
            .map(|e| (e.actor, e.action, e.violation, e.before, e.after))
            .collect())
    }

    /// A page of the audit log, newest first: at most `limit` entries (of `violation` only, when
    /// given) older than entry `before_id` (from the newest, when `None`).
    pub async fn audit_page(
        &self,
        violation: Option<&str>,
        before_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        on_read!(&self.pool, p => {
            let rows = sqlx::query(
                "SELECT id, at_us, actor, action, violation_id, before_state, after_state FROM audit_log \
                 WHERE ($1 IS NULL OR violation_id = $1) AND ($2 IS NULL OR id < $2) \
                 ORDER BY id DESC LIMIT $3",
            )
            .bind(violation)
            .bind(before_id)
            .bind(i64::from(limit))
            .fetch_all(p)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(AuditEntry {
                        id: r.try_get(0)?,
                        at_us: r.try_get(1)?,
                        actor: r.try_get(2)?,
                        action: r.try_get(3)?,
                        violation: r.try_get(4)?,
                        before: r.try_get(5)?,
                        after: r.try_get(6)?,
                    })
                })
                .collect()
        })
    }

    /// Retention: every violation with `status` that occurred before `cutoff`
    /// becomes a tombstone (its rows stay, so the chain still verifies), its
    /// evidence files are deleted, and each purge is in the audit log with
    /// the evidence before and the tombstone after.
    pub async fn purge(
        &self,
        data: &DataDir,
        status: Status,
        cutoff: chrono::DateTime<chrono::Utc>,
        actor: &str,
    ) -> Result<PurgeReport, StoreError> {
        let cutoff = crate::to_micros(cutoff);
        let mut report = PurgeReport::default();
        loop {
            let ids: Vec<String> = on_read!(&self.pool, p => {
                let rows = sqlx::query(
                    "SELECT id FROM violations WHERE status = $1 AND occurred_at_us < $2 AND tombstoned_at_us IS NULL \
                     ORDER BY occurred_at_us, id LIMIT 500",
                )
                .bind(status.as_str())
                .bind(cutoff)
                .fetch_all(p)
                .await?;
                rows.iter().map(|r| r.try_get(0)).collect::<Result<Vec<String>, _>>()?
            });
            if ids.is_empty() {
                break;
            }
            for id in ids {
                let now = now_us();
                let paths: Vec<String> = on_pool!(&self.pool, p => {
                    let mut tx = p.begin().await?;
                    let ev = sqlx::query(
                        "SELECT violation_id, kind, role, path, sha256, size_bytes, purged_at_us FROM evidence \
                         WHERE violation_id = $1 ORDER BY path",
                    )
                    .bind(&id)
                    .fetch_all(&mut *tx)
                    .await?;
                    let ev = ev.iter().map(evidence_from_row).collect::<Result<Vec<_>, _>>()?;
                    let before = serde_json::json!({
                        "status": status.as_str(),
                        "evidence": ev.iter().map(|(_, e)| &e.item).collect::<Vec<_>>(),
                    });
                    sqlx::query("UPDATE evidence SET purged_at_us = $2 WHERE violation_id = $1 AND purged_at_us IS NULL")
                        .bind(&id).bind(now).execute(&mut *tx).await?;
                    sqlx::query("UPDATE violations SET tombstoned_at_us = $2 WHERE id = $1")
                        .bind(&id).bind(now).execute(&mut *tx).await?;
                    audit!(&mut *tx, now, actor, "purge", Some(id.as_str()), Some(before.to_string()),
                        Some(serde_json::json!({ "tombstoned_at_us": now }).to_string()))?;
                    tx.commit().await?;
                    ev.into_iter().map(|(_, e)| e.item.path).collect()
                });
                // The rows say purged before any file goes: a crash here leaves
                // files that the next reconcile deletes as the audit says.
                for rel in paths {
                    if data.delete_purged(&rel)? {
                        report.files_deleted.push(rel);
                    }
                }
                report.tombstoned.push(id);
            }
        }
        Ok(report)
    }

    /// Startup reconcile: files under the evidence folder that no row (and no
    /// spooled record) references are moved to the quarantine folder and
    /// reported, each with an audit entry; files of audited purges that a
    /// crash left behind are deleted; referenced files that are missing are
    /// reported.
    pub async fn reconcile(
        &self,
        data: &DataDir,
        spool: &Spool,
    ) -> Result<crate::ReconcileReport, StoreError> {
        let mut referenced = HashSet::new();
        let mut purged = HashSet::new();
        for (path, is_purged) in self.evidence_paths().await? {
            if is_purged {
                purged.insert(path);
            } else {
                referenced.insert(path);
            }
        }
        for rec in spool.records()? {
            referenced.extend(rec.evidence.into_iter().map(|e| e.path));
        }
        let report = data.reconcile(&referenced, &purged)?;
        for (from, to) in &report.quarantined {
            self.audit(
                "reconcile",
                "quarantine",
                None,
                Some(serde_json::json!({ "path": from }).to_string()),
                Some(serde_json::json!({ "path": to }).to_string()),
            )
            .await?;
        }
        Ok(report)
    }
}

fn record_from_row<R>(r: &R) -> Result<StoredRecord, StoreError>
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> f64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<i64>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let fields = ChainFields {
        id: r.try_get(0)?,
        camera: r.try_get(1)?,
        seq: r.try_get(2)?,
        kind: r.try_get(3)?,
        track_id: r.try_get(4)?,
        occurred_at_us: r.try_get(5)?,
        confidence: r.try_get(6)?,
        thresholds: r.try_get(7)?,
        detail: r.try_get(8)?,
        prev_hash: r.try_get(10)?,
        evidence: Vec::new(),
    };
    Ok(StoredRecord {
        fields,
        status: Status::parse(&r.try_get::<String, _>(9)?)?,
        record_hash: r.try_get(11)?,
        tombstoned: r.try_get::<Option<i64>, _>(12)?.is_some(),
        plate: r.try_get(13)?,
        node: r.try_get(14)?,
        evidence: Vec::new(),
    })
}

fn evidence_from_row<R>(r: &R) -> Result<(String, StoredEvidence), StoreError>
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<i64>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let size: i64 = r.try_get(5)?;
    Ok((
        r.try_get(0)?,
        StoredEvidence {
            item: EvidenceItem {
                kind: EvidenceKind::parse(&r.try_get::<String, _>(1)?)?,
                role: r.try_get(2)?,
                path: r.try_get(3)?,
                sha256: r.try_get(4)?,
                size: u64::try_from(size)
                    .map_err(|_| StoreError::Invalid(format!("negative size {size}")))?,
            },
            purged: r.try_get::<Option<i64>, _>(6)?.is_some(),
        },
    ))
}

fn attach_evidence(records: &mut [StoredRecord], evidence: Vec<(String, StoredEvidence)>) {
    let index: std::collections::HashMap<String, usize> = records
        .iter()
        .enumerate()
        .map(|(i, r)| (r.fields.id.clone(), i))
        .collect();
    for (vid, e) in evidence {
        if let Some(&i) = index.get(&vid) {
            records[i].fields.evidence.push(e.item.clone());
            records[i].evidence.push(e);
        }
    }
    // Byte order, whatever the database's collation.
    for r in records {
        r.fields.evidence.sort_by(|a, b| a.path.cmp(&b.path));
        r.evidence.sort_by(|a, b| a.item.path.cmp(&b.item.path));
    }
}
