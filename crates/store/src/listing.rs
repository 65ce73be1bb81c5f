//! What the HTTP service reads and decides over violations: the filtered list
//! (status, kind, camera, time) with keyset pagination, evidence rows by
//! their id (the only way a client names a file), final review decisions with
//! a reason code and note, an admin's reopen, a violation's review history,
//! the extra columns of an export, and counts for metrics.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::db::Pool;
use crate::model::{
    Decision, EvidenceItem, EvidenceKind, Plate, QueueCursor, QueueItem, QueuePage, Status,
};
use crate::{Store, StoreError};

fn now_us() -> i64 {
    crate::to_micros(chrono::Utc::now())
}

/// Which violations a list shows; every field narrows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ViolationFilter {
    pub status: Option<Status>,
    /// `no_helmet` or `red_light`.
    pub kind: Option<String>,
    pub camera: Option<String>,
    /// Occurred at or after (µs).
    pub from_us: Option<i64>,
    /// Occurred before (µs).
    pub to_us: Option<i64>,
    /// The reviewer's plate is exactly this one.
    pub plate: Option<Plate>,
}

/// A value bound to one `$n` placeholder of [`ViolationFilter::push_conditions`]'s SQL.
pub(crate) enum FilterArg<'a> {
    Text(&'a str),
    Int(i64),
}

impl ViolationFilter {
    /// Appends ` AND ...` for each of kind, camera, from, to and plate that is set, on the columns of the
    /// violations table as the query names it (`v`: `""` or `"v."`), numbering placeholders after `*n`;
    /// returns the values to bind, in order ([`bind_filter!`]). `status` is the caller's: its column
    /// differs (a violation's status, a review's decision).
    pub(crate) fn push_conditions(
        &self,
        sql: &mut String,
        v: &str,
        n: &mut usize,
    ) -> Vec<FilterArg<'_>> {
        let mut args = Vec::new();
        let mut cond = |sql: &mut String, c: &str| {
            *n += 1;
            sql.push_str(&format!(" AND {v}{c} ${n}", n = *n));
        };
        if let Some(k) = &self.kind {
            cond(sql, "kind =");
            args.push(FilterArg::Text(k));
        }
        if let Some(c) = &self.camera {
            cond(sql, "camera_id =");
            args.push(FilterArg::Text(c));
        }
        if let Some(t) = self.from_us {
            cond(sql, "occurred_at_us >=");
            args.push(FilterArg::Int(t));
        }
        if let Some(t) = self.to_us {
            cond(sql, "occurred_at_us <");
            args.push(FilterArg::Int(t));
        }
        if let Some(pl) = &self.plate {
            cond(sql, "plate =");
            args.push(FilterArg::Text(pl.as_str()));
        }
        args
    }
}

/// Binds [`ViolationFilter::push_conditions`]'s values to `q` in order. A macro because each dialect's
/// query is its own type (see `on_read!`).
macro_rules! bind_filter {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for a in $args {
            q = match a {
                $crate::listing::FilterArg::Text(s) => q.bind(*s),
                $crate::listing::FilterArg::Int(i) => q.bind(*i),
            };
        }
        q
    }};
}
pub(crate) use bind_filter;

/// One evidence row with its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceRow {
    pub id: i64,
    pub violation_id: String,
    pub item: EvidenceItem,
    pub purged: bool,
}

/// One review decision as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewRow {
    pub reviewer: String,
    pub status: Status,
    pub reason: String,
    pub note: String,
    pub reviewed_at_us: i64,
}

/// What an export adds to a listed violation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportDetail {
    pub id: String,
    pub record_hash: String,
    /// Evidence rows, purged ones included.
    pub evidence_count: i64,
    /// The decision in force: the latest review while the violation is
    /// decided; none while it is pending (also after an admin's reopen).
    pub review: Option<ReviewRow>,
}

/// What a plate change did: the plate before and after (`None`: none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlateChange {
    pub before: Option<Plate>,
    pub after: Option<Plate>,
}

/// What a decision or a reopen did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecideOutcome {
    /// The status changed from the first to the second.
    Changed { before: Status, after: Status },
    /// Nothing changed: the violation was already in this status
    /// (decided, for a decision; pending, for a reopen).
    Refused { current: Status },
}

impl Store {
    /// One page of violations matching `filter`, oldest first, by keyset on (occurred_at, id).
    pub async fn list_violations(
        &self,
        filter: &ViolationFilter,
        after: Option<&QueueCursor>,
        limit: u32,
    ) -> Result<QueuePage, StoreError> {
        let limit = i64::from(limit.clamp(1, 1000));
        let mut sql = String::from(
            "SELECT id, camera_id, kind, track_id, occurred_at_us, confidence, status, plate FROM violations WHERE 1 = 1",
        );
        let mut n = 0;
        let mut next = |sql: &mut String, cond: &str| {
            n += 1;
            sql.push_str(&cond.replace('?', &format!("${n}")));
        };
        if filter.status.is_some() {
            next(&mut sql, " AND status = ?");
        }
        let args = filter.push_conditions(&mut sql, "", &mut n);
        let mut next = |sql: &mut String, cond: &str| {
            n += 1;
            sql.push_str(&cond.replace('?', &format!("${n}")));
        };
        if after.is_some() {
            next(&mut sql, " AND (occurred_at_us, id) > (?");
            next(&mut sql, ", ?)");
        }
        next(&mut sql, " ORDER BY occurred_at_us, id LIMIT ?");
        on_read!(&self.pool, p => {
            let mut q = sqlx::query(&sql);
            if let Some(s) = filter.status {
                q = q.bind(s.as_str());
            }
            q = bind_filter!(q, &args);
            if let Some(a) = after {
                q = q.bind(a.occurred_at_us).bind(&a.id);
            }
            let rows = q.bind(limit).fetch_all(p).await?;
            queue_page!(rows, limit)
        })
    }

    /// The export columns of the violations `ids` (a page of
    /// [`Store::list_violations`]), in no particular order; unknown ids are left out.
    pub async fn export_details(&self, ids: &[String]) -> Result<Vec<ExportDetail>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        if ids.len() > 1000 {
            return Err(StoreError::Invalid(format!(
                "{} ids in one export page; at most 1000",
                ids.len()
            )));
        }
        let params: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT v.id, v.record_hash, v.status, \
             (SELECT COUNT(*) FROM evidence e WHERE e.violation_id = v.id), \
             u.name, r.decision, r.reason, r.note, r.reviewed_at_us \
             FROM violations v \
             LEFT JOIN reviews r ON r.id = (SELECT MAX(r2.id) FROM reviews r2 WHERE r2.violation_id = v.id) \
             LEFT JOIN users u ON u.id = r.user_id \
             WHERE v.id IN ({})",
            params.join(", ")
        );
        on_read!(&self.pool, p => {
            let mut q = sqlx::query(&sql);
            for id in ids {
                q = q.bind(id);
            }
            let rows = q.fetch_all(p).await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let status = Status::parse(&r.try_get::<String, _>(2)?)?;
                let reviewer: Option<String> = r.try_get(4)?;
                let review = match reviewer {
                    Some(reviewer) if status != Status::Pending => Some(ReviewRow {
                        reviewer,
                        status: Status::parse(&r.try_get::<String, _>(5)?)?,
                        reason: r.try_get(6)?,
                        note: r.try_get(7)?,
                        reviewed_at_us: r.try_get(8)?,
                    }),
                    _ => None,
                };
                out.push(ExportDetail {
                    id: r.try_get(0)?,
                    record_hash: r.try_get(1)?,
                    evidence_count: r.try_get(3)?,
                    review,
                });
            }
            Ok(out)
        })
    }

    /// A violation's evidence rows with their ids, by path.
    pub async fn evidence_rows(&self, violation_id: &str) -> Result<Vec<EvidenceRow>, StoreError> {
        on_read!(&self.pool, p => {
            let rows = sqlx::query(
                "SELECT id, violation_id, kind, role, path, sha256, size_bytes, purged_at_us FROM evidence \
                 WHERE violation_id = $1 ORDER BY path",
            )
            .bind(violation_id)
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let size: i64 = r.try_get(6)?;
                out.push(EvidenceRow {
                    id: r.try_get(0)?,
                    violation_id: r.try_get(1)?,
                    item: EvidenceItem {
                        kind: EvidenceKind::parse(&r.try_get::<String, _>(2)?)?,
                        role: r.try_get(3)?,
                        path: r.try_get(4)?,
                        sha256: r.try_get(5)?,
                        size: u64::try_from(size).map_err(|_| StoreError::Invalid(format!("negative size {size}")))?,
                    },
                    purged: r.try_get::<Option<i64>, _>(7)?.is_some(),
                });
            }
            // Byte order, whatever the database's collation.
            out.sort_by(|a, b| a.item.path.cmp(&b.item.path));
            Ok(out)
        })
    }

    /// One evidence row by its id.
    pub async fn evidence_row(&self, evidence_id: i64) -> Result<Option<EvidenceRow>, StoreError> {
        on_read!(&self.pool, p => {
            let r = sqlx::query(
                "SELECT id, violation_id, kind, role, path, sha256, size_bytes, purged_at_us FROM evidence WHERE id = $1",
            )
            .bind(evidence_id)
            .fetch_optional(p)
            .await?;
            let Some(r) = r else { return Ok(None) };
            let size: i64 = r.try_get(6)?;
            Ok(Some(EvidenceRow {
                id: r.try_get(0)?,
                violation_id: r.try_get(1)?,
                item: EvidenceItem {
                    kind: EvidenceKind::parse(&r.try_get::<String, _>(2)?)?,
                    role: r.try_get(3)?,
                    path: r.try_get(4)?,
                    sha256: r.try_get(5)?,
                    size: u64::try_from(size).map_err(|_| StoreError::Invalid(format!("negative size {size}")))?,
                },
                purged: r.try_get::<Option<i64>, _>(7)?.is_some(),
            }))
        })
    }

    /// A final decision on a pending violation by the user `reviewer`: a
    /// review row, the new status and an audit entry (`review`, status before
    /// and after with the reason and note), in one transaction. A violation
    /// that is no longer pending, or that another reviewer holds an unexpired claim on
    /// ([`Store::claim`]), is left as it is ([`DecideOutcome::Refused`], `current` pending for the
    /// latter). The decision ends the case's claim.
    pub async fn decide(
        &self,
        id: &str,
        reviewer: &str,
        decision: Decision,
        reason: &str,
        note: &str,
    ) -> Result<DecideOutcome, StoreError> {
        let now = now_us();
        let after = decision.status();
        on_pool!(&self.pool, p => {
            let mut tx = p.begin().await?;
            let user_id: i64 = sqlx::query("SELECT id FROM users WHERE name = $1")
                .bind(reviewer)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| StoreError::Invalid(format!("no user `{reviewer}`")))?
                .try_get(0)?;
            // Only while no other reviewer holds an unexpired claim; the decision ends the claim.
            let changed = sqlx::query(
                "UPDATE violations SET status = $2, claimed_by = NULL, claimed_until_us = NULL \
                 WHERE id = $1 AND status = 'pending' \
                 AND (claimed_by IS NULL OR claimed_by = $3 OR claimed_until_us <= $4) RETURNING id",
            )
            .bind(id)
            .bind(after.as_str())
            .bind(reviewer)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            if changed.is_none() {
                let current: Option<String> = sqlx::query("SELECT status FROM violations WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .map(|r| r.try_get(0))
                    .transpose()?;
                tx.rollback().await?;
                return match current {
                    Some(s) => Ok(DecideOutcome::Refused { current: Status::parse(&s)? }),
                    None => Err(StoreError::NotFound(id.to_owned())),
                };
            }
            sqlx::query(
                "INSERT INTO reviews (violation_id, user_id, decision, reason, note, reviewed_at_us) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id)
            .bind(user_id)
            .bind(after.as_str())
            .bind(reason)
            .bind(note)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            review_log_append!(tx, id, reviewer, "review", after, reason, note, now);
            audit!(&mut *tx, now, reviewer, "review", Some(id),
                Some(serde_json::json!({ "status": "pending" }).to_string()),
                Some(serde_json::json!({ "status": after.as_str(), "reason": reason, "note": note }).to_string()))?;
            tx.commit().await?;
            Ok(DecideOutcome::Changed { before: Status::Pending, after })
        })
    }

    /// Puts a decided violation back to pending (an admin's correction),
    /// audited as `reopen` with the status before and the note.
    pub async fn reopen(
        &self,
        id: &str,
        actor: &str,
        note: &str,
    ) -> Result<DecideOutcome, StoreError> {
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
            if current == Status::Pending {
                tx.rollback().await?;
                return Ok(DecideOutcome::Refused { current });
            }
            sqlx::query("UPDATE violations SET status = 'pending' WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            review_log_append!(tx, id, actor, "reopen", Status::Pending, "", note, now);
            audit!(&mut *tx, now, actor, "reopen", Some(id),
                Some(serde_json::json!({ "status": current.as_str() }).to_string()),
                Some(serde_json::json!({ "status": "pending", "note": note }).to_string()))?;
            tx.commit().await?;
            Ok(DecideOutcome::Changed { before: current, after: Status::Pending })
        })
    }

    /// Sets (or, with `None`, clears) the licence plate a reviewer read on violation `id`, audited as
    /// `plate` by `actor` with the plate before and after, in one transaction. Allowed whatever the
    /// violation's status: a plate is corrected after a decision too. Setting the plate it already has
    /// changes nothing and writes no audit entry.
    pub async fn set_plate(
        &self,
        id: &str,
        actor: &str,
        plate: Option<&Plate>,
    ) -> Result<PlateChange, StoreError> {
        let now = now_us();
        let after = plate.map(Plate::as_str);
        on_pool!(&self.pool, p => {
            let mut tx = p.begin().await?;
            // Locks the row (PostgreSQL) before reading what it had.
            let before: Option<String> = sqlx::query("UPDATE violations SET plate = plate WHERE id = $1 RETURNING plate")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| StoreError::NotFound(id.to_owned()))?
                .try_get(0)?;
            let before = before.map(Plate::try_from).transpose().map_err(|e| StoreError::Invalid(e.to_string()))?;
            if before.as_ref().map(Plate::as_str) == after {
                tx.rollback().await?;
                return Ok(PlateChange { before: before.clone(), after: before });
            }
            sqlx::query("UPDATE violations SET plate = $2 WHERE id = $1")
                .bind(id)
                .bind(after)
                .execute(&mut *tx)
                .await?;
            audit!(&mut *tx, now, actor, "plate", Some(id),
                Some(serde_json::json!({ "plate": before.as_ref().map(Plate::as_str) }).to_string()),
                Some(serde_json::json!({ "plate": after }).to_string()))?;
            tx.commit().await?;
            Ok(PlateChange { before, after: plate.cloned() })
        })
    }

    /// A violation's review decisions, oldest first.
    pub async fn reviews_of(&self, id: &str) -> Result<Vec<ReviewRow>, StoreError> {
        on_read!(&self.pool, p => {
            let rows = sqlx::query(
                "SELECT u.name, r.decision, r.reason, r.note, r.reviewed_at_us FROM reviews r JOIN users u ON u.id = r.user_id \
                 WHERE r.violation_id = $1 ORDER BY r.id",
            )
            .bind(id)
            .fetch_all(p)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(ReviewRow {
                        reviewer: r.try_get(0)?,
                        status: Status::parse(&r.try_get::<String, _>(1)?)?,
                        reason: r.try_get(2)?,
                        note: r.try_get(3)?,
                        reviewed_at_us: r.try_get(4)?,
                    })
                })
                .collect()
        })
    }

    /// Violation counts by (camera, kind, status), for metrics.
    pub async fn violation_counts(&self) -> Result<Vec<(String, String, Status, i64)>, StoreError> {
        on_read!(&self.pool, p => {
            let rows = sqlx::query(
                "SELECT camera_id, kind, status, COUNT(*) FROM violations GROUP BY camera_id, kind, status \
                 ORDER BY camera_id, kind, status",
            )
            .fetch_all(p)
            .await?;
            rows.iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, Status::parse(&r.try_get::<String, _>(2)?)?, r.try_get(3)?)))
                .collect()
        })
    }

    /// One round trip to the database, for readiness checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_read!(&self.pool, p => {
            sqlx::query("SELECT 1").fetch_one(p).await?;
            Ok(())
        })
    }
}
