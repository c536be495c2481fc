//! Unix sockets of the node agents (the KMS v2 plugin, the CSI provider):
//! only root's neighbours beside them (kube-apiserver, the CSI driver) may
//! connect.

use std::{
    os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt},
    path::Path,
};

use anyhow::Context;

/// Binds `path` as a unix socket that only this process's user can reach:
/// the socket is made 0600 inside a directory that is 0700 and owned by
/// that same user. The directory is made if missing and tightened if
/// looser. Between `bind` and `chmod` the socket has the umask's mode;
/// only the private directory makes that window harmless, and only a
/// directory of our own keeps another user from swapping the socket for
/// theirs. A stale socket of an earlier run is replaced.
pub fn bind_private(path: &Path) -> anyhow::Result<tokio::net::UnixListener> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("making the socket's directory {}", dir.display()))?;
    }
    let meta = std::fs::metadata(dir).with_context(|| format!("reading {}", dir.display()))?;
    anyhow::ensure!(meta.is_dir(), "{} is not a directory", dir.display());
    if meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("making {} private (0700)", dir.display()))?;
        tracing::warn!(dir = %dir.display(), "the socket's directory was open to others; it is now 0700");
    }
    if std::fs::symlink_metadata(path).is_ok() {
        std::fs::remove_file(path).with_context(|| format!("removing the stale socket {}", path.display()))?;
    }
    let listener = tokio::net::UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    // The socket is ours by construction: a directory of another user
    // could hold a socket of theirs by the time a client dials.
    let (ours, owner) = (std::fs::metadata(path)?.uid(), std::fs::metadata(dir)?.uid());
    if ours != owner {
        let _ = std::fs::remove_file(path);
        anyhow::bail!("{} belongs to another user (uid {owner}, ours {ours}); refusing to serve there", dir.display());
    }
    Ok(listener)
}

/// Serves `routes` on a private socket at `path` ([`bind_private`]) until
/// `shutdown`, then removes the socket: the serving loop of both node
/// agents.
pub async fn serve_private(
    path: &Path, routes: tonic::transport::server::Router, shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let listener = bind_private(path)?;
    let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
    routes.serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned()).await?;
    let _ = std::fs::remove_file(path);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().mode() & 0o777
    }

    #[tokio::test]
    async fn sockets_are_made_private_in_a_private_directory() {
        let base = tempfile::tempdir().unwrap();
        // Missing: made 0700 (the umask would give 0755).
        let fresh = base.path().join("a/b/plugin.sock");
        let _listener = bind_private(&fresh).unwrap();
        assert_eq!((mode(fresh.parent().unwrap()), mode(&fresh)), (0o700, 0o600));
        // Existing and open to others (as a hostPath made by the kubelet):
        // tightened. A stale socket is replaced.
        let open = base.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let socket = open.join("provider.sock");
        drop(bind_private(&socket).unwrap());
        let _again = bind_private(&socket).unwrap();
        assert_eq!((mode(&open), mode(&socket)), (0o700, 0o600));
    }
}
