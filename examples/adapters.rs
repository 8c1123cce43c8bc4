//! Print the wgpu adapter shadeprop opens (name, backend, device type, matmul variant);
//! exits with status 1 and an installation hint when there is none.

fn main() {
    match shadeprop::backend::gpu::Gpu::new() {
        Ok(g) => println!("adapter: {}", g.report()),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
