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
    /// The state file (default: state/<template file stem>.json).
    #[arg(long, global = true, value_name = "PATH")]
    pub state: Option<PathBuf>,
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
    /// Check a template: exit 0 when valid, 1 with the reason when not.
    Validate {
        template: PathBuf,
        #[command(flatten)]
        vars: VarArgs,
    },
    /// Show what apply would create, change or destroy.
    Plan(PlanArgs),
    /// Build what the plan says (from a template, or a plan saved with -out).
    Apply(ApplyArgs),
    /// Remove everything the state holds (or only leftovers).
    Destroy(DestroyArgs),
    /// Print the plan's graph in Graphviz's DOT, with the action of each
    /// node (an edge `a -> b` means `a` waits for `b`).
    Graph(GraphArgs),
    /// Inspect or edit the state.
    State {
        #[command(subcommand)]
        command: StateCommand,
    },
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

/// `-var K=V` and `-var-file F`, as Packer spells them.
#[derive(Debug, Clone, Default, Args)]
pub struct VarArgs {
    /// Set a template variable (repeatable).
    #[arg(long = "var", value_name = "KEY=VALUE")]
    pub var: Vec<String>,
    /// Read template variables from a JSON file (repeatable).
    #[arg(long = "var-file", value_name = "FILE")]
    pub var_file: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    pub template: PathBuf,
    #[command(flatten)]
    pub vars: VarArgs,
    /// Save the plan for `osci apply FILE`.
    #[arg(long = "out", value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Exit 2 when the plan has changes, 0 when not, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// The plan as one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A template, or a plan saved with `osci plan -out`.
    pub target: PathBuf,
    #[command(flatten)]
    pub vars: VarArgs,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub auto_approve: bool,
    /// How many operations (creations, waits, deletions) run at once,
    /// across all builds.
    #[arg(long, default_value_t = 10)]
    pub parallelism: usize,
    /// On failure: `cleanup` destroys the build's temporary resources and
    /// half-made OMI; `abort` leaves them in the state for inspection.
    #[arg(long, value_enum, default_value_t = OnErrorArg::Cleanup)]
    pub on_error: OnErrorArg,
    /// Events as JSON lines on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    pub template: PathBuf,
    #[command(flatten)]
    pub vars: VarArgs,
}

#[derive(Debug, Args)]
pub struct DestroyArgs {
    pub template: PathBuf,
    #[command(flatten)]
    pub vars: VarArgs,
    #[arg(long)]
    pub auto_approve: bool,
    /// How many deletions run at once.
    #[arg(long, default_value_t = 10)]
    pub parallelism: usize,
    /// Only leftovers of interrupted applies and builds no longer in the
    /// template; current OMIs stay.
    #[arg(long)]
    pub orphans_only: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// One line per resource: address, id, status.
    List { template: Option<PathBuf> },
    /// One resource in full.
    Show {
        address: String,
        template: Option<PathBuf>,
    },
    /// Forget a resource (it stays in the cloud).
    Rm {
        address: String,
        template: Option<PathBuf>,
    },
}

/// Packer and Terraform spell some flags with one dash (`-var`, `-var-file`,
/// `-out`, `-auto-approve`…); accept them as the two-dash forms.
pub fn normalise(args: impl IntoIterator<Item = std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    const SINGLE_DASH: [&str; 8] = [
        "-var",
        "-var-file",
        "-out",
        "-auto-approve",
        "-json",
        "-detailed-exitcode",
        "-parallelism",
        "-state",
    ];
    args.into_iter()
        .map(|a| {
            let s = a.to_string_lossy();
            let (flag, rest) = match s.split_once('=') {
                Some((f, r)) => (f.to_string(), Some(r.to_string())),
                None => (s.to_string(), None),
            };
            if SINGLE_DASH.contains(&flag.as_str()) {
                let mut long = format!("-{flag}");
                if let Some(r) = rest {
                    long.push('=');
                    long.push_str(&r);
                }
                long.into()
            } else {
                a
            }
        })
        .collect()
}

/// `--on-error`: what a failed build leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnErrorArg {
    Cleanup,
    Abort,
}
