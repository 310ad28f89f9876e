//! Plans (design §4): the template's resources against the refreshed state,
//! as the actions an apply will take, rendered as text and JSON. Plans are
//! deterministic: same template, state and cloud give the same bytes.

mod diff;
mod render;

pub use diff::{Action, BuildPlan, Change, DesiredBuild, Observed, Plan, diff};
pub use render::{render_json, render_text};

/// The version of `plan --json` and of saved plans.
pub const FORMAT_VERSION: &str = "1.0";
