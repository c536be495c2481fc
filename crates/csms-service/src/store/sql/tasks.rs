//! [`Tasks`](crate::store::Tasks) on SQL: failed rotations, the task list
//! and the secrets due for rotation.

use async_trait::async_trait;
use macro_rules_attribute::apply;

use super::{Dialect, SqlSecretStore, TaskRow, rows::TASK_COLUMNS};
use crate::{
    domain::{
        Rejection, SYSPENDING,
        events::{TaskFilter, TaskRecord, TaskStatus},
    },
    store::{Effects, SecretMutation, StoreError, Tasks, WriteError},
};

/// The filter of the task list, `$1` the project: `$2` secret name, `$3`
/// status, `$4` task id, each NULL when not filtered.
const TASK_FILTER: &str = "project_id = $1 AND ($2 IS NULL OR secret_name = $2) \
    AND ($3 IS NULL OR status = $3) AND ($4 IS NULL OR id = $4)";

#[apply(sql_bounds!)]
#[async_trait]
impl<D: Dialect> Tasks for SqlSecretStore<D> {
    async fn record_rotation(
        &self, project_id: &str, secret_id: &str, change: SecretMutation, effects: &Effects, abandon: Option<i32>,
    ) -> Result<(), WriteError> {
        let mut tx = D::begin_write(&self.pool).await.map_err(StoreError::db("starting a transaction"))?;
        let mut secret = Self::lock_secret(&mut tx, project_id, "id", secret_id)
            .await?
            .ok_or(Rejection::ResourceNotFound("secret"))?;
        change(&mut secret)?;
        if let Some(number) = abandon {
            let query =
                sqlx::query("DELETE FROM secret_stages WHERE secret_id = $1 AND stage_name = $2 AND version = $3")
                    .bind(&secret.id)
                    .bind(SYSPENDING)
                    .bind(number);
            query.execute(&mut *tx).await.map_err(StoreError::db("removing the pending stage"))?;
            let query = sqlx::query(
                "DELETE FROM secret_versions WHERE secret_id = $1 AND version = $2 AND NOT EXISTS \
                 (SELECT 1 FROM secret_stages WHERE secret_id = $1 AND version = $2)",
            )
            .bind(&secret.id)
            .bind(number);
            query.execute(&mut *tx).await.map_err(StoreError::db("deleting an abandoned version"))?;
        }
        Self::write_secret(&mut tx, &secret).await?;
        let now = effects.task.as_ref().map_or_else(common::now_ms, |t| t.task_ms);
        Self::apply_effects(&mut tx, &secret, effects, now).await?;
        self.commit_change(tx, &secret.id).await?;
        Ok(())
    }

    async fn list_tasks(
        &self, project_id: &str, filter: &TaskFilter, after: Option<&str>, limit: u32,
    ) -> Result<(u64, Vec<TaskRecord>), StoreError> {
        let status = filter.status.map(|s| s.as_str());
        let statement = format!("SELECT COUNT(*) FROM csms_tasks WHERE {TASK_FILTER}");
        let query = sqlx::query_scalar(&statement)
            .bind(project_id)
            .bind(filter.secret_name.as_deref())
            .bind(status)
            .bind(filter.task_id.as_deref());
        let total: i64 = query.fetch_one(&self.pool).await.map_err(StoreError::db("counting tasks"))?;
        let statement = format!(
            "SELECT {TASK_COLUMNS} FROM csms_tasks WHERE {TASK_FILTER} AND ($5 IS NULL OR id > $5) \
             ORDER BY id LIMIT $6"
        );
        let query = sqlx::query_as(&statement)
            .bind(project_id)
            .bind(filter.secret_name.as_deref())
            .bind(status)
            .bind(filter.task_id.as_deref())
            .bind(after)
            .bind(i64::from(limit));
        let rows: Vec<TaskRow> = query.fetch_all(&self.pool).await.map_err(StoreError::db("listing tasks"))?;
        Ok((total as u64, rows.into_iter().map(TaskRecord::try_from).collect::<Result<_, _>>()?))
    }

    async fn due_rotations(
        &self, now_ms: i64, limit: u32, per_project: u32,
    ) -> Result<Vec<(String, String)>, StoreError> {
        // COMMON secrets are never due: nothing here rotates them (their
        // rotation function is FunctionGraph's), and a backlog of them
        // ahead in the order once stopped every database secret.
        let query = sqlx::query_as(
            "SELECT project_id, name FROM (SELECT project_id, name, next_rotation_ms, \
             ROW_NUMBER() OVER (PARTITION BY project_id ORDER BY next_rotation_ms, name) AS nth FROM secrets \
             WHERE auto_rotation AND state = 'ENABLED' AND secret_type <> 'COMMON' AND next_rotation_ms <= $1) due \
             WHERE nth <= $3 ORDER BY next_rotation_ms, project_id, name LIMIT $2",
        )
        .bind(now_ms)
        .bind(i64::from(limit))
        .bind(i64::from(per_project));
        query.fetch_all(&self.pool).await.map_err(StoreError::db("finding secrets due for rotation"))
    }

    async fn failures_in_a_row(
        &self, project_id: &str, secret_name: &str, since_ms: i64, limit: u32,
    ) -> Result<u32, StoreError> {
        let query = sqlx::query_scalar(
            "SELECT status FROM csms_tasks WHERE project_id = $1 AND secret_name = $2 AND task_ms >= $3 \
             ORDER BY id DESC LIMIT $4",
        )
        .bind(project_id)
        .bind(secret_name)
        .bind(since_ms)
        .bind(i64::from(limit));
        let statuses: Vec<String> = query.fetch_all(&self.pool).await.map_err(StoreError::db("reading tasks"))?;
        Ok(statuses.iter().take_while(|s| s.as_str() == TaskStatus::Failed.as_str()).count() as u32)
    }
}
