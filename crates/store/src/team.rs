//! Team work over the review queue: a reviewer's claim on a pending case (one atomic
//! `UPDATE ... WHERE` the claim is free, the caller's own, or expired, on both dialects), the next
//! free case, the undo of a decision inside a window (a review-log entry of its own, never a
//! deletion), the history of decisions (keyset paged, newest first), each user's time zone, and
//! the statistics of the queue (per camera and day, per reviewer, rejection reasons).

use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::db::Pool;
use crate::listing::bind_filter;
use crate::model::{QueueItem, Status};
use crate::{Store, StoreError, ViolationFilter};

fn now_us() -> i64 {
    crate::to_micros(chrono::Utc::now())
}

fn micros(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// What a claim did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The caller holds the case until this time (µs): newly, or renewed.
    Claimed { until_us: i64 },
    /// Another reviewer holds it until this time.
    Held { by: String, until_us: i64 },
    /// The case is decided: nothing to claim.
    NotPending { status: Status },
}

/// An unexpired claim on a pending case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub violation_id: String,
    pub by: String,
    pub until_us: i64,
}

/// What an undo did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UndoOutcome {
    /// The case is pending again (and claimed by the caller); `before` was the decision undone.
    Undone { before: Status, reviewed_at_us: i64 },
    /// The case is pending, or its last decision was undone already.
    NothingToUndo,
    /// The decision in force is another reviewer's.
    NotYours { by: String },
    /// The window closed: the decision was made at `reviewed_at_us`.
    TooLate { reviewed_at_us: i64 },
}

/// One decision of the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryRow {
    pub review_id: i64,
    pub violation_id: String,
    pub camera: String,
    pub kind: String,
    pub occurred_at_us: i64,
    /// The decision: confirmed or rejected.
    pub decision: Status,
    pub reason: String,
    pub note: String,
    pub reviewer: String,
    pub reviewed_at_us: i64,
    /// When the reviewer undid it, if they did.
    pub undone_at_us: Option<i64>,
    /// The violation's status now.
    pub status: Status,
}

/// Where a history page ends: the last row's (decided at, review id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryCursor {
    pub reviewed_at_us: i64,
    pub review_id: i64,
}

impl HistoryCursor {
    /// The opaque token a client passes back.
    pub fn token(&self) -> String {
        format!("{}.{}", self.reviewed_at_us, self.review_id)
    }

    pub fn from_token(t: &str) -> Result<HistoryCursor, StoreError> {
        let bad = || StoreError::Invalid(format!("`{}` is not a history cursor", t.escape_debug()));
        let (a, b) = t.split_once('.').ok_or_else(bad)?;
        Ok(HistoryCursor {
            reviewed_at_us: a.parse().map_err(|_| bad())?,
            review_id: b.parse().map_err(|_| bad())?,
        })
    }
}

/// A page of the history, newest decision first.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPage {
    pub items: Vec<HistoryRow>,
    /// After the last item, when the page is full.
    pub next: Option<HistoryCursor>,
}

/// One camera's violations that occurred on one UTC day, by their status now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CameraDay {
    pub camera: String,
    /// Days since the Unix epoch (UTC).
    pub day: i64,
    pub flagged: i64,
    pub confirmed: i64,
    pub rejected: i64,
    pub pending: i64,
}

/// One reviewer's decisions in a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewerTally {
    pub reviewer: String,
    /// Every decision made, undone ones included.
    pub decisions: i64,
    pub confirmed: i64,
    pub rejected: i64,
    pub undone: i64,
    pub first_at_us: i64,
    pub last_at_us: i64,
}

/// How often a camera's rejections of a kind give one reason (the decision in force only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectionTally {
    pub camera: String,
    pub kind: String,
    pub reason: String,
    pub count: i64,
}

/// The statistics of a period.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueueStats {
    pub days: Vec<CameraDay>,
    pub reviewers: Vec<ReviewerTally>,
    pub rejections: Vec<RejectionTally>,
}

const FREE: &str = "(claimed_by IS NULL OR claimed_by = $2 OR claimed_until_us <= $4)";

impl Store {
    /// `user` claims the pending case `id` until now + `ttl` (a renewal when it is theirs): one
    /// `UPDATE ... WHERE` the claim is free, theirs or expired, so of concurrent claims exactly one
    /// wins. Claiming a case ends the user's claims on any other.
    pub async fn claim(
        &self,
        id: &str,
        user: &str,
        ttl: std::time::Duration,
    ) -> Result<ClaimOutcome, StoreError> {
        let now = now_us();
        let until = now.saturating_add(micros(ttl));
        on_pool!(&self.pool, p => {
            let won = sqlx::query(&format!(
                "UPDATE violations SET claimed_by = $2, claimed_until_us = $3 \
                 WHERE id = $1 AND status = 'pending' AND {FREE} RETURNING claimed_until_us"
            ))
            .bind(id)
            .bind(user)
            .bind(until)
            .bind(now)
            .fetch_optional(p)
            .await?;
            if won.is_some() {
                sqlx::query(
                    "UPDATE violations SET claimed_by = NULL, claimed_until_us = NULL WHERE claimed_by = $1 AND id <> $2",
                )
                .bind(user)
                .bind(id)
                .execute(p)
                .await?;
                return Ok(ClaimOutcome::Claimed { until_us: until });
            }
            let r = sqlx::query("SELECT status, claimed_by, claimed_until_us FROM violations WHERE id = $1")
                .bind(id)
                .fetch_optional(p)
                .await?
                .ok_or_else(|| StoreError::NotFound(id.to_owned()))?;
            let status = Status::parse(&r.try_get::<String, _>(0)?)?;
            if status != Status::Pending {
                return Ok(ClaimOutcome::NotPending { status });
            }
            Ok(ClaimOutcome::Held {
                by: r.try_get::<Option<String>, _>(1)?.unwrap_or_default(),
                until_us: r.try_get::<Option<i64>, _>(2)?.unwrap_or_default(),
            })
        })
    }

    /// Ends `user`'s claim on `id`; false when they held none.
    pub async fn release(&self, id: &str, user: &str) -> Result<bool, StoreError> {
        on_pool!(&self.pool, p => {
            let r = sqlx::query(
                "UPDATE violations SET claimed_by = NULL, claimed_until_us = NULL WHERE id = $1 AND claimed_by = $2",
            )
            .bind(id)
            .bind(user)
            .execute(p)
            .await?;
            Ok(r.rows_affected() > 0)
        })
    }

    /// The case `user` holds, else the oldest pending case matching `filter` (its status is
    /// ignored) that nobody else holds, claimed (or renewed) for `user`; `None` when there is none.
    /// A case another reviewer wins between the look and the claim is skipped (at most 50 tries).
    pub async fn claim_next(
        &self,
        user: &str,
        filter: &ViolationFilter,
        ttl: std::time::Duration,
    ) -> Result<Option<(QueueItem, i64)>, StoreError> {
        let mut skipped: Vec<String> = Vec::new();
        for _ in 0..50 {
            let now = now_us();
            // The caller's own unexpired claim sorts first.
            let mut sql = String::from(
                "SELECT id, camera_id, kind, track_id, occurred_at_us, confidence, status, plate FROM violations \
                 WHERE status = 'pending' AND (claimed_by IS NULL OR claimed_by = $1 OR claimed_until_us <= $2)",
            );
            let args = filter.push_conditions(&mut sql, "", &mut 2);
            sql.push_str(&format!(
                " ORDER BY CASE WHEN claimed_by = $1 AND claimed_until_us > $2 THEN 0 ELSE 1 END, occurred_at_us, id \
                 LIMIT {}",
                skipped.len() + 1
            ));
            let candidates: Vec<QueueItem> = on_read!(&self.pool, p => {
                let q = bind_filter!(sqlx::query(&sql).bind(user).bind(now), &args);
                let rows = q.fetch_all(p).await?;
                let mut items = Vec::with_capacity(rows.len());
                for r in &rows {
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
                items
            });
            let Some(item) = candidates.into_iter().find(|i| !skipped.contains(&i.id)) else {
                return Ok(None);
            };
            match self.claim(&item.id, user, ttl).await? {
                ClaimOutcome::Claimed { until_us } => return Ok(Some((item, until_us))),
                _ => skipped.push(item.id),
            }
        }
        Ok(None)
    }

    /// The unexpired claims on pending cases.
    pub async fn active_claims(&self) -> Result<Vec<Claim>, StoreError> {
        on_read!(&self.pool, p => {
            let rows = sqlx::query(
                "SELECT id, claimed_by, claimed_until_us FROM violations \
                 WHERE claimed_by IS NOT NULL AND claimed_until_us > $1 AND status = 'pending' ORDER BY id",
            )
            .bind(now_us())
            .fetch_all(p)
            .await?;
            rows.iter()
                .map(|r| Ok(Claim { violation_id: r.try_get(0)?, by: r.try_get(1)?, until_us: r.try_get(2)? }))
                .collect()
        })
    }

    /// `user` undoes their decision on `id` if it was made within `window`: the case is pending
    /// again (claimed by `user` for `reclaim`), the decision's row is marked undone (never
    /// deleted), the review log gets an `undo` entry and the audit log an `undo` action, in one
    /// transaction.
    pub async fn undo(
        &self,
        id: &str,
        user: &str,
        window: std::time::Duration,
        reclaim: std::time::Duration,
    ) -> Result<UndoOutcome, StoreError> {
        let now = now_us();
        on_pool!(&self.pool, p => {
            let mut tx = p.begin().await?;
            let current: String = sqlx::query("UPDATE violations SET status = status WHERE id = $1 RETURNING status")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| StoreError::NotFound(id.to_owned()))?
                .try_get(0)?;
            let current = Status::parse(&current)?;
            let last = sqlx::query(
                "SELECT r.id, u.name, r.reviewed_at_us, r.undone_at_us FROM reviews r JOIN users u ON u.id = r.user_id \
                 WHERE r.violation_id = $1 ORDER BY r.id DESC LIMIT 1",
            )
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            let outcome = match (&last, current) {
                (_, Status::Pending) | (None, _) => Some(UndoOutcome::NothingToUndo),
                (Some(r), _) => {
                    let by: String = r.try_get(1)?;
                    let at: i64 = r.try_get(2)?;
                    if r.try_get::<Option<i64>, _>(3)?.is_some() {
                        Some(UndoOutcome::NothingToUndo)
                    } else if by != user {
                        Some(UndoOutcome::NotYours { by })
                    } else if now.saturating_sub(at) > micros(window) {
                        Some(UndoOutcome::TooLate { reviewed_at_us: at })
                    } else {
                        None
                    }
                }
            };
            if let Some(o) = outcome {
                tx.rollback().await?;
                return Ok(o);
            }
            let Some(r) = last else { return Ok(UndoOutcome::NothingToUndo) };
            let review_id: i64 = r.try_get(0)?;
            let reviewed_at: i64 = r.try_get(2)?;
            sqlx::query(
                "UPDATE violations SET status = 'pending', claimed_by = $2, claimed_until_us = $3 WHERE id = $1",
            )
            .bind(id)
            .bind(user)
            .bind(now.saturating_add(micros(reclaim)))
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE reviews SET undone_at_us = $2 WHERE id = $1")
                .bind(review_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            let note = format!("undoes the {} decided at {reviewed_at} us", current.as_str());
            review_log_append!(tx, id, user, "undo", Status::Pending, "", note, now);
            audit!(&mut *tx, now, user, "undo", Some(id),
                Some(serde_json::json!({ "status": current.as_str(), "reviewed_at_us": reviewed_at }).to_string()),
                Some(serde_json::json!({ "status": "pending" }).to_string()))?;
            tx.commit().await?;
            Ok(UndoOutcome::Undone { before: current, reviewed_at_us: reviewed_at })
        })
    }

    /// A page of every decision (undone ones included, marked) whose violation matches `filter`
    /// (`status` filters the decision), of `reviewer` only when given, newest decision first,
    /// by keyset on (decided at, review id) before `before`.
    pub async fn history_page(
        &self,
        filter: &ViolationFilter,
        reviewer: Option<&str>,
        before: Option<&HistoryCursor>,
        limit: u32,
    ) -> Result<HistoryPage, StoreError> {
        let limit = i64::from(limit.clamp(1, 1000));
        let mut sql = String::from(
            "SELECT r.id, v.id, v.camera_id, v.kind, v.occurred_at_us, r.decision, r.reason, r.note, u.name, \
             r.reviewed_at_us, r.undone_at_us, v.status \
             FROM reviews r JOIN violations v ON v.id = r.violation_id JOIN users u ON u.id = r.user_id WHERE 1 = 1",
        );
        let mut n = 0;
        let mut next = |sql: &mut String, cond: &str| {
            n += 1;
            sql.push_str(&cond.replace('?', &format!("${n}")));
        };
        if filter.status.is_some() {
            next(&mut sql, " AND r.decision = ?");
        }
        let args = filter.push_conditions(&mut sql, "v.", &mut n);
        let mut next = |sql: &mut String, cond: &str| {
            n += 1;
            sql.push_str(&cond.replace('?', &format!("${n}")));
        };
        if reviewer.is_some() {
            next(&mut sql, " AND u.name = ?");
        }
        if before.is_some() {
            next(&mut sql, " AND (r.reviewed_at_us, r.id) < (?");
            next(&mut sql, ", ?)");
        }
        next(
            &mut sql,
            " ORDER BY r.reviewed_at_us DESC, r.id DESC LIMIT ?",
        );
        on_read!(&self.pool, p => {
            let mut q = sqlx::query(&sql);
            if let Some(s) = filter.status {
                q = q.bind(s.as_str());
            }
            q = bind_filter!(q, &args);
            if let Some(r) = reviewer {
                q = q.bind(r);
            }
            if let Some(b) = before {
                q = q.bind(b.reviewed_at_us).bind(b.review_id);
            }
            let rows = q.bind(limit).fetch_all(p).await?;
            let mut items = Vec::with_capacity(rows.len());
            for r in &rows {
                items.push(HistoryRow {
                    review_id: r.try_get(0)?,
                    violation_id: r.try_get(1)?,
                    camera: r.try_get(2)?,
                    kind: r.try_get(3)?,
                    occurred_at_us: r.try_get(4)?,
                    decision: Status::parse(&r.try_get::<String, _>(5)?)?,
                    reason: r.try_get(6)?,
                    note: r.try_get(7)?,
                    reviewer: r.try_get(8)?,
                    reviewed_at_us: r.try_get(9)?,
                    undone_at_us: r.try_get(10)?,
                    status: Status::parse(&r.try_get::<String, _>(11)?)?,
                });
            }
            let next = if items.len() as i64 == limit {
                items.last().map(|i| HistoryCursor { reviewed_at_us: i.reviewed_at_us, review_id: i.review_id })
            } else {
                None
            };
            Ok(HistoryPage { items, next })
        })
    }

    /// The user's time zone (an IANA name; `UTC` until they choose one); `None` for no such user.
    pub async fn time_zone(&self, user: &str) -> Result<Option<String>, StoreError> {
        on_read!(&self.pool, p => {
            let r = sqlx::query("SELECT time_zone FROM users WHERE name = $1")
                .bind(user)
                .fetch_optional(p)
                .await?;
            Ok(r.map(|r| r.try_get::<String, _>(0)).transpose()?)
        })
    }

    /// Stores the user's time zone (the caller checks the name), audited as `time_zone`.
    pub async fn set_time_zone(&self, user: &str, zone: &str) -> Result<(), StoreError> {
        let now = now_us();
        on_pool!(&self.pool, p => {
            let mut tx = p.begin().await?;
            let before: String = sqlx::query("UPDATE users SET time_zone = time_zone WHERE name = $1 RETURNING time_zone")
                .bind(user)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| StoreError::Invalid(format!("no user `{user}`")))?
                .try_get(0)?;
            sqlx::query("UPDATE users SET time_zone = $2 WHERE name = $1")
                .bind(user)
                .bind(zone)
                .execute(&mut *tx)
                .await?;
            audit!(&mut *tx, now, user, "time_zone", None::<&str>,
                Some(serde_json::json!({ "time_zone": before }).to_string()),
                Some(serde_json::json!({ "time_zone": zone }).to_string()))?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// The statistics of violations that occurred in [`from_us`, `to_us`) (of `camera` only, when
    /// given): per camera and UTC day by status now, the rejection reasons in force per camera and
    /// kind; and the decisions made in the same period per reviewer.
    pub async fn queue_stats(
        &self,
        from_us: i64,
        to_us: i64,
        camera: Option<&str>,
    ) -> Result<QueueStats, StoreError> {
        let cam = if camera.is_some() {
            " AND v.camera_id = $3"
        } else {
            ""
        };
        let days_sql = format!(
            "SELECT v.camera_id, v.occurred_at_us / 86400000000, COUNT(*), \
             SUM(CASE WHEN v.status = 'confirmed' THEN 1 ELSE 0 END), \
             SUM(CASE WHEN v.status = 'rejected' THEN 1 ELSE 0 END), \
             SUM(CASE WHEN v.status = 'pending' THEN 1 ELSE 0 END) \
             FROM violations v WHERE v.occurred_at_us >= $1 AND v.occurred_at_us < $2{cam} \
             GROUP BY v.camera_id, v.occurred_at_us / 86400000000 ORDER BY 1, 2"
        );
        let rej_sql = format!(
            "SELECT v.camera_id, v.kind, r.reason, COUNT(*) FROM violations v \
             JOIN reviews r ON r.id = (SELECT MAX(r2.id) FROM reviews r2 WHERE r2.violation_id = v.id) \
             WHERE v.status = 'rejected' AND v.occurred_at_us >= $1 AND v.occurred_at_us < $2{cam} \
             GROUP BY v.camera_id, v.kind, r.reason ORDER BY 1, 2, 4 DESC, 3"
        );
        let rev_sql = format!(
            "SELECT u.name, COUNT(*), \
             SUM(CASE WHEN r.decision = 'confirmed' AND r.undone_at_us IS NULL THEN 1 ELSE 0 END), \
             SUM(CASE WHEN r.decision = 'rejected' AND r.undone_at_us IS NULL THEN 1 ELSE 0 END), \
             SUM(CASE WHEN r.undone_at_us IS NOT NULL THEN 1 ELSE 0 END), \
             MIN(r.reviewed_at_us), MAX(r.reviewed_at_us) \
             FROM reviews r JOIN users u ON u.id = r.user_id JOIN violations v ON v.id = r.violation_id \
             WHERE r.reviewed_at_us >= $1 AND r.reviewed_at_us < $2{cam} GROUP BY u.name ORDER BY u.name"
        );
        on_read!(&self.pool, p => {
            let mut out = QueueStats::default();
            let mut q = sqlx::query(&days_sql).bind(from_us).bind(to_us);
            if let Some(c) = camera {
                q = q.bind(c);
            }
            for r in q.fetch_all(p).await? {
                out.days.push(CameraDay {
                    camera: r.try_get(0)?,
                    day: r.try_get(1)?,
                    flagged: r.try_get(2)?,
                    confirmed: r.try_get(3)?,
                    rejected: r.try_get(4)?,
                    pending: r.try_get(5)?,
                });
            }
            let mut q = sqlx::query(&rej_sql).bind(from_us).bind(to_us);
            if let Some(c) = camera {
                q = q.bind(c);
            }
            for r in q.fetch_all(p).await? {
                out.rejections.push(RejectionTally {
                    camera: r.try_get(0)?,
                    kind: r.try_get(1)?,
                    reason: r.try_get(2)?,
                    count: r.try_get(3)?,
                });
            }
            let mut q = sqlx::query(&rev_sql).bind(from_us).bind(to_us);
            if let Some(c) = camera {
                q = q.bind(c);
            }
            for r in q.fetch_all(p).await? {
                out.reviewers.push(ReviewerTally {
                    reviewer: r.try_get(0)?,
                    decisions: r.try_get(1)?,
                    confirmed: r.try_get(2)?,
                    rejected: r.try_get(3)?,
                    undone: r.try_get(4)?,
                    first_at_us: r.try_get(5)?,
                    last_at_us: r.try_get(6)?,
                });
            }
            Ok(out)
        })
    }
}
