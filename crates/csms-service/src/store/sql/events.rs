//! [`Events`](crate::store::Events) on SQL: the rules, the records their
//! firings leave, delivery claims, and the expiry watcher's firings.

use async_trait::async_trait;
use macro_rules_attribute::apply;

use super::{
    Dialect, EventRow, NotificationRow, Query, SecretRow, SqlSecretStore,
    rows::{EVENT_COLUMNS, NOTIFICATION_COLUMNS, event_types_text},
    sql,
};
use crate::{
    domain::{
        Rejection, SecretRecord,
        events::{EventRecord, EventType, Notice, NotificationRecord, status},
    },
    store::{Delivery, EventInsert, EventMutation, Events, StoreError, WriteError},
};

#[apply(sql_bounds!)]
impl<D: Dialect> SqlSecretStore<D> {
    /// Binds an event's key and its mutable columns, `$1` to `$8`: the
    /// update's every parameter, the insert's first eight.
    fn bind_event<'q>(query: Query<'q, D>, e: &'q EventRecord) -> Query<'q, D> {
        query
            .bind(e.project_id.as_str())
            .bind(e.name.as_str())
            .bind(event_types_text(&e.event_types))
            .bind(e.state.as_str())
            .bind(e.target.target_type.as_str())
            .bind(e.target.target_id.as_str())
            .bind(e.target.target_name.as_str())
            .bind(e.update_ms)
    }

    async fn write_event(tx: &mut sqlx::Transaction<'static, D>, e: &EventRecord) -> Result<(), StoreError> {
        let query = Self::bind_event(sqlx::query(sql::UPDATE_EVENT), e);
        query.execute(&mut **tx).await.map_err(StoreError::db("updating an event"))?;
        Ok(())
    }

    async fn lock_event(
        tx: &mut sqlx::Transaction<'static, D>, project_id: &str, name: &str,
    ) -> Result<Option<EventRecord>, StoreError> {
        let query =
            format!("SELECT {EVENT_COLUMNS} FROM csms_events WHERE project_id = $1 AND name = $2{}", D::ROW_LOCK);
        let query = sqlx::query_as(&query).bind(project_id).bind(name);
        let row: Option<EventRow> =
            query.fetch_optional(&mut **tx).await.map_err(StoreError::db("locking an event"))?;
        row.map(EventRecord::try_from).transpose()
    }

    /// Fires the expiry of one version if, on the locked secret, it is
    /// still due and not yet notified.
    async fn fire_expiry(&self, secret_id: &str, number: i32, now_ms: i64) -> Result<bool, StoreError> {
        let mut tx = D::begin_write(&self.pool).await.map_err(StoreError::db("starting a transaction"))?;
        let lock = format!("SELECT {} FROM secrets WHERE id = $1{}", sql::SECRET_COLUMNS, D::ROW_LOCK);
        let query = sqlx::query_as(&lock).bind(secret_id);
        let row: Option<SecretRow> =
            query.fetch_optional(&mut *tx).await.map_err(StoreError::db("locking a secret"))?;
        let Some(secret) = row.map(SecretRecord::try_from).transpose()? else { return Ok(false) };
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT expire_ms FROM secret_versions WHERE secret_id = $1 AND version = $2 \
             AND expire_ms IS NOT NULL AND expire_ms <= $3 \
             AND (expiry_notified_ms IS NULL OR expiry_notified_ms <> expire_ms)",
        )
        .bind(secret_id)
        .bind(number)
        .bind(now_ms)
        .fetch_optional(&mut *tx)
        .await
        .map_err(StoreError::db("re-checking an expiry"))?;
        let Some(expire_ms) = due else { return Ok(false) };
        Self::fire(&mut tx, &secret, &Notice::version(EventType::VersionExpired, number, Some(expire_ms)), now_ms)
            .await?;
        let query =
            sqlx::query("UPDATE secret_versions SET expiry_notified_ms = $3 WHERE secret_id = $1 AND version = $2")
                .bind(secret_id)
                .bind(number)
                .bind(expire_ms);
        query.execute(&mut *tx).await.map_err(StoreError::db("marking an expiry notified"))?;
        Self::commit(tx).await?;
        Ok(true)
    }
}

#[apply(sql_bounds!)]
#[async_trait]
impl<D: Dialect> Events for SqlSecretStore<D> {
    async fn create_event(&self, e: &EventRecord, quota: u64) -> Result<EventInsert, StoreError> {
        let mut tx = D::begin_write(&self.pool).await.map_err(StoreError::db("starting a transaction"))?;
        D::lock_project(&mut tx, super::PROJECTS, &e.project_id)
            .await
            .map_err(StoreError::db("locking the project"))?;
        let query = sqlx::query_scalar("SELECT COUNT(*) FROM csms_events WHERE project_id = $1").bind(&e.project_id);
        let count: i64 = query.fetch_one(&mut *tx).await.map_err(StoreError::db("counting events"))?;
        if count as u64 >= quota {
            return Ok(EventInsert::QuotaReached);
        }
        let query = Self::bind_event(sqlx::query(sql::INSERT_EVENT), e).bind(e.id.as_str()).bind(e.create_ms);
        match query.execute(&mut *tx).await {
            Ok(_) => {}
            Err(e) if common::db::is_unique_violation(&e) => return Ok(EventInsert::NameTaken),
            Err(e) => return Err(StoreError::db("inserting an event")(e)),
        }
        Self::commit(tx).await?;
        Ok(EventInsert::Created)
    }

    async fn get_event(&self, project_id: &str, name: &str) -> Result<Option<EventRecord>, StoreError> {
        let row: Option<EventRow> =
            sqlx::query_as(&format!("SELECT {EVENT_COLUMNS} FROM csms_events WHERE project_id = $1 AND name = $2"))
                .bind(project_id)
                .bind(name)
                .fetch_optional(&self.pool)
                .await
                .map_err(StoreError::db("reading an event"))?;
        row.map(EventRecord::try_from).transpose()
    }

    async fn list_events(
        &self, project_id: &str, after: Option<&str>, limit: u32,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let statement = format!(
            "SELECT {EVENT_COLUMNS} FROM csms_events WHERE project_id = $1 AND ($2 IS NULL OR name > $2) \
             ORDER BY name LIMIT $3"
        );
        let query = sqlx::query_as(&statement).bind(project_id).bind(after).bind(i64::from(limit));
        let rows: Vec<EventRow> = query.fetch_all(&self.pool).await.map_err(StoreError::db("listing events"))?;
        rows.into_iter().map(EventRecord::try_from).collect()
    }

    async fn update_event(
        &self, project_id: &str, name: &str, change: EventMutation,
    ) -> Result<EventRecord, WriteError> {
        let mut tx = D::begin_write(&self.pool).await.map_err(StoreError::db("starting a transaction"))?;
        let mut event =
            Self::lock_event(&mut tx, project_id, name).await?.ok_or(Rejection::ResourceNotFound("event"))?;
        change(&mut event)?;
        Self::write_event(&mut tx, &event).await?;
        Self::commit(tx).await?;
        Ok(event)
    }

    async fn delete_event(&self, project_id: &str, name: &str) -> Result<(), WriteError> {
        let mut tx = D::begin_write(&self.pool).await.map_err(StoreError::db("starting a transaction"))?;
        Self::lock_event(&mut tx, project_id, name).await?.ok_or(Rejection::ResourceNotFound("event"))?;
        let subscribed: Option<String> =
            sqlx::query_scalar("SELECT name FROM secrets WHERE project_id = $1 AND event_subscriptions = $2 LIMIT 1")
                .bind(project_id)
                .bind(serde_json::to_string(&[name]).expect("strings serialise"))
                .fetch_optional(&mut *tx)
                .await
                .map_err(StoreError::db("finding subscribers"))?;
        if subscribed.is_some() {
            return Err(Rejection::InvalidParameter("the event is subscribed to by a secret".into()).into());
        }
        let query =
            sqlx::query("DELETE FROM csms_events WHERE project_id = $1 AND name = $2").bind(project_id).bind(name);
        query.execute(&mut *tx).await.map_err(StoreError::db("deleting an event"))?;
        Self::commit(tx).await?;
        Ok(())
    }

    async fn list_notifications(
        &self, project_id: &str, since_ms: i64, after: Option<&str>, limit: u32,
    ) -> Result<Vec<NotificationRecord>, StoreError> {
        // Newest first; the marker is the last record of the previous page.
        let statement = format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM csms_notifications n WHERE n.project_id = $1 AND n.create_ms >= $2 \
             AND ($3 IS NULL OR EXISTS (SELECT 1 FROM csms_notifications m WHERE m.project_id = $1 AND m.id = $3 \
               AND (n.create_ms < m.create_ms OR (n.create_ms = m.create_ms AND n.id < m.id)))) \
             ORDER BY n.create_ms DESC, n.id DESC LIMIT $4"
        );
        let query = sqlx::query_as(&statement).bind(project_id).bind(since_ms).bind(after).bind(i64::from(limit));
        let rows: Vec<NotificationRow> =
            query.fetch_all(&self.pool).await.map_err(StoreError::db("listing notification records"))?;
        Ok(rows.into_iter().map(NotificationRecord::from).collect())
    }

    async fn claim_deliveries(
        &self, now_ms: i64, lease_ms: i64, limit: u32, per_project: u32,
    ) -> Result<Vec<NotificationRecord>, StoreError> {
        let mut tx = D::begin_write(&self.pool).await.map_err(StoreError::db("starting a transaction"))?;
        // The oldest due records of each project, `per_project` at most:
        // one tenant's backlog cannot fill every batch.
        let statement = format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM csms_notifications WHERE id IN (SELECT id FROM \
             (SELECT id, next_attempt_ms, ROW_NUMBER() OVER (PARTITION BY project_id ORDER BY next_attempt_ms, id) \
             AS nth FROM csms_notifications WHERE next_attempt_ms IS NOT NULL AND next_attempt_ms <= $1) due \
             WHERE nth <= $3 ORDER BY next_attempt_ms LIMIT $2) AND next_attempt_ms <= $1{}",
            D::SKIP_LOCKED
        );
        let query = sqlx::query_as(&statement).bind(now_ms).bind(i64::from(limit)).bind(i64::from(per_project));
        let rows: Vec<NotificationRow> =
            query.fetch_all(&mut *tx).await.map_err(StoreError::db("finding due notifications"))?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in rows {
            let query = sqlx::query(
                "UPDATE csms_notifications SET next_attempt_ms = $2, attempts = attempts + 1 WHERE id = $1",
            )
            .bind(row.id.as_str())
            .bind(now_ms + lease_ms);
            query.execute(&mut *tx).await.map_err(StoreError::db("claiming a notification"))?;
            let mut record = NotificationRecord::from(row);
            record.attempts += 1;
            claimed.push(record);
        }
        Self::commit(tx).await?;
        Ok(claimed)
    }

    async fn purge_notifications(&self, before_ms: i64, limit: u32) -> Result<u64, StoreError> {
        let query = sqlx::query(
            "DELETE FROM csms_notifications WHERE id IN (SELECT id FROM csms_notifications \
             WHERE create_ms < $1 AND next_attempt_ms IS NULL ORDER BY create_ms LIMIT $2)",
        )
        .bind(before_ms)
        .bind(i64::from(limit));
        let deleted = query.execute(&self.pool).await.map_err(StoreError::db("purging old notification records"))?;
        Ok(D::rows_affected(&deleted))
    }

    async fn settle_delivery(&self, id: &str, outcome: &Delivery) -> Result<(), StoreError> {
        let (state, next, error) = match outcome {
            Delivery::Delivered => (status::SUCCESS, None, None),
            Delivery::Retry { at_ms, error } => (status::PENDING, Some(*at_ms), Some(error.as_str())),
            Delivery::Failed { error } => (status::FAIL, None, Some(error.as_str())),
        };
        let query = sqlx::query(
            "UPDATE csms_notifications SET status = $2, next_attempt_ms = $3, last_error = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(state)
        .bind(next)
        .bind(error);
        query.execute(&self.pool).await.map_err(StoreError::db("settling a notification"))?;
        Ok(())
    }

    async fn fire_due_expiries(&self, now_ms: i64, limit: u32) -> Result<u64, StoreError> {
        let due: Vec<(String, i32, Option<i64>)> = sqlx::query_as(
            "SELECT secret_id, version, expire_ms FROM secret_versions WHERE expire_ms IS NOT NULL \
             AND expire_ms <= $1 AND (expiry_notified_ms IS NULL OR expiry_notified_ms <> expire_ms) LIMIT $2",
        )
        .bind(now_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("finding expired versions"))?;
        let mut fired = 0;
        for (secret_id, number, _) in due {
            if self.fire_expiry(&secret_id, number, now_ms).await? {
                fired += 1;
            }
        }
        Ok(fired)
    }
}
