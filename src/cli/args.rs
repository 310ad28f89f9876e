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
    /// Colours on a terminal (`-color=false` as Packer spells it).
    #[arg(long, global = true, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_value_t = true,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub color: bool,
    /// Each line of output starts with the time.
    #[arg(long, global = true)]
    pub timestamp_ui: bool,
    /// More logging: -v for info, -vv for debug (OSCI_LOG takes an EnvFilter string).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a template without the cloud: exit 0 when a plan would not
    /// refuse it for a reason it could see offline, 1 with the reason.
    Validate(TemplateArgs),
    /// Show what apply would create, change or destroy.
    Plan(PlanArgs),
    /// Build what the plan says (from a template, or a plan saved with -out).
    Apply(ApplyArgs),
    /// Packer's `build`: an apply that does not ask first.
    Build(ApplyArgs),
    /// Remove everything the state holds (or only leftovers).
    Destroy(DestroyArgs),
    /// Print the plan's graph in Graphviz's DOT, with the action of each
    /// node (an edge `a -> b` means `a` waits for `b`).
    Graph(GraphArgs),
    /// Packer's `hcl2_upgrade`: write a JSON template as HCL2.
    #[command(name = "hcl2_upgrade")]
    Hcl2Upgrade(UpgradeArgs),
    /// Rewrite HCL2 templates and var files in the canonical style.
    Fmt(FmtArgs),
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

impl Command {
    /// The command's `-var` and `-var-file`, if it takes them.
    pub fn vars_mut(&mut self) -> Option<&mut VarArgs> {
        match self {
            Command::Validate(t) => Some(&mut t.vars),
            Command::Plan(p) => Some(&mut p.template.vars),
            Command::Apply(a) | Command::Build(a) => Some(&mut a.vars),
            Command::Graph(g) => Some(&mut g.template.vars),
            Command::Destroy(d) => Some(&mut d.template.vars),
            _ => None,
        }
    }
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

/// A template, its variables, and which of its builds a command is about.
#[derive(Debug, Clone, Args)]
pub struct TemplateArgs {
    pub template: PathBuf,
    #[command(flatten)]
    pub vars: VarArgs,
    #[command(flatten)]
    pub select: Selection,
}

/// `-only` and `-except`: builds by name, with `*` and `?` wildcards.
/// The state keeps what the other builds made untouched.
#[derive(Debug, Clone, Default, Args)]
pub struct Selection {
    /// Only these builds (comma-separated names or globs).
    #[arg(long, value_delimiter = ',', value_name = "BUILDS")]
    pub only: Vec<String>,
    /// All builds but these (comma-separated names or globs).
    #[arg(long, value_delimiter = ',', value_name = "BUILDS")]
    pub except: Vec<String>,
}

/// `-var K=V` and `-var-file F`, as Packer spells them.
#[derive(Debug, Clone, Default, Args)]
pub struct VarArgs {
    /// Set a template variable (repeatable).
    #[arg(long = "var", value_name = "KEY=VALUE")]
    pub var: Vec<String>,
    /// Read template variables from a file (repeatable): a JSON object for a
    /// JSON template; `name = value` lines (`.pkrvars.hcl`) or JSON for HCL2.
    #[arg(long = "var-file", value_name = "FILE")]
    pub var_file: Vec<PathBuf>,
    /// The order the two came in (set by [`var_order`] after parsing).
    #[arg(skip)]
    pub order: Vec<osci::template::Given>,
}

/// The order of the `--var` and `--var-file` options among (normalised)
/// arguments: clap keeps each kind's values in order, not the two together,
/// and HCL2 templates take them as they come, as Packer does.
pub fn var_order(args: &[std::ffi::OsString]) -> Vec<osci::template::Given> {
    use osci::template::Given;
    let (mut vars, mut files) = (0, 0);
    let mut order = Vec::new();
    for a in args {
        let a = a.to_string_lossy();
        let name = a.split_once('=').map_or(a.as_ref(), |(n, _)| n);
        match name {
            "--var" => {
                order.push(Given::Var(vars));
                vars += 1;
            }
            "--var-file" => {
                order.push(Given::File(files));
                files += 1;
            }
            _ => {}
        }
    }
    order
}

#[derive(Debug, Args)]
pub struct UpgradeArgs {
    /// The JSON template.
    pub template: PathBuf,
    /// Where to write the HCL2 template (default: TEMPLATE.pkr.hcl, as
    /// Packer names it).
    #[arg(long, short = 'o', value_name = "PATH")]
    pub output_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct FmtArgs {
    /// A file, or a folder of `*.pkr.hcl` and `*.pkrvars.hcl` files
    /// (default: the current folder).
    #[arg(default_value = ".")]
    pub target: PathBuf,
    /// Change nothing; exit 3 when a file is not formatted.
    #[arg(long)]
    pub check: bool,
    /// Show what would change, as a diff.
    #[arg(long)]
    pub diff: bool,
    /// Write the formatted files (`-write=false` only lists them).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_value_t = true,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub write: bool,
    /// Format the folders under the folder too.
    #[arg(long)]
    pub recursive: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub template: TemplateArgs,
    /// Save the plan for `osci apply FILE`.
    #[arg(long = "out", value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Exit 2 when the plan has changes, 0 when not, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// The plan as one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
    /// Plan with `force_deregister` on every build, as Packer's `-force`.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A template, or a plan saved with `osci plan -out`.
    pub target: PathBuf,
    #[command(flatten)]
    pub vars: VarArgs,
    #[command(flatten)]
    pub select: Selection,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub auto_approve: bool,
    /// How many operations (creations, waits, deletions) run at once,
    /// across all builds.
    #[arg(long, default_value_t = 10)]
    pub parallelism: usize,
    /// How many builds are under way at once (0: no bound).
    #[arg(long, default_value_t = 0)]
    pub parallel_builds: usize,
    /// `force_deregister` for every build: an OMI of the same name goes.
    #[arg(long)]
    pub force: bool,
    /// On failure: `cleanup` destroys the build's temporary resources and
    /// half-made OMI; `abort` leaves them in the state for inspection;
    /// `ask` asks, on a terminal, whether to clean up, abort, or retry.
    #[arg(long, value_enum, default_value_t = OnErrorArg::Cleanup)]
    pub on_error: OnErrorArg,
    /// Events as JSON lines on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    #[command(flatten)]
    pub template: TemplateArgs,
}

#[derive(Debug, Args)]
pub struct DestroyArgs {
    #[command(flatten)]
    pub template: TemplateArgs,
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

/// Packer and Terraform spell long options with one dash, as Go's flag
/// package reads them (`-var`, `-only=web`, `-on-error=abort`): every long
/// option of osci is accepted so. Short options (`-v`) stay as they are.
pub fn normalise(args: impl IntoIterator<Item = std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    use clap::CommandFactory;
    let mut long = std::collections::BTreeSet::new();
    let mut commands = vec![Cli::command()];
    while let Some(command) = commands.pop() {
        long.extend(
            command
                .get_arguments()
                .filter_map(|a| a.get_long().map(String::from)),
        );
        commands.extend(command.get_subcommands().cloned());
    }
    args.into_iter()
        .map(|a| {
            let s = a.to_string_lossy();
            let Some(word) = s.strip_prefix('-').filter(|w| !w.starts_with('-')) else {
                return a;
            };
            let name = word.split_once('=').map_or(word, |(n, _)| n);
            if long.contains(name) {
                format!("-{s}").into()
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
    Ask,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(args: &[&str]) -> Vec<String> {
        normalise(args.iter().map(std::ffi::OsString::from))
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn long_options_take_one_dash_as_in_packer() {
        assert_eq!(
            words(&[
                "osci",
                "build",
                "-force",
                "-on-error=abort",
                "-only=web,db",
                "-var",
                "a=b",
                "-vv",
                "t.json"
            ]),
            [
                "osci",
                "build",
                "--force",
                "--on-error=abort",
                "--only=web,db",
                "--var",
                "a=b",
                "-vv",
                "t.json"
            ]
        );
        assert_eq!(
            words(&[
                "osci",
                "plan",
                "-color=false",
                "-timestamp-ui",
                "-nope",
                "--json"
            ]),
            [
                "osci",
                "plan",
                "--color=false",
                "--timestamp-ui",
                "-nope",
                "--json"
            ]
        );
    }
}
