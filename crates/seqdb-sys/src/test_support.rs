//! Helpers for tests of this crate and of the crates above it (feature
//! `test-support`).

use std::path::Path;
use std::process::Command;

/// A small `tmpfs` mounted on a fresh temporary directory, unmounted when
/// dropped: a file system that fills up quickly, for full-disk tests.
///
/// Mounting needs root on Linux. [`TmpfsMount::new`] returns the reason as
/// `Err` when it cannot mount, so a test can print `skipped: <reason>` and
/// return.
///
/// ```no_run
/// # fn main() {
/// use seqdb_sys::test_support::TmpfsMount;
///
/// let mount = match TmpfsMount::new(16 << 20) {
///     Ok(mount) => mount,
///     Err(reason) => {
///         println!("skipped: {reason}");
///         return;
///     }
/// };
/// let file = mount.path().join("data");
/// # let _ = file;
/// # }
/// ```
#[derive(Debug)]
pub struct TmpfsMount {
    dir: tempfile::TempDir,
}

impl TmpfsMount {
    /// Mounts a `tmpfs` of `size` bytes (`mount -t tmpfs -o size=<size>`) on
    /// a new temporary directory.
    ///
    /// # Errors
    ///
    /// A human-readable reason when mounting is not possible: not Linux, the
    /// temporary directory cannot be made, `mount` is missing, or it fails
    /// (typically: not root, or not permitted in this container).
    pub fn new(size: u64) -> Result<Self, String> {
        if !cfg!(target_os = "linux") {
            return Err("tmpfs mounts are only attempted on Linux".to_owned());
        }
        let dir = tempfile::tempdir().map_err(|e| format!("cannot create a temp dir: {e}"))?;
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={size}"))
            .arg("tmpfs")
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "mount -t tmpfs failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(TmpfsMount { dir })
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(self.dir.path())
            .status()
            .is_ok_and(|status| status.success());
        if !unmounted {
            // Busy (a file still open): detach it now, it goes once released.
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}
