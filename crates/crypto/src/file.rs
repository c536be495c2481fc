//! Key files: written once, readable only by their owner.

use std::path::Path;

use zeroize::Zeroizing;

use crate::SecretBytes;

/// Writes a new file readable only by its owner (0600), creating parent
/// folders; refuses to replace an existing file, so a key is never
/// overwritten by accident. The data reaches the disk before it returns.
pub fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Why a hex key file did not load.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The text is not hexadecimal of the expected length.
    #[error("{path} must hold {hex_len} hexadecimal characters")]
    Malformed {
        /// The file.
        path: String,
        /// Characters expected.
        hex_len: usize,
    },
}

/// Reads a file holding exactly `len` bytes as hex (surrounding white
/// space ignored); the text and the bytes are wiped after use.
pub fn read_hex_key_file(path: &Path, len: usize) -> Result<SecretBytes, KeyFileError> {
    let name = || path.display().to_string();
    let text =
        Zeroizing::new(std::fs::read_to_string(path).map_err(|source| KeyFileError::Io { path: name(), source })?);
    let malformed = || KeyFileError::Malformed { path: name(), hex_len: len * 2 };
    let mut key = SecretBytes::new(vec![0u8; len]);
    hex::decode_to_slice(text.trim(), key.expose_mut()).map_err(|_| malformed())?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_files_are_0600_and_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/key");
        write_private_file(&path, b"00ff").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert!(write_private_file(&path, b"11").is_err());
        assert_eq!(read_hex_key_file(&path, 2).unwrap().expose(), &[0x00, 0xff]);
        assert!(matches!(read_hex_key_file(&path, 3), Err(KeyFileError::Malformed { hex_len: 6, .. })));
        assert!(matches!(read_hex_key_file(&dir.path().join("none"), 2), Err(KeyFileError::Io { .. })));
    }
}
