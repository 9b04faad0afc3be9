//! The certificates mirrored into a directory laid out like a Secret volume, for a webhook
//! that reads them from disk.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::info;

use super::error::Error;
use super::plan::{CA_CRT, Stored, TLS_CRT, TLS_KEY};

/// Write `tls.crt`, `tls.key`, `ca.crt` the way the kubelet fills a Secret volume: files in a
/// fresh `..<time>` directory, the `..data` symlink swapped to it by rename, and top-level
/// symlinks through `..data`. A reader sees the old set or the new set, never a mix of files.
/// Returns whether anything changed.
pub async fn write_cert_dir(
    dir: &Path,
    tls_crt: &str,
    tls_key: &str,
    ca_crt: &str,
) -> Result<bool, Error> {
    let dir = dir.to_path_buf();
    let files = [
        (TLS_CRT, tls_crt.to_string()),
        (TLS_KEY, tls_key.to_string()),
        (CA_CRT, ca_crt.to_string()),
    ];
    tokio::task::spawn_blocking(move || write_cert_dir_blocking(&dir, &files))
        .await
        .map_err(|e| Error::Io {
            path: PathBuf::new(),
            source: io::Error::other(e),
        })?
}

pub(super) async fn mirror(dir: &Path, stored: &Stored) -> Result<(), Error> {
    let (Some(crt), Some(key), Some(ca)) = (&stored.tls_crt, &stored.tls_key, &stored.ca_crt)
    else {
        return Ok(());
    };
    if write_cert_dir(dir, crt, key, ca).await? {
        info!(dir = %dir.display(), "webhook certificate files updated");
    }
    Ok(())
}

fn write_cert_dir_blocking(dir: &Path, files: &[(&str, String)]) -> Result<bool, Error> {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    let unchanged = files.iter().all(|(name, content)| {
        std::fs::read(dir.join(name)).is_ok_and(|c| c == content.as_bytes())
    });
    if unchanged {
        return Ok(false);
    }
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let version = format!("..{nanos}");
    let version_dir = dir.join(&version);
    std::fs::create_dir(&version_dir).map_err(io_err(&version_dir))?;
    for (name, content) in files {
        let path = version_dir.join(name);
        std::fs::write(&path, content).map_err(io_err(&path))?;
        // Keys stay private; the webhook runs as the same user.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(io_err(&path))?;
    }
    let data_tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&data_tmp);
    symlink(&version, &data_tmp).map_err(io_err(&data_tmp))?;
    let data = dir.join("..data");
    std::fs::rename(&data_tmp, &data).map_err(io_err(&data))?;
    for (name, _) in files {
        let link = dir.join(name);
        let target = Path::new("..data").join(name);
        if std::fs::read_link(&link).is_ok_and(|t| t == target) {
            continue;
        }
        let tmp = dir.join(format!(".{name}.tmp"));
        let _ = std::fs::remove_file(&tmp);
        symlink(&target, &tmp).map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, &link).map_err(io_err(&link))?;
    }
    // Old versions are unreachable now; a reader holding one open keeps its file.
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("..")
                && name != version
                && name != "..data"
                && entry.path().is_dir()
            {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    Ok(true)
}
