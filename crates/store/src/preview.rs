//! What a threshold change would have done: of one camera's stored
//! violations of some kinds since a time, how many a new score threshold
//! would have kept (stored confidence at or above it) and dropped (below),
//! each split by review status. The HTTP service shows this to ops staff
//! before they save a change.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::db::Pool;
use crate::model::Status;
use crate::{Store, StoreError};

/// Violation counts by review status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCounts {
    pub total: i64,
    pub pending: i64,
    pub confirmed: i64,
    pub rejected: i64,
}

impl StatusCounts {
    fn add(&mut self, status: Status, n: i64) {
        self.total += n;
        match status {
            Status::Pending => self.pending += n,
            Status::Confirmed => self.confirmed += n,
            Status::Rejected => self.rejected += n,
        }
    }
}

/// What a threshold would have kept and dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThresholdPreview {
    /// Stored confidence at or above the threshold.
    pub kept: StatusCounts,
    /// Stored confidence below the threshold.
    pub dropped: StatusCounts,
}

impl Store {
    /// Counts `camera`'s violations of `kinds` (`no_helmet`, `red_light`)
    /// that occurred at or after `since_us`, tombstones included (their
    /// confidence and status stay), as kept (`confidence >= threshold`) or
    /// dropped by `threshold`. The comparison is made in `f32`, as the
    /// pipeline compares scores, so a violation stored with exactly the
    /// threshold's score counts as kept. No kinds: all zero.
    pub async fn threshold_preview(
        &self,
        camera: &str,
        kinds: &[&str],
        since_us: i64,
        threshold: f64,
    ) -> Result<ThresholdPreview, StoreError> {
        if !threshold.is_finite() {
            return Err(StoreError::Invalid(format!(
                "threshold {threshold} is not a number"
            )));
        }
        let mut out = ThresholdPreview::default();
        if kinds.is_empty() {
            return Ok(out);
        }
        // Confidences are stored as the f64 of an f32 score: compare against
        // the f32 of the threshold the same way.
        let threshold = f64::from(threshold as f32);
        let placeholders: Vec<String> = (0..kinds.len()).map(|i| format!("${}", i + 4)).collect();
        let sql = format!(
            "SELECT status, COUNT(*), COALESCE(SUM(CASE WHEN confidence >= $3 THEN 1 ELSE 0 END), 0) \
             FROM violations WHERE camera_id = $1 AND occurred_at_us >= $2 AND kind IN ({}) \
             GROUP BY status ORDER BY status",
            placeholders.join(", ")
        );
        let rows: Vec<(String, i64, i64)> = on_read!(&self.pool, p => {
            let mut q = sqlx::query(&sql).bind(camera).bind(since_us).bind(threshold);
            for k in kinds {
                q = q.bind(*k);
            }
            let rows = q.fetch_all(p).await?;
            rows.iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        for (status, all, kept) in rows {
            let status = Status::parse(&status)?;
            out.kept.add(status, kept);
            out.dropped.add(status, all - kept);
        }
        Ok(out)
    }
}
