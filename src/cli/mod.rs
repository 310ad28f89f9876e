//! The CLI layer: turns arguments into library calls and results into text.

pub mod args;
mod connect;
mod hcl;
mod progress;
mod prompt;
mod run;
mod saved;
mod sim;
mod whoami;

use std::process::ExitCode;

use args::{Cli, Command, SimCommand};

/// Colour only where a person reads it: on a terminal, unless asked not to.
fn init_logging(verbose: u8, no_color: bool) {
    use std::io::IsTerminal;
    let default = match verbose {
        0 => "warn",
        1 => "osci=info,warn",
        _ => "osci=debug,info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("OSCI_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(
            !no_color && std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal(),
        )
        .init();
}

pub async fn run(cli: Cli) -> ExitCode {
    init_logging(cli.verbose, cli.no_color || !cli.color);
    let state = cli.state.clone();
    let stamps = cli.timestamp_ui;
    let result = match cli.command {
        Command::Validate(args) => run::validate(&args),
        Command::Plan(args) => match run::plan(args, &state).await {
            Ok(code) => return code,
            Err(e) => Err(e),
        },
        Command::Apply(args) => run::apply(args, &state, true, stamps).await,
        Command::Build(args) => run::apply(args, &state, false, stamps).await,
        Command::Destroy(args) => run::destroy(args, &state, stamps).await,
        Command::Graph(args) => run::graph(args, &state).await,
        Command::Hcl2Upgrade(args) => hcl::hcl2_upgrade(args),
        Command::Fmt(args) => match hcl::fmt(args) {
            Ok(code) => return code,
            Err(e) => Err(e),
        },
        Command::State { command } => run::state_command(command, &state),
        Command::Whoami { json } => whoami::run(json).await,
        Command::Sim {
            command: SimCommand::Serve(args),
        } => sim::serve_command(args).await,
        Command::Version => {
            println!("osci {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
