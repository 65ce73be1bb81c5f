//! The review log's write path (see `review_log.rs`), a macro so that it runs
//! inside either dialect's transaction; declared before `db` so every module can use it.

/// Appends one entry to the review log of violation `$id`'s camera inside the
/// transaction `$tx` (taking the camera row's lock, as the evidence chain does).
macro_rules! review_log_append {
    ($tx:expr, $id:expr, $actor:expr, $action:expr, $status:expr, $reason:expr, $note:expr, $at:expr $(,)?) => {{
        let v = sqlx::query("SELECT camera_id, record_hash FROM violations WHERE id = $1")
            .bind($id)
            .fetch_one(&mut *$tx)
            .await?;
        let camera: String = v.try_get(0)?;
        let record_hash: String = v.try_get(1)?;
        let head = sqlx::query(
            "UPDATE cameras SET review_seq = review_seq WHERE id = $1 RETURNING review_seq, review_head",
        )
        .bind(&camera)
        .fetch_one(&mut *$tx)
        .await?;
        let fields = $crate::review_log::ReviewLogFields {
            camera,
            seq: head.try_get::<i64, _>(0)? + 1,
            prev_hash: head.try_get(1)?,
            violation: ($id).to_owned(),
            record_hash,
            actor: ($actor).to_owned(),
            action: ($action).to_owned(),
            status: $status,
            reason: ($reason).to_owned(),
            note: ($note).to_owned(),
            at_us: $at,
        };
        let hash = $crate::review_log::review_entry_hash(&fields);
        sqlx::query(
            "INSERT INTO review_log (camera_id, seq, prev_hash, violation_id, record_hash, actor, action, status, \
             reason, note, at_us, entry_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&fields.camera)
        .bind(fields.seq)
        .bind(&fields.prev_hash)
        .bind(&fields.violation)
        .bind(&fields.record_hash)
        .bind(&fields.actor)
        .bind(&fields.action)
        .bind(fields.status.as_str())
        .bind(&fields.reason)
        .bind(&fields.note)
        .bind(fields.at_us)
        .bind(&hash)
        .execute(&mut *$tx)
        .await?;
        sqlx::query("UPDATE cameras SET review_seq = $2, review_head = $3 WHERE id = $1")
            .bind(&fields.camera)
            .bind(fields.seq)
            .bind(&hash)
            .execute(&mut *$tx)
            .await?;
    }};
}
