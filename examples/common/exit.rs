//! How the examples end: an error is printed as a sentence (not Rust's `Debug`), exit
//! status 1.

pub fn report(r: shadeprop::Result<()>) -> std::process::ExitCode {
    match r {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
