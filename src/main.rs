use std::process::ExitCode;

use clap::Parser;

mod cli;

#[tokio::main]
async fn main() -> ExitCode {
    let args = cli::args::normalise(std::env::args_os());
    let mut cli = cli::args::Cli::parse_from(&args);
    if let Some(vars) = cli.command.vars_mut() {
        vars.order = cli::args::var_order(&args);
    }
    cli::run(cli).await
}
