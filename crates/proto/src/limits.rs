//! Ranges that both ends of an internal API check: the gateway, before it
//! spends work on a request, and the service, which owns the rule. Written
//! once here, beside the messages they bound.

/// The most secrets one batch-import carries (csms-api.md §3.3). The
/// gateway counts the elements it could not even read, so it checks the
/// whole list before the service sees the rest.
pub const MAX_BATCH_IMPORT: usize = 1000;
