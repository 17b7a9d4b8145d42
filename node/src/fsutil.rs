//! Small file-system helpers.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The node directory's mode: its key, database and control socket are for
/// the node's own user alone.
pub const PRIVATE_DIR: u32 = 0o700;
/// The mode of the node's files.
pub const PRIVATE_FILE: u32 = 0o600;

/// Clears the group and other permission bits of `path`, so it is no wider
/// than `mode`. Returns the mode it had if that was wider, so the caller can
/// say it tightened it.
pub fn make_private(path: &Path, mode: u32) -> std::io::Result<Option<u32>> {
    let current = std::fs::metadata(path)?.permissions().mode() & 0o7777;
    if current & 0o077 == 0 {
        return Ok(None);
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(Some(current))
}

/// Creates `path` empty with mode `mode` if it does not exist, so it is
/// never readable by others, even for a moment.
pub fn create_private_file(path: &Path, mode: u32) -> std::io::Result<()> {
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same
/// directory, flushed to disk, then renamed over `path`. A reader sees the
/// old file or the whole new one, never a part.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    temp.write_all(bytes)?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Checks, before a job starts, that its result can be written to `path`:
/// it names a file (not a directory), and its directory exists and takes a
/// new file. A job whose output cannot be written would otherwise send its
/// data and be charged, then fail at the end. The message names the path
/// and the fix.
pub fn check_output_path(path: &Path) -> Result<(), String> {
    let shown = path.display();
    if path.file_name().is_none() || path.as_os_str().to_string_lossy().ends_with('/') {
        return Err(format!(
            "--out {shown}: names a directory, not a file; give a file name such as {}",
            path.join("result.csv").display()
        ));
    }
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => {
            return Err(format!(
                "--out {shown}: is a directory; give a file name such as {}",
                path.join("result.csv").display()
            ));
        }
        Ok(meta) if !meta.is_file() => {
            return Err(format!(
                "--out {shown}: exists and is not a regular file; give a new file name"
            ));
        }
        _ => {}
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(format!(
                "--out {shown}: {} is not a directory; give a path in an existing directory",
                dir.display()
            ));
        }
        Err(_) => {
            return Err(format!(
                "--out {shown}: the directory {} does not exist; create it first",
                dir.display()
            ));
        }
    }
    // The output is written as a temporary file renamed into place, so the
    // honest test of "writable" is making one.
    tempfile::NamedTempFile::new_in(dir).map(drop).map_err(|e| {
        format!(
            "--out {shown}: cannot create a file in {} ({e}); choose a directory you can write to",
            dir.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_output_path_must_be_a_file_in_a_writable_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        check_output_path(&dir.path().join("new.csv")).expect("a new file");
        std::fs::write(dir.path().join("old.csv"), b"x").expect("write");
        check_output_path(&dir.path().join("old.csv")).expect("an old file is replaced");

        let err = check_output_path(dir.path()).expect_err("a directory");
        assert!(
            err.contains("is a directory") && err.contains("result.csv"),
            "{err}"
        );
        let err = check_output_path(&dir.path().join("no/such/dir/out.csv")).expect_err("missing");
        assert!(
            err.contains("does not exist") && err.contains("create it"),
            "{err}"
        );
        let err = check_output_path(&dir.path().join("old.csv/out.csv")).expect_err("file as dir");
        assert!(err.contains("not a directory"), "{err}");
        let err = check_output_path(Path::new("/dev/null")).expect_err("a device");
        assert!(err.contains("not a regular file"), "{err}");
        assert_eq!(
            std::fs::read_dir(dir.path()).expect("dir").count(),
            1,
            "the checks leave nothing behind"
        );
    }

    #[test]
    fn an_unwritable_directory_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let locked = dir.path().join("locked");
        std::fs::create_dir(&locked).expect("mkdir");
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o500)).expect("chmod");
        let writable = tempfile::NamedTempFile::new_in(&locked).is_ok();
        let result = check_output_path(&locked.join("out.csv"));
        // Root writes anywhere: then the check must agree that it can.
        assert_eq!(result.is_ok(), writable, "{result:?}");
        if let Err(err) = result {
            assert!(err.contains("cannot create a file"), "{err}");
        }
    }
}
