//! The command line (design §1).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "osci",
    version,
    about = "Build OUTSCALE machine images and BSU volumes with plan, apply and destroy"
)]
pub struct Cli {
    /// No colours in the output (also NO_COLOR).
    #[arg(long, global = true)]
    pub no_color: bool,
    /// More logging: -v for info, -vv for debug (OSCI_LOG takes an EnvFilter string).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the account, region and endpoint the credentials lead to, and
    /// where each credential came from.
    Whoami {
        /// Machine-readable output on stdout.
        #[arg(long)]
        json: bool,
    },
    /// The local OUTSCALE simulator.
    Sim {
        #[command(subcommand)]
        command: SimCommand,
    },
    /// Print the version.
    Version,
}

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Serve the OUTSCALE API on a loopback address until SIGTERM or Ctrl-C.
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Loopback address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8484")]
    pub listen: SocketAddr,
    /// Directory that keeps the simulated region across restarts.
    #[arg(long, default_value = "state/sim")]
    pub data: PathBuf,
    /// Multiplies every state-change delay (VM boot, snapshot…); 0 = instant.
    #[arg(long, default_value_t = 1.0)]
    pub latency_scale: f64,
    /// Faults to inject, e.g. `throttle=0.3,drop@CreateVms*1,seed=7`
    /// (kinds: throttle, busy, error, drop, slow:MS).
    #[arg(long, default_value = "")]
    pub faults: String,
    /// Region of a new simulator.
    #[arg(long, default_value = "eu-west-2")]
    pub region: String,
}
