//! Resource tags as both services have them: KMS tags keys (kms-api.md
//! §3.2), CSMS tags secrets (csms-api.md §2.6). The operations are the
//! same — set one, delete one, list a resource's, the project's keys with
//! their values, a batch `create`/`delete`, and the `filter`/`count`
//! resource query — and so are the limits of the query; what differs is
//! the characters and lengths a tag may have, which each service names in
//! a [`TagRules`]. The SQL is shared too ([`sql`]): both store tags in a
//! table of the same shape.
//!
//! Refusals are [`TagFault`]s; each service maps them to its own error
//! codes.

use std::collections::{BTreeMap, BTreeSet, HashSet};

/// A tag: key and value.
pub type Tag = (String, String);

/// A tag key and the values a query accepts (empty: any value).
pub type TagFilter = (String, Vec<String>);

/// Why a tag request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TagFault {
    /// A tag list that must have items has none.
    #[error("the tag list is empty")]
    EmptyList,
    /// More tags in one request than a resource may have.
    #[error("too many tags in the request")]
    ListTooLong,
    /// A tag key breaks the rules.
    #[error("invalid tag key")]
    InvalidKey,
    /// A tag value breaks the rules.
    #[error("invalid tag value")]
    InvalidValue,
    /// `action` is not one of the operation's.
    #[error("invalid action")]
    InvalidAction,
    /// The resource would have more tags than allowed.
    #[error("too many tags on the resource")]
    TooManyTags,
    /// The tag to delete does not exist.
    #[error("no such tag")]
    NotFound,
    /// The query's page size is outside 1-1000.
    #[error("limit must be 1 to 1000")]
    InvalidLimit,
    /// The query's offset is given with `count`.
    #[error("offset is not allowed with action count")]
    OffsetNotAllowed,
    /// More than 10 tag keys in a query.
    #[error("at most 10 tag filters")]
    TooManyFilters,
    /// More than 10 values, or repeated values, for one key of a query.
    #[error("a tag filter takes at most 10 distinct values")]
    TooManyValues,
    /// A `matches` value longer than 255 characters.
    #[error("a matches value is at most 255 characters")]
    InvalidMatchValue,
}

/// What a tag may be made of, per service.
#[derive(Debug, Clone, Copy)]
pub struct TagRules {
    /// Longest key, in characters.
    pub max_key_chars: usize,
    /// Longest value, in characters.
    pub max_value_chars: usize,
    /// Most tags per resource.
    pub max_tags: usize,
    /// Whether a character may appear in a key.
    pub key_char: fn(char) -> bool,
    /// Whether a character may appear in a value.
    pub value_char: fn(char) -> bool,
    /// Keys may not start with this (system tags).
    pub reserved_key_prefix: Option<&'static str>,
    /// Keys may not start or end with whitespace.
    pub trimmed_keys: bool,
}

/// Most tag keys in one resource query, and values per key.
pub const MAX_QUERY_FILTERS: usize = 10;
/// The resource query's default and largest page.
pub const QUERY_LIMITS: (u32, u32) = (10, 1000);

impl TagRules {
    /// Checks a tag key.
    pub fn check_key(&self, key: &str) -> Result<(), TagFault> {
        let ok = !key.is_empty()
            && key.chars().count() <= self.max_key_chars
            && key.chars().all(self.key_char)
            && self.reserved_key_prefix.is_none_or(|prefix| !key.starts_with(prefix))
            && (!self.trimmed_keys || key.trim() == key);
        if ok { Ok(()) } else { Err(TagFault::InvalidKey) }
    }

    /// Checks a tag value (which may be empty).
    pub fn check_value(&self, value: &str) -> Result<(), TagFault> {
        let ok = value.chars().count() <= self.max_value_chars && value.chars().all(self.value_char);
        if ok { Ok(()) } else { Err(TagFault::InvalidValue) }
    }

    /// Checks one tag.
    pub fn check(&self, tag: &Tag) -> Result<(), TagFault> {
        self.check_key(&tag.0)?;
        self.check_value(&tag.1)
    }

    /// Checks a batch request: `create` sets the tags, `delete` removes
    /// their keys (values ignored, absent keys skipped).
    pub fn batch(&self, action: &str, tags: Vec<Tag>) -> Result<Batch, TagFault> {
        if tags.is_empty() {
            return Err(TagFault::EmptyList);
        }
        if tags.len() > self.max_tags {
            return Err(TagFault::ListTooLong);
        }
        match action {
            "create" => {
                tags.iter().try_for_each(|tag| self.check(tag))?;
                Ok(Batch::Put(tags))
            }
            "delete" => {
                tags.iter().try_for_each(|(key, _)| self.check_key(key))?;
                Ok(Batch::Remove(tags.into_iter().map(|(key, _)| key).collect()))
            }
            _ => Err(TagFault::InvalidAction),
        }
    }
}

/// A checked batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Batch {
    /// Set these tags.
    Put(Vec<Tag>),
    /// Remove these keys.
    Remove(Vec<String>),
}

/// The resource query (`resource_instances/action`).
#[derive(Debug, Clone, Default)]
pub struct ResourceQuery {
    /// `filter` (a page of resources) or `count`.
    pub action: String,
    /// Page size (`None`: 10).
    pub limit: Option<u32>,
    /// Resources to skip (`None`: 0; refused with `count`).
    pub offset: Option<u32>,
    /// Every filter must match one of the resource's tags.
    pub tags: Vec<TagFilter>,
    /// Case-insensitive substring of the resource's name (an empty one
    /// matches nothing, as documented).
    pub name_contains: Option<String>,
}

/// What the resource query answers.
#[derive(Debug)]
pub struct QueryAnswer<T> {
    /// The page (empty for `count`).
    pub resources: Vec<(T, Vec<Tag>)>,
    /// How many match in all.
    pub total_count: u64,
}

impl ResourceQuery {
    /// Checks the query, then keeps the resources (each with its name and
    /// tags) that match, in the order given.
    pub fn run<T>(
        self, rules: &TagRules, all: Vec<(T, Vec<Tag>)>, name: impl Fn(&T) -> &str,
    ) -> Result<QueryAnswer<T>, TagFault> {
        let count_only = match self.action.as_str() {
            "filter" => false,
            "count" => true,
            _ => return Err(TagFault::InvalidAction),
        };
        if count_only && self.offset.is_some() {
            return Err(TagFault::OffsetNotAllowed);
        }
        let limit = match self.limit {
            None => QUERY_LIMITS.0,
            Some(n @ 1..) if n <= QUERY_LIMITS.1 => n,
            Some(_) => return Err(TagFault::InvalidLimit),
        };
        if self.tags.len() > MAX_QUERY_FILTERS {
            return Err(TagFault::TooManyFilters);
        }
        for (key, values) in &self.tags {
            rules.check_key(key)?;
            let distinct: HashSet<_> = values.iter().collect();
            if values.len() > MAX_QUERY_FILTERS || distinct.len() != values.len() {
                return Err(TagFault::TooManyValues);
            }
        }
        let wanted = self.name_contains.as_ref().map(|n| n.to_lowercase());
        if wanted.as_ref().is_some_and(|n| n.chars().count() > 255) {
            return Err(TagFault::InvalidMatchValue);
        }
        let matches = |resource: &T, tags: &[Tag]| {
            let tags_match = self
                .tags
                .iter()
                .all(|(key, values)| tags.iter().any(|(k, v)| k == key && (values.is_empty() || values.contains(v))));
            let name_match =
                wanted.as_ref().is_none_or(|n| !n.is_empty() && name(resource).to_lowercase().contains(n.as_str()));
            tags_match && name_match
        };
        let matching: Vec<_> = all.into_iter().filter(|(resource, tags)| matches(resource, tags)).collect();
        let total_count = matching.len() as u64;
        let resources = if count_only {
            Vec::new()
        } else {
            matching.into_iter().skip(self.offset.unwrap_or(0) as usize).take(limit as usize).collect()
        };
        Ok(QueryAnswer { resources, total_count })
    }
}

/// Every tag key of `tags` with its distinct values, both sorted.
pub fn project_tags(tags: impl IntoIterator<Item = Tag>) -> Vec<(String, Vec<String>)> {
    let mut by_key: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (key, value) in tags {
        by_key.entry(key).or_default().insert(value);
    }
    by_key.into_iter().map(|(key, values)| (key, values.into_iter().collect())).collect()
}

#[cfg(feature = "sql")]
pub mod sql {
    //! The SQL of a tag table `(owner, tag_key, tag_value)` with primary
    //! key `(owner, tag_key)`, whose owner rows carry a `project_id`. Each
    //! function runs in the caller's transaction or pool, so that a
    //! service checks its resource and writes its tags atomically.

    use sqlx::{Database, Executor, IntoArguments, Pool, Transaction};

    use super::{Tag, TagFault};
    use crate::db::StoreError;

    /// Where a service keeps its tags.
    #[derive(Debug, Clone, Copy)]
    pub struct TagTable {
        /// The tag table, e.g. `key_tags`.
        pub table: &'static str,
        /// Its column naming the owner, e.g. `key_id`.
        pub owner: &'static str,
        /// The owners' table, e.g. `keys`.
        pub owners: &'static str,
        /// The owners' id column, e.g. `key_id`.
        pub owner_id: &'static str,
    }

    /// Why a tag write failed.
    #[derive(Debug, thiserror::Error)]
    pub enum TagWriteError {
        /// A rule refused it (too many tags, no such tag).
        #[error(transparent)]
        Fault(#[from] TagFault),
        /// The database failed.
        #[error(transparent)]
        Store(#[from] StoreError),
    }

    /// Sets `tags` on `owner` (a key set again gets the new value) and
    /// refuses, leaving the transaction to roll back, when the owner would
    /// have more than `max` tags.
    pub async fn put<D>(
        tx: &mut Transaction<'static, D>, table: &TagTable, owner: &str, tags: &[Tag], max: usize,
    ) -> Result<(), TagWriteError>
    where
        D: Database,
        for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
        for<'q> D::Arguments<'q>: IntoArguments<'q, D>,
        for<'q> String: sqlx::Encode<'q, D> + sqlx::Type<D>,
        for<'r> (i64,): sqlx::FromRow<'r, D::Row>,
    {
        let TagTable { table: t, owner: o, .. } = table;
        let upsert = format!(
            "INSERT INTO {t} ({o}, tag_key, tag_value) VALUES ($1, $2, $3) \
             ON CONFLICT ({o}, tag_key) DO UPDATE SET tag_value = excluded.tag_value"
        );
        for (key, value) in tags {
            let query = sqlx::query(&upsert).bind(owner.to_owned()).bind(key.clone()).bind(value.clone());
            query.execute(&mut **tx).await.map_err(StoreError::db("writing a tag"))?;
        }
        let statement = format!("SELECT COUNT(*) FROM {t} WHERE {o} = $1");
        let query = sqlx::query_as(&statement).bind(owner.to_owned());
        let (count,): (i64,) = query.fetch_one(&mut **tx).await.map_err(StoreError::db("counting tags"))?;
        if count as usize > max {
            return Err(TagFault::TooManyTags.into());
        }
        Ok(())
    }

    /// Removes the tag keys `keys` of `owner`; with `must_exist`, a key
    /// that is not there refuses the whole change.
    pub async fn delete<D>(
        tx: &mut Transaction<'static, D>, table: &TagTable, owner: &str, keys: &[String], must_exist: bool,
    ) -> Result<(), TagWriteError>
    where
        D: crate::db::SqlDialect,
        for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
        for<'q> D::Arguments<'q>: IntoArguments<'q, D>,
        for<'q> String: sqlx::Encode<'q, D> + sqlx::Type<D>,
    {
        let TagTable { table: t, owner: o, .. } = table;
        let delete = format!("DELETE FROM {t} WHERE {o} = $1 AND tag_key = $2");
        for key in keys {
            let query = sqlx::query(&delete).bind(owner.to_owned()).bind(key.clone());
            let deleted = query.execute(&mut **tx).await.map_err(StoreError::db("deleting a tag"))?;
            if must_exist && D::rows_affected(&deleted) == 0 {
                return Err(TagFault::NotFound.into());
            }
        }
        Ok(())
    }

    /// The tags of `owner`, by key.
    pub async fn list<D>(pool: &Pool<D>, table: &TagTable, owner: &str) -> Result<Vec<Tag>, StoreError>
    where
        D: Database,
        for<'c> &'c Pool<D>: Executor<'c, Database = D>,
        for<'q> D::Arguments<'q>: IntoArguments<'q, D>,
        for<'q> String: sqlx::Encode<'q, D> + sqlx::Type<D>,
        for<'r> (String, String): sqlx::FromRow<'r, D::Row>,
    {
        let TagTable { table: t, owner: o, .. } = table;
        sqlx::query_as(&format!("SELECT tag_key, tag_value FROM {t} WHERE {o} = $1 ORDER BY tag_key"))
            .bind(owner.to_owned())
            .fetch_all(pool)
            .await
            .map_err(StoreError::db("listing tags"))
    }

    /// Every tag of the project's owners: (owner, key, value), by key and
    /// value.
    pub async fn of_project<D>(
        pool: &Pool<D>, table: &TagTable, project_id: &str,
    ) -> Result<Vec<(String, String, String)>, StoreError>
    where
        D: Database,
        for<'c> &'c Pool<D>: Executor<'c, Database = D>,
        for<'q> D::Arguments<'q>: IntoArguments<'q, D>,
        for<'q> String: sqlx::Encode<'q, D> + sqlx::Type<D>,
        for<'r> (String, String, String): sqlx::FromRow<'r, D::Row>,
    {
        let TagTable { table: t, owner: o, owners, owner_id } = table;
        let query = format!(
            "SELECT t.{o}, t.tag_key, t.tag_value FROM {t} t JOIN {owners} r ON r.{owner_id} = t.{o} \
             WHERE r.project_id = $1 ORDER BY t.tag_key, t.tag_value"
        );
        sqlx::query_as(&query)
            .bind(project_id.to_owned())
            .fetch_all(pool)
            .await
            .map_err(StoreError::db("listing project tags"))
    }

    /// Groups `of_project` rows by owner.
    pub fn by_owner(rows: Vec<(String, String, String)>) -> std::collections::HashMap<String, Vec<Tag>> {
        let mut map: std::collections::HashMap<String, Vec<Tag>> = std::collections::HashMap::new();
        for (owner, key, value) in rows {
            map.entry(owner).or_default().push((key, value));
        }
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: TagRules = TagRules {
        max_key_chars: 36,
        max_value_chars: 43,
        max_tags: 20,
        key_char: |c| !c.is_control() && !"*<>\\=".contains(c),
        value_char: |c| !c.is_control() && !"*<>\\=".contains(c),
        reserved_key_prefix: None,
        trimmed_keys: false,
    };

    fn tag(k: &str, v: &str) -> Tag {
        (k.to_owned(), v.to_owned())
    }

    #[test]
    fn batches_are_checked_whole() {
        assert_eq!(RULES.batch("create", vec![]), Err(TagFault::EmptyList));
        assert_eq!(RULES.batch("upsert", vec![tag("a", "b")]), Err(TagFault::InvalidAction));
        assert_eq!(RULES.batch("create", vec![tag("a", "b"), tag("c=", "d")]), Err(TagFault::InvalidKey));
        assert_eq!(RULES.batch("create", vec![tag("a", &"v".repeat(44))]), Err(TagFault::InvalidValue));
        assert_eq!(RULES.batch("delete", vec![tag("a", "any*")]), Ok(Batch::Remove(vec!["a".into()])));
        assert_eq!(
            RULES.batch("create", (0..21).map(|i| tag(&i.to_string(), "")).collect()),
            Err(TagFault::ListTooLong)
        );
    }

    #[test]
    fn the_query_filters_pages_and_counts() {
        let all: Vec<(&str, Vec<Tag>)> = vec![
            ("orders-a", vec![tag("env", "prod"), tag("team", "x")]),
            ("orders-b", vec![tag("env", "test")]),
            ("billing", vec![tag("env", "prod")]),
        ];
        let q = |action: &str, tags: Vec<TagFilter>, name: Option<&str>| ResourceQuery {
            action: action.into(),
            tags,
            name_contains: name.map(str::to_owned),
            ..Default::default()
        };
        let prod = vec![("env".to_owned(), vec!["prod".to_owned()])];
        let r = q("filter", prod.clone(), None).run(&RULES, all.clone(), |n| n).unwrap();
        assert_eq!((r.total_count, r.resources.len()), (2, 2));
        let r = q("filter", prod.clone(), Some("ORDERS")).run(&RULES, all.clone(), |n| n).unwrap();
        assert_eq!(r.resources.iter().map(|r| r.0).collect::<Vec<_>>(), ["orders-a"]);
        let r = q("count", vec![], Some("")).run(&RULES, all.clone(), |n| n).unwrap();
        assert_eq!((r.total_count, r.resources.len()), (0, 0));
        let mut offset = q("count", vec![], None);
        offset.offset = Some(0);
        assert_eq!(offset.run(&RULES, all.clone(), |n| n).unwrap_err(), TagFault::OffsetNotAllowed);
        let mut big = q("filter", vec![], None);
        big.limit = Some(1001);
        assert_eq!(big.run(&RULES, all.clone(), |n| n).unwrap_err(), TagFault::InvalidLimit);
        let twice = vec![("env".to_owned(), vec!["a".to_owned(), "a".to_owned()])];
        assert_eq!(q("filter", twice, None).run(&RULES, all, |n| n).unwrap_err(), TagFault::TooManyValues);
    }
}
