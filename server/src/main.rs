//! The `sop-server` binary: parses the command line and hands it to [`sop_server::run`].

use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = sop_server::config::Cli::parse();
    match sop_server::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("sop-server: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
