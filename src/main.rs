use std::process::ExitCode;

use clap::Parser;

mod cli;

#[tokio::main]
async fn main() -> ExitCode {
    cli::run(cli::args::Cli::parse_from(cli::args::normalise(
        std::env::args_os(),
    )))
    .await
}
