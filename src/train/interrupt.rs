//! Ctrl-C (SIGINT): the handler only raises a flag; the training loop checks it after each
//! step, writes a checkpoint at that exact point (mid-epoch included) and returns
//! [`crate::Error::Interrupted`]. Resuming from that checkpoint continues with the next
//! batch of the same epoch, so the final parameters equal an uninterrupted run's.

use std::sync::atomic::{AtomicBool, Ordering};

#[cfg(feature = "ctrlc")]
use crate::error::{Error, Result};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Install the SIGINT handler (once per process; later calls are no-ops). Needs the
/// `ctrlc` feature (on by default); without it, [`set_interrupted`] raises the flag.
#[cfg(feature = "ctrlc")]
pub fn install_sigint_handler() -> Result<()> {
    static INSTALLED: AtomicBool = AtomicBool::new(false);
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return Ok(());
    }
    ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst)).map_err(|e| Error::Callback {
        callback: "interrupt",
        what: format!("cannot install the Ctrl-C handler: {e}"),
    })
}

/// Whether an interrupt is pending.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Raise (or clear) the flag by hand, as the handler would.
pub fn set_interrupted(v: bool) {
    INTERRUPTED.store(v, Ordering::SeqCst);
}
