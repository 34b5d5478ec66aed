//! Disk trouble: a data folder docchat cannot write, told apart once from the io
//! error and then used everywhere it matters (the indexer's retry status, the check
//! at start, the HTTP answer, 507 for all three).

use std::fmt;
use std::io;
use std::path::Path;

/// Why docchat cannot write its data folder; each a thing the user can fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskTrouble {
    /// No space left on the device.
    Full,
    /// The file system is mounted read-only.
    ReadOnly,
    /// docchat may not write there (permissions).
    Denied,
}

impl DiskTrouble {
    /// The trouble an io error stands for, if it is one of these.
    pub fn of_io(e: &io::Error) -> Option<Self> {
        match e.kind() {
            io::ErrorKind::StorageFull => Some(Self::Full),
            io::ErrorKind::ReadOnlyFilesystem => Some(Self::ReadOnly),
            io::ErrorKind::PermissionDenied => Some(Self::Denied),
            _ => match e.raw_os_error() {
                Some(libc_errno::ENOSPC | libc_errno::EDQUOT) => Some(Self::Full),
                Some(libc_errno::EROFS) => Some(Self::ReadOnly),
                Some(libc_errno::EACCES | libc_errno::EPERM) => Some(Self::Denied),
                _ => None,
            },
        }
    }

    /// The trouble behind `e`: an io error in its chain of causes, or, for the
    /// errors LanceDB passes on as text only, the operating system's words for one.
    pub fn of(e: &anyhow::Error) -> Option<Self> {
        if let Some(t) = e
            .chain()
            .find_map(|c| c.downcast_ref::<io::Error>().and_then(Self::of_io))
        {
            return Some(t);
        }
        let text = format!("{e:#}").to_lowercase();
        let has = |words: &[&str]| words.iter().any(|w| text.contains(w));
        if has(&[
            "no space left",
            "os error 28",
            "quota exceeded",
            "os error 122",
        ]) {
            Some(Self::Full)
        } else if has(&["read-only file system", "os error 30"]) {
            Some(Self::ReadOnly)
        } else if has(&[
            "permission denied",
            "os error 13",
            "operation not permitted",
        ]) {
            Some(Self::Denied)
        } else {
            None
        }
    }

    /// What is wrong, in a few words.
    pub fn what(self) -> &'static str {
        match self {
            Self::Full => "the disk is full",
            Self::ReadOnly => "it is on a read-only file system",
            Self::Denied => "permission denied",
        }
    }

    /// What is wrong and what to do, for a status line or an API answer.
    pub fn advice(self) -> &'static str {
        match self {
            Self::Full => {
                "the data folder is full (no space left on device); free some space and \
                 docchat goes on"
            }
            Self::ReadOnly => "the data folder is read-only; make it writable and docchat goes on",
            Self::Denied => {
                "the data folder is not writable by docchat (permission denied); fix its \
                 permissions and docchat goes on"
            }
        }
    }
}

impl fmt::Display for DiskTrouble {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.advice())
    }
}

/// The few errno values [`DiskTrouble::of_io`] reads (Linux and macOS agree on
/// these four; quota is 122 on Linux and 69 on macOS).
mod libc_errno {
    pub const EPERM: i32 = 1;
    pub const EACCES: i32 = 13;
    pub const ENOSPC: i32 = 28;
    pub const EROFS: i32 = 30;
    #[cfg(target_os = "macos")]
    pub const EDQUOT: i32 = 69;
    #[cfg(not(target_os = "macos"))]
    pub const EDQUOT: i32 = 122;
}

/// A failure to write the index in words a user can act on (the whole chain of
/// causes goes to the log).
pub fn describe_write_error(e: &anyhow::Error) -> String {
    DiskTrouble::of(e).map_or_else(|| format!("{e:#}"), |t| t.advice().to_string())
}

/// Fails with what to do when docchat cannot write `dir`, where it keeps its index
/// and chats.
pub fn check_writable(dir: &Path) -> anyhow::Result<()> {
    let probe = dir.join(".docchat-write-check");
    let result = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&probe, b"docchat"))
        .and_then(|()| std::fs::remove_file(&probe));
    let Err(e) = result else {
        return Ok(());
    };
    let why = DiskTrouble::of_io(&e).map_or("it cannot be written", DiskTrouble::what);
    anyhow::bail!(
        "cannot use the data folder {}: {why} ({e}). docchat keeps its index and chats there: \
         make it writable (or free space), or choose another with --data-dir",
        dir.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_become_their_trouble() {
        let of = |code| DiskTrouble::of_io(&io::Error::from_raw_os_error(code));
        assert_eq!(of(28), Some(DiskTrouble::Full));
        assert_eq!(of(30), Some(DiskTrouble::ReadOnly));
        assert_eq!(of(13), Some(DiskTrouble::Denied));
        assert_eq!(of(2), None);
    }

    #[test]
    fn trouble_is_found_in_the_chain_or_in_lancedb_text() {
        let wrapped = anyhow::Error::new(io::Error::from_raw_os_error(13)).context("writing");
        assert_eq!(DiskTrouble::of(&wrapped), Some(DiskTrouble::Denied));
        let text = anyhow::anyhow!("lance error: IO: No space left on device (os error 28)");
        assert_eq!(DiskTrouble::of(&text), Some(DiskTrouble::Full));
        assert_eq!(DiskTrouble::of(&anyhow::anyhow!("schema mismatch")), None);
        assert!(describe_write_error(&wrapped).contains("permission denied"));
    }
}
