//! File-system helpers shared by every layer: atomic writes, so that a reader never sees
//! a half-written file and a crash never leaves one.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Write `bytes` to `path` through a temporary file in the same directory, synced, then
/// renamed over `path` (atomic on POSIX file systems). Creates the directory if needed.
/// The temporary file is `.<file name>.tmp-<pid>-<n>`: a process killed between the create
/// and the rename leaves it behind, and [`remove_stale_temporaries`] (called where runs
/// start) removes it once that process is gone.
///
/// # Errors
/// [`Error::Io`] naming the path that could not be created, written or renamed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |tmp| {
        let mut f = std::fs::File::create(tmp).map_err(|e| Error::io(tmp, e))?;
        f.write_all(bytes).map_err(|e| Error::io(tmp, e))
    })
}

/// [`write_atomic`] for a writer that takes a path (an image encoder): `write` creates the
/// temporary file it is given — in `path`'s directory, with `path`'s extension, so that a
/// writer choosing the format by extension picks the same one — and that file is synced,
/// then renamed over `path`. A reader never sees a half-written file, and a crash or a
/// failed `write` leaves `path` as it was and no temporary file behind.
///
/// # Errors
/// `write`'s error, or [`Error::Io`] naming the path that could not be created, synced or
/// renamed.
pub fn write_atomic_with(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    // Unique per process and per call, so that threads writing the same file (pipeline
    // caches, parallel tests) never share a temporary file; the last rename wins whole.
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp: PathBuf = dir.join(format!(".{name}.tmp-{}-{n}{ext}", std::process::id()));
    let written = (|| {
        write(&tmp)?;
        std::fs::OpenOptions::new()
            .write(true)
            .open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
    })();
    // A failed write or rename (a full disk, a directory in the way) leaves no temporary
    // file behind.
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// The process id and counter in the name of one of [`write_atomic`]'s temporary files,
/// `.<name>.tmp-<pid>-<n>`; None for any other name.
fn temporary_owner(file_name: &str) -> Option<u32> {
    let rest = file_name.strip_prefix('.')?;
    let (rest, n) = rest.rsplit_once('-')?;
    let (rest, pid) = rest.rsplit_once('-')?;
    let name = rest.strip_suffix(".tmp")?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if name.is_empty() || !digits(n) || !digits(pid) {
        return None;
    }
    pid.parse().ok()
}

/// Whether process `pid` is running, where the system says: on Linux by `/proc/<pid>`.
/// None where it cannot be told (no `/proc`).
fn process_alive(pid: u32) -> Option<bool> {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return None;
    }
    Some(proc.join(pid.to_string()).exists())
}

/// Remove the temporary files [`write_atomic`] left in `dir` when its process was killed
/// before the rename (`kill -9`, a power cut): regular files named
/// `.<name>.tmp-<pid>-<n>` whose process `pid` is no longer running. Files of running
/// processes (this one included: another thread may be writing) are kept, and so is every
/// file where the system cannot tell whether a process runs (no `/proc`), and every other
/// file. Sub-folders are not searched. Returns the files removed; a folder that does not
/// exist holds none.
///
/// # Errors
/// [`Error::Io`] naming the folder that cannot be listed or the file that cannot be
/// removed.
pub fn remove_stale_temporaries(dir: &Path) -> Result<Vec<PathBuf>> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut removed = vec![];
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let Some(pid) = entry.file_name().to_str().and_then(temporary_owner) else {
            continue;
        };
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if !is_file || pid == std::process::id() || process_alive(pid) != Some(false) {
            continue;
        }
        let p = entry.path();
        match std::fs::remove_file(&p) {
            Ok(()) => removed.push(p),
            // Removed meanwhile by another run cleaning the same folder.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&p, e)),
        }
    }
    removed.sort();
    Ok(removed)
}

/// The contents of a file the user named (data, a config, a checkpoint): it must be a
/// regular file (after following links) of at most `max` bytes, checked before anything is
/// read, so a FIFO without a writer, a device such as `/dev/zero` or a directory is refused
/// at once instead of blocking or filling memory.
///
/// # Errors
/// [`Error::Io`] naming the path: missing or unreadable, a directory, not a regular file,
/// or larger than `max` bytes.
pub fn read_file(path: &Path, max: u64) -> Result<Vec<u8>> {
    use std::io::{ErrorKind, Read};
    let bad = |what: String| Error::io(path, std::io::Error::new(ErrorKind::InvalidInput, what));
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        return Err(bad("is a directory, expected a file".into()));
    }
    if !meta.is_file() {
        return Err(bad(
            "is not a regular file (a FIFO, a device or a socket), expected a file".into(),
        ));
    }
    if meta.len() > max {
        return Err(bad(format!(
            "holds {} bytes, more than the {max} this file may hold",
            meta.len()
        )));
    }
    let mut data = Vec::with_capacity(meta.len() as usize);
    std::fs::File::open(path)
        .map_err(|e| Error::io(path, e))?
        .take(max.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(|e| Error::io(path, e))?;
    if data.len() as u64 > max {
        return Err(bad(format!("grew past {max} bytes while it was read")));
    }
    Ok(data)
}

/// [`read_file`] as UTF-8 text ([`Error::Io`] naming the path when it is not).
pub fn read_text(path: &Path, max: u64) -> Result<String> {
    String::from_utf8(read_file(path, max)?).map_err(|_| {
        Error::io(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidData, "is not UTF-8 text"),
        )
    })
}

/// The largest config, sweep or result file read (16 MiB).
pub const MAX_TEXT_BYTES: u64 = 16 << 20;

/// The largest checkpoint read (8 GiB: 2^24 parameters with every optimizer state fit
/// far below it).
pub const MAX_CHECKPOINT_BYTES: u64 = 8 << 30;

/// The contents of `path` if it is a regular file (after following links) of at most
/// `max` bytes; `None` otherwise, or when it cannot be read. For caches, whose absence
/// only costs time: a FIFO, a device such as `/dev/zero` or an oversized file in their
/// place is ignored instead of blocking or exhausting memory.
pub fn read_regular_at_most(path: &Path, max: u64) -> Option<Vec<u8>> {
    use std::io::Read;
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > max {
        return None;
    }
    let mut data = Vec::with_capacity(meta.len() as usize);
    std::fs::File::open(path)
        .ok()?
        .take(max.saturating_add(1))
        .read_to_end(&mut data)
        .ok()?;
    (data.len() as u64 <= max).then_some(data)
}
