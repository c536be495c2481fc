//! [`Instances`](crate::store::Instances) on SQL: the registered database
//! instances.

use async_trait::async_trait;
use macro_rules_attribute::apply;

use super::{Dialect, InstanceRow, SqlSecretStore, rows::INSTANCE_COLUMNS};
use crate::{
    domain::instances::InstanceRecord,
    store::{Instances, StoreError},
};

#[apply(sql_bounds!)]
#[async_trait]
impl<D: Dialect> Instances for SqlSecretStore<D> {
    async fn add_instance(&self, i: &InstanceRecord) -> Result<bool, StoreError> {
        let query = sqlx::query(
            "INSERT INTO csms_db_instances (project_id, id, engine, display_url, sealed_url, create_ms) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(i.project_id.as_str())
        .bind(i.id.as_str())
        .bind(i.engine.as_str())
        .bind(i.display_url.as_str())
        .bind(i.sealed_url.as_slice())
        .bind(i.create_ms);
        match query.execute(&self.pool).await {
            Ok(_) => Ok(true),
            Err(e) if common::db::is_unique_violation(&e) => Ok(false),
            Err(e) => Err(StoreError::db("registering a database instance")(e)),
        }
    }

    async fn get_instance(&self, project_id: &str, id: &str) -> Result<Option<InstanceRecord>, StoreError> {
        let statement = format!("SELECT {INSTANCE_COLUMNS} FROM csms_db_instances WHERE project_id = $1 AND id = $2");
        let query = sqlx::query_as(&statement).bind(project_id).bind(id);
        let row: Option<InstanceRow> =
            query.fetch_optional(&self.pool).await.map_err(StoreError::db("reading a database instance"))?;
        row.map(InstanceRecord::try_from).transpose()
    }

    async fn list_instances(&self, project_id: Option<&str>) -> Result<Vec<InstanceRecord>, StoreError> {
        let statement = format!(
            "SELECT {INSTANCE_COLUMNS} FROM csms_db_instances WHERE ($1 IS NULL OR project_id = $1) \
             ORDER BY project_id, id"
        );
        let query = sqlx::query_as(&statement).bind(project_id);
        let rows: Vec<InstanceRow> =
            query.fetch_all(&self.pool).await.map_err(StoreError::db("listing database instances"))?;
        rows.into_iter().map(InstanceRecord::try_from).collect()
    }

    async fn remove_instance(&self, project_id: &str, id: &str) -> Result<bool, StoreError> {
        let query =
            sqlx::query("DELETE FROM csms_db_instances WHERE project_id = $1 AND id = $2").bind(project_id).bind(id);
        let removed = query.execute(&self.pool).await.map_err(StoreError::db("removing a database instance"))?;
        Ok(D::rows_affected(&removed) == 1)
    }
}
