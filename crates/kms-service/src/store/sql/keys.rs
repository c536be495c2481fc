//! [`Keys`] on SQL: key records, their lifecycle, creation (one row, one
//! statement, or a group) and purging.

use super::rows::PurgedKeyRow;
use super::*;
use crate::store::Keys;

#[apply(sql_bounds!)]
#[async_trait]
impl<D: Dialect> Keys for SqlKeyStore<D> {
    async fn claim_root_fingerprint(&self, fingerprint: &str) -> Result<String, StoreError> {
        self.round_trips.tick();
        let query = sqlx::query(text::CLAIM_FINGERPRINT).bind(fingerprint.to_owned());
        query.execute(&self.pool).await.map_err(StoreError::db("storing the root key fingerprint"))?;
        let (stored,): (String,) = sqlx::query_as(text::READ_FINGERPRINT)
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::db("reading the root key fingerprint"))?;
        Ok(stored)
    }

    async fn create_key(&self, key: NewKey, quota: Option<u64>) -> Result<KeyRecord, CreateKeyError> {
        self.round_trips.tick();
        // Admitted while the project's count stays below this (see
        // QUOTA_HEADROOM); otherwise the locked transaction below.
        let below = quota.map_or(i64::MAX, |q| q.saturating_sub(QUOTA_HEADROOM).min(i64::MAX as u64) as i64);
        let key = if D::GROUPS_CREATES && below > 0 {
            match self.create_grouped(key, below).await {
                Ok(record) => return Ok(record),
                Err(key) => key,
            }
        } else {
            key
        };
        let r = &key.record;
        if let Some(sql) = D::CREATE_KEY_AT_ONCE {
            let query =
                bind_key!(sqlx::query_as(sql), r).bind(below).bind(key.wrapped_material.clone()).bind(Self::shard());
            let (inserted,): (i64,) = query.fetch_one(&self.pool).await.map_err(Self::insert_error)?;
            if inserted == 1 {
                return Ok(key.record);
            }
        }
        let mut tx = D::begin_write(&self.pool).await.map_err(StoreError::db("starting a transaction"))?;
        if let Some(quota) = quota {
            let unlocked = Self::count_in(&mut tx, &r.project_id).await? as u64;
            if unlocked + QUOTA_HEADROOM >= quota {
                // Near the quota: serialise this project's creators, so two
                // concurrent creates cannot both see "quota - 1" keys.
                D::lock_project(&mut tx, "kms_projects", &r.project_id)
                    .await
                    .map_err(StoreError::db("locking the project"))?;
                if Self::count_in(&mut tx, &r.project_id).await? as u64 >= quota {
                    return Err(CreateKeyError::QuotaExceeded);
                }
            }
        }
        Self::insert_key(&mut tx, &key).await?;
        Self::add_count(&mut tx, &r.project_id, r.spec, r.state, r.default_key, 1).await?;
        tx.commit().await.map_err(StoreError::db("committing a new key"))?;
        Ok(key.record)
    }

    async fn get_key(&self, project_id: &str, key_id: KeyId) -> Result<Option<KeyRecord>, StoreError> {
        self.select_key(project_id, "key_id", key_id.to_string()).await
    }

    async fn find_by_alias(&self, project_id: &str, alias: &str) -> Result<Option<KeyRecord>, StoreError> {
        self.select_key(project_id, "key_alias", alias.to_owned()).await
    }

    async fn list_keys(
        &self, project_id: &str, filter: &KeyFilter, offset: u64, limit: u32,
    ) -> Result<(Vec<KeyRecord>, u64), StoreError> {
        self.round_trips.tick();
        let state = filter.state.map(|s| s as i32);
        let spec = filter.spec.map(|s| s.as_str().to_owned());
        let statement = text::list_page();
        let query = sqlx::query_as(&statement)
            .bind(project_id.to_owned())
            .bind(state)
            .bind(spec.clone())
            .bind(i64::from(limit))
            .bind(offset as i64);
        let rows: Vec<KeyRow> = query.fetch_all(&self.pool).await.map_err(StoreError::db("listing keys"))?;
        let statement = text::list_count();
        let query = sqlx::query_as(&statement).bind(project_id.to_owned()).bind(state).bind(spec);
        let (total,): (i64,) = query.fetch_one(&self.pool).await.map_err(StoreError::db("counting keys"))?;
        let keys = rows.into_iter().map(KeyRecord::try_from).collect::<Result<_, _>>()?;
        Ok((keys, total as u64))
    }

    async fn update_key(
        &self, project_id: &str, key_id: KeyId, change: KeyMutation,
    ) -> Result<KeyRecord, UpdateKeyError> {
        self.update_locked(project_id, key_id, change, None).await
    }

    async fn get_key_any(&self, key_id: KeyId) -> Result<Option<KeyRecord>, StoreError> {
        self.round_trips.tick();
        let statement = format!("SELECT {} FROM keys WHERE key_id = $1", text::KEY_COLUMNS);
        let query = sqlx::query_as(&statement).bind(key_id.to_string());
        let row: Option<KeyRow> = query.fetch_optional(&self.pool).await.map_err(StoreError::db("reading a key"))?;
        row.map(KeyRecord::try_from).transpose()
    }

    async fn count_user_keys(&self, project_id: &str) -> Result<u64, StoreError> {
        self.round_trips.tick();
        let query = sqlx::query_as(text::COUNT_USER_KEYS).bind(project_id.to_owned());
        let (n,): (i64,) = query.fetch_one(&self.pool).await.map_err(StoreError::db("counting keys"))?;
        Ok(n as u64)
    }

    async fn purge_due(&self, now_ms: i64) -> Result<Vec<KeyId>, StoreError> {
        self.round_trips.tick();
        let query = sqlx::query_as(text::DUE_KEYS).bind(now_ms);
        let due: Vec<(String,)> =
            query.fetch_all(&self.pool).await.map_err(StoreError::db("finding keys due for deletion"))?;
        let mut deleted = Vec::new();
        for (id,) in due {
            if self.purge_one(&id, now_ms).await?
                && let Ok(uuid) = uuid::Uuid::parse_str(&id)
            {
                deleted.push(KeyId(uuid));
            }
        }
        Ok(deleted)
    }

    async fn watch(&self, sink: ChangeSink, shutdown: CancellationToken) -> Result<bool, StoreError> {
        let feed: common::db::FeedSink = std::sync::Arc::new(move |event| match event {
            FeedEvent::Changed(payload) => {
                if let Ok(uuid) = uuid::Uuid::parse_str(&payload) {
                    sink(ChangeEvent::Key(KeyId(uuid)));
                }
            }
            FeedEvent::Reset { healthy } => sink(ChangeEvent::Reset { healthy }),
        });
        D::watch(&self.pool, CHANGE_CHANNEL, feed, shutdown).await
    }

    fn round_trips(&self) -> u64 {
        self.round_trips.get()
    }
}

#[apply(sql_bounds!)]
impl<D: Dialect> SqlKeyStore<D> {
    async fn count_in(tx: &mut Transaction<'static, D>, project_id: &str) -> Result<i64, StoreError> {
        let query = sqlx::query_as(text::COUNT_USER_KEYS).bind(project_id.to_owned());
        let (n,): (i64,) = query.fetch_one(&mut **tx).await.map_err(StoreError::db("counting keys"))?;
        Ok(n)
    }

    /// Queues `key` for a grouped create and waits for its statement's
    /// commit; the key back when the group did not insert it (alias
    /// taken, project near the quota, queue full) or the group failed, for
    /// the one-row path to decide and to answer.
    async fn create_grouped(&self, key: NewKey, below: i64) -> Result<KeyRecord, NewKey> {
        let group = self.groups.get_or_init(|| {
            // Rows in (project, alias) order, so that two groups that meet
            // on an alias wait for each other in one direction only.
            let order = |a: &(NewKey, i64), b: &(NewKey, i64)| {
                (&a.0.record.project_id, &a.0.record.alias).cmp(&(&b.0.record.project_id, &b.0.record.alias))
            };
            let pool = self.pool.clone();
            Group::start(common::group::CREATES, order, move |batch: Vec<(NewKey, i64)>| {
                let pool = pool.clone();
                async move {
                    let keys: Vec<(&NewKey, i64)> = batch.iter().map(|(k, below)| (k, *below)).collect();
                    match D::create_keys_grouped(&pool, &keys, Self::shard()).await {
                        Ok(inserted) => inserted,
                        Err(e) => {
                            tracing::warn!(error = %e, creates = keys.len(), "a grouped create failed; each retries alone");
                            vec![false; keys.len()]
                        }
                    }
                }
            })
        });
        let record = key.record.clone();
        let wrapped = key.wrapped_material.clone();
        match group.try_run((key, below)).await {
            Ok(Some(true)) => Ok(record),
            // Not inserted, or the statement failed (the one-row path
            // meets the same error, or succeeds): its outcome is known, no
            // row of this key exists.
            Ok(_) => Err(NewKey { record, wrapped_material: wrapped }),
            // The queue is full.
            Err((key, _)) => Err(key),
        }
    }

    /// A unique violation on insert is the alias (the key id is a fresh UUID).
    fn insert_error(e: sqlx::Error) -> CreateKeyError {
        if common::db::is_unique_violation(&e) {
            CreateKeyError::AliasTaken
        } else {
            StoreError::db("inserting a key")(e).into()
        }
    }

    async fn insert_key(tx: &mut Transaction<'static, D>, key: &NewKey) -> Result<(), CreateKeyError> {
        let r = &key.record;
        let inserted = bind_key!(sqlx::query(text::INSERT_KEY), r).execute(&mut **tx).await;
        if let Err(e) = inserted {
            return Err(Self::insert_error(e));
        }
        if let Some(wrapped) = &key.wrapped_material {
            let query = sqlx::query(text::INSERT_MATERIAL)
                .bind(r.key_id.to_string())
                .bind(1_i32)
                .bind(wrapped.clone())
                .bind(r.creation_ms);
            query.execute(&mut **tx).await.map_err(StoreError::db("inserting key material"))?;
        }
        Ok(())
    }

    async fn select_key(&self, project_id: &str, by: &str, value: String) -> Result<Option<KeyRecord>, StoreError> {
        self.round_trips.tick();
        let statement = text::select_one(by);
        let query = sqlx::query_as(&statement).bind(project_id.to_owned()).bind(value);
        let row: Option<KeyRow> = query.fetch_optional(&self.pool).await.map_err(StoreError::db("reading a key"))?;
        row.map(KeyRecord::try_from).transpose()
    }

    /// Deletes one due key with its material in a short transaction; a
    /// replica that loses the race deletes nothing. True when it deleted.
    async fn purge_one(&self, key_id: &str, now_ms: i64) -> Result<bool, StoreError> {
        let mut tx = D::begin_write(&self.pool).await.map_err(StoreError::db("starting a transaction"))?;
        let query = sqlx::query(text::DELETE_MATERIALS).bind(key_id.to_owned());
        query.execute(&mut *tx).await.map_err(StoreError::db("destroying key material"))?;
        let query = sqlx::query_as(text::DELETE_DUE_KEY).bind(key_id.to_owned()).bind(now_ms);
        let gone: Option<PurgedKeyRow> =
            query.fetch_optional(&mut *tx).await.map_err(StoreError::db("deleting a key"))?;
        let Some(PurgedKeyRow { project_id, key_spec: spec, default_key }) = gone else {
            tx.rollback().await.map_err(StoreError::db("rolling back"))?;
            return Ok(false);
        };
        let spec = KeySpec::parse(&spec).ok_or_else(|| StoreError::Corrupt(key_id.to_owned()))?;
        Self::add_count(&mut tx, &project_id, spec, KeyState::PendingDeletion, default_key, -1).await?;
        D::notify(&mut tx, CHANGE_CHANNEL, key_id).await.map_err(StoreError::db("notifying a key change"))?;
        tx.commit().await.map_err(StoreError::db("committing a key deletion"))?;
        Ok(true)
    }
}
