//! No adapter: asking for an adapter that does not exist is a named error listing what
//! exists, never a panic (wgpu's own helper panics in this case). Its own test binary, since
//! it sets WGPU_ADAPTER_NAME for the process.

use shadeprop::Error;
use shadeprop::backend::gpu::Gpu;

#[test]
fn a_missing_adapter_is_a_named_error() {
    // SAFETY: the only test in this binary; nothing else reads the environment concurrently.
    unsafe { std::env::set_var("WGPU_ADAPTER_NAME", "no-such-adapter-xyz") };
    match Gpu::new() {
        Err(e @ Error::NoAdapter(_)) => {
            let msg = e.to_string();
            assert!(
                msg.contains("no-such-adapter-xyz")
                    && msg.contains("matches none of the adapters found"),
                "{msg}"
            );
        }
        Err(e) => panic!("expected NoAdapter, got {e}"),
        Ok(g) => panic!("opened {} for a name that matches nothing", g.report()),
    }
}
