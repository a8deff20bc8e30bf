use std::process::ExitCode;

fn main() -> ExitCode {
    match llm_loadtest::cli::run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}
