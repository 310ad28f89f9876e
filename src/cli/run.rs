//! `osci validate`, `plan`, `apply`, `destroy` and `state`: load the
//! template, connect, refresh, plan, and hand the plan to the engine.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};

use osci::builders::{self, OutscaleDestroyer, Planned};
use osci::engine::{self, Cancel, OnError, Outcome, StateRecorder};
use osci::graph::{Address, Kind, Recorder};
use osci::plan::{render_dot, render_json, render_text};
use osci::state::{State, StateStore};
use osci::template::{self, LoadOptions, Template};

use osci::engine::ApplyOptions;

use super::args::{
    ApplyArgs, DestroyArgs, GraphArgs, OnErrorArg, PlanArgs, Selection, StateCommand, TemplateArgs,
    VarArgs,
};
use super::connect::{Connection, connect};
use super::saved::SavedPlan;
use super::{progress, prompt};

/// `state/<template file stem>.json` unless `--state` says otherwise; an
/// HCL2 template `web.pkr.hcl` (or `web.json.pkr.hcl`, as `hcl2_upgrade`
/// names it) shares `state/web.json` with its JSON twin `web.json`, and a
/// template folder is named by the folder.
pub fn state_path(explicit: &Option<PathBuf>, template: &Path) -> PathBuf {
    explicit.clone().unwrap_or_else(|| {
        let stem = template
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .map(|s| {
                let s = s.strip_suffix(".pkr").unwrap_or(&s);
                s.strip_suffix(".json").unwrap_or(s).to_string()
            })
            .unwrap_or_else(|| "osci".into());
        PathBuf::from("state").join(format!("{stem}.json"))
    })
}

fn load(path: &Path, vars: &VarArgs, select: &Selection) -> anyhow::Result<Template> {
    let mut pairs = Vec::new();
    for v in &vars.var {
        let (k, val) = v
            .split_once('=')
            .with_context(|| format!("-var `{v}`: expected KEY=VALUE"))?;
        pairs.push((k.to_string(), val.to_string()));
    }
    let mut template = template::load(
        path,
        &LoadOptions {
            vars: pairs,
            var_files: vars.var_file.clone(),
            order: vars.order.clone(),
        },
    )?;
    template.select(&select.only, &select.except);
    for w in &template.warnings {
        eprintln!("warning: {w}");
    }
    Ok(template)
}

/// `osci validate`: everything a plan checks before it asks the cloud.
pub fn validate(args: &TemplateArgs) -> anyhow::Result<()> {
    let t = load(&args.template, &args.vars, &args.select)?;
    t.refuse_empty_selection(std::iter::empty())
        .map_err(anyhow::Error::msg)?;
    check_offline(&t)?;
    println!(
        "{}: valid, {} build{} ({})",
        args.template.display(),
        t.builds.len(),
        if t.builds.len() == 1 { "" } else { "s" },
        t.builds
            .iter()
            .map(|b| b.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

/// What `validate` checks, and `plan` before it connects: the builds'
/// access settings agree, and each build is one osci can carry out.
/// Answers the access settings.
fn check_offline(t: &Template) -> anyhow::Result<osci::oapi::Overrides> {
    let access = access(t)?;
    let region =
        osci::oapi::credentials::resolve(&access, &osci::oapi::credentials::process_environment())
            .context("resolving OUTSCALE credentials")?
            .region
            .value;
    for b in &t.builds {
        builders::prepare(b, &t.sensitive_values, &region)
            .map_err(|e| anyhow::anyhow!("{}: build \"{}\": {e}", t.path.display(), b.name))?;
    }
    Ok(access)
}

/// The access settings of the template's builds, which must agree: a
/// state records no region or endpoint per resource, so one state serves
/// one account and region.
fn access(template: &Template) -> anyhow::Result<osci::oapi::Overrides> {
    // Those -only and -except leave out too: they share the state.
    let mut all = template.builds.iter().chain(&template.unselected);
    let first = all.next().context("the template has no builds")?;
    let origin = |name: &str| format!("template {}, build \"{name}\"", template.path.display());
    let access = first.config.access().overrides(origin(&first.name));
    if let Some(other) = all.find(|b| {
        !b.config
            .access()
            .overrides(origin(&b.name))
            .same_access(&access)
    }) {
        bail!(
            "{}: builds \"{}\" and \"{}\" use different access settings (region, endpoint, keys, \
             profile or certificates); one template, and its state, serve one account and region: \
             split it into one template per region",
            template.path.display(),
            first.name,
            other.name
        );
    }
    Ok(access)
}

/// Connects and plans.
async fn make_plan(template: &Template, state: &State) -> anyhow::Result<(Connection, Planned)> {
    template
        .refuse_empty_selection(state.resources.iter().map(|r| r.build.as_str()))
        .map_err(anyhow::Error::msg)?;
    let connection = connect(&check_offline(template)?)?;
    let cloud = builders::connect(
        connection.client.clone(),
        connection.wait.clone(),
        connection.metadata.clone(),
    )
    .await?;
    let planned = builders::plan(&cloud, template, state).await?;
    Ok((connection, planned))
}

pub async fn plan(
    args: PlanArgs,
    state_flag: &Option<PathBuf>,
) -> anyhow::Result<std::process::ExitCode> {
    let t = &args.template;
    let mut template = load(&t.template, &t.vars, &t.select)?;
    force_deregister(&mut template, args.force);
    let path = state_path(state_flag, &t.template);
    let state = StateStore::read_only(&path)?;
    let (_, planned) = make_plan(&template, &state).await?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&masked_json(
                render_json(&planned.plan),
                &template.sensitive_values
            ))?
        );
    } else {
        print!(
            "{}",
            masked(render_text(&planned.plan), &template.sensitive_values)
        );
    }
    if let Some(out) = &args.out {
        let saved = SavedPlan {
            plan: planned.plan.clone(),
            template: t.template.clone(),
            vars: t.vars.var.clone(),
            var_files: t.vars.var_file.clone(),
            order: t.vars.order.clone(),
            only: t.select.only.clone(),
            except: t.select.except.clone(),
            force: args.force,
            state: path,
        };
        std::fs::write(out, serde_json::to_vec_pretty(&saved)?)
            .with_context(|| format!("writing the plan to {}", out.display()))?;
        eprintln!(
            "Saved the plan to {}; apply it with `osci apply {}`.",
            out.display(),
            out.display()
        );
    }
    Ok(if args.detailed_exitcode && planned.plan.has_changes() {
        std::process::ExitCode::from(2)
    } else {
        std::process::ExitCode::SUCCESS
    })
}

/// `text` with the values of sensitive variables hidden, as Packer hides
/// them.
fn masked(text: String, secrets: &[osci::secret::Secret]) -> String {
    osci::secret::mask(&text, secrets.iter().map(osci::secret::Secret::expose))
}

fn masked_json(value: serde_json::Value, secrets: &[osci::secret::Secret]) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) => Value::String(masked(s, secrets)),
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|v| masked_json(v, secrets)).collect())
        }
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| (masked(k, secrets), masked_json(v, secrets)))
                .collect(),
        ),
        other => other,
    }
}

/// `osci graph`: the plan's graph as DOT.
pub async fn graph(args: GraphArgs, state_flag: &Option<PathBuf>) -> anyhow::Result<()> {
    let t = &args.template;
    let template = load(&t.template, &t.vars, &t.select)?;
    let state = StateStore::read_only(&state_path(state_flag, &t.template))?;
    let (_, planned) = make_plan(&template, &state).await?;
    print!("{}", render_dot(&planned.plan));
    Ok(())
}

/// First Ctrl-C or SIGTERM: stop creating and clean up; second: exit now,
/// with the state as last written.
fn watch_signals(cancel: Cancel) {
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        for n in 0..2 {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
            }
            if n == 0 {
                eprintln!(
                    "Interrupted: finishing the call in flight, then cleaning up (interrupt again to exit at once; the state is saved)."
                );
                cancel.cancel();
            } else {
                eprintln!("Interrupted again: exiting; run `osci destroy` to remove what is left.");
                std::process::exit(130);
            }
        }
    });
}

fn report(outcome: &Outcome, what: &str) -> anyhow::Result<()> {
    if outcome.ok() {
        return Ok(());
    }
    let mut msg = format!("{what} did not finish:");
    for (who, why) in &outcome.failures {
        msg.push_str(&format!("\n  {who}: {why}"));
    }
    if !outcome.left.is_empty() {
        msg.push_str(&format!(
            "\n  still in the state: {} (run `osci destroy` to remove them)",
            outcome.left.join(", ")
        ));
    }
    bail!(msg)
}

/// `-force`, as Packer reads it: `force_deregister` for every build.
fn force_deregister(template: &mut Template, force: bool) {
    if force {
        for b in &mut template.builds {
            b.config.omi_mut().force_deregister = true;
        }
    }
}

/// `apply`, or `build` (`ask: false`): an apply that does not ask first.
pub async fn apply(
    args: ApplyArgs,
    state_flag: &Option<PathBuf>,
    ask: bool,
    timestamps: bool,
) -> anyhow::Result<()> {
    // A saved plan: same template, vars and selection, refused if anything
    // moved since.
    let (template_path, vars, select, force, saved, state_override) =
        match SavedPlan::read(&args.target)? {
            Some(_) if args.force => bail!(
                "-force changes what a plan does: give it to `osci plan -force -out FILE`, not to \
                 the apply of a saved plan"
            ),
            Some(saved) => (
                saved.template,
                VarArgs {
                    var: saved.vars,
                    var_file: saved.var_files,
                    order: saved.order,
                },
                Selection {
                    only: saved.only,
                    except: saved.except,
                },
                saved.force,
                Some(saved.plan),
                Some(saved.state),
            ),
            None => (
                args.target.clone(),
                args.vars.clone(),
                args.select.clone(),
                args.force,
                None,
                None,
            ),
        };
    if args.on_error == OnErrorArg::Ask {
        prompt::can_ask()?;
    }
    let mut template = load(&template_path, &vars, &select)?;
    force_deregister(&mut template, force);
    let path = state_override.unwrap_or_else(|| state_path(state_flag, &template_path));
    let (store, state) = StateStore::lock(&path, "apply")?;
    let (connection, planned) = make_plan(&template, &state).await?;
    if let Some(saved) = &saved {
        let now = &planned.plan;
        if saved.lineage != now.lineage || saved.serial != now.serial {
            bail!(
                "the saved plan is stale: the state {} changed since it was made (serial {} then, {} now): plan again",
                path.display(),
                saved.serial,
                now.serial
            );
        }
        if *saved != planned.plan {
            bail!(
                "the saved plan is stale: the template or the cloud changed since it was made: plan again"
            );
        }
    }
    if args.json {
        let plan = masked_json(render_json(&planned.plan), &template.sensitive_values);
        let line = serde_json::json!({"type": "plan", "plan": plan});
        println!("{line}");
    } else {
        eprint!(
            "{}",
            masked(render_text(&planned.plan), &template.sensitive_values)
        );
    }
    if !planned.plan.has_changes() {
        return Ok(());
    }
    if saved.is_none() {
        prompt::confirm("apply these actions", args.auto_approve || !ask)?;
    }
    let cancel = Cancel::default();
    watch_signals(cancel.clone());
    let recorder = Arc::new(
        StateRecorder::new(store, state, cancel).with_dependencies(planned.dependencies.clone()),
    );
    // A question at the terminal and a live view would draw over each other.
    let style = match progress::style(args.json) {
        progress::Style::Live if args.on_error == OnErrorArg::Ask => progress::Style::Lines,
        style => style,
    };
    let rendering = progress::render(&recorder, style, timestamps);
    engine::record_refresh(&recorder, &planned.observed)
        .await
        .map_err(anyhow::Error::msg)?;
    let destroyer = Arc::new(OutscaleDestroyer::new(
        Arc::clone(&planned.cloud),
        recorder.lineage(),
    ));
    let how = ApplyOptions {
        parallelism: args.parallelism,
        parallel_builds: (args.parallel_builds > 0).then_some(args.parallel_builds),
        on_error: match args.on_error {
            OnErrorArg::Abort => OnError::Abort,
            OnErrorArg::Cleanup | OnErrorArg::Ask => OnError::Cleanup,
        },
        ask: (args.on_error == OnErrorArg::Ask).then_some(&prompt::on_error as _),
    };
    let outcome = engine::apply(&recorder, &planned.schedule, destroyer, &how).await;
    recorder.unsubscribe();
    let _ = rendering.await;
    report(&outcome, "apply")?;
    let state = recorder.snapshot();
    let region = connection.client.region().to_string();
    for b in &planned.plan.builds {
        if let Some(image) = state
            .get(Address::new(&b.name, Kind::Image, None).as_str())
            .and_then(|r| r.id.clone())
        {
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({"type": "artifact", "build": b.name, "region": region, "omi": image})
                );
            } else {
                println!("build \"{}\": OMI {region}: {image}", b.name);
            }
        }
        // The volumes a bsuvolume build keeps.
        let volumes: Vec<String> = state
            .resources
            .iter()
            .filter(|r| r.build == b.name && r.kind == Kind::Volume && !r.ephemeral)
            .filter_map(|r| r.id.clone())
            .collect();
        if !volumes.is_empty() {
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({"type": "artifact", "build": b.name, "region": region, "volumes": volumes})
                );
            } else {
                println!(
                    "build \"{}\": volumes {region}: {}",
                    b.name,
                    volumes.join(", ")
                );
            }
        }
    }
    Ok(())
}

pub async fn destroy(
    args: DestroyArgs,
    state_flag: &Option<PathBuf>,
    timestamps: bool,
) -> anyhow::Result<()> {
    let t = &args.template;
    let template = load(&t.template, &t.vars, &t.select)?;
    let path = state_path(state_flag, &t.template);
    let (store, state) = StateStore::lock(&path, "destroy")?;
    template
        .refuse_empty_selection(state.resources.iter().map(|r| r.build.as_str()))
        .map_err(anyhow::Error::msg)?;
    let connection = connect(&access(&template)?)?;
    // The builds -only and -except leave out keep what they made.
    let names: Vec<&str> = template.builds.iter().map(|b| b.name.as_str()).collect();
    let addresses: Vec<Address> = state
        .resources
        .iter()
        .filter(|r| template.touches(&r.build))
        .filter(|r| {
            !args.orphans_only
                || !names.contains(&r.build.as_str())
                || r.ephemeral
                || r.status != osci::state::Status::Created
        })
        .map(|r| r.address.clone())
        .collect();
    if addresses.is_empty() {
        eprintln!("Nothing to destroy.");
        return Ok(());
    }
    eprintln!("osci will destroy:");
    for a in &addresses {
        let r = state.get(a.as_str()).expect("from the state");
        eprintln!(
            "  - {a}{}",
            r.id.as_ref().map(|i| format!(" ({i})")).unwrap_or_default()
        );
    }
    prompt::confirm("destroy these resources", args.auto_approve)?;
    let cloud = builders::connect(
        connection.client.clone(),
        connection.wait.clone(),
        connection.metadata.clone(),
    )
    .await?;
    let cancel = Cancel::default();
    watch_signals(cancel.clone());
    let lineage = state.lineage.clone();
    let recorder = Arc::new(StateRecorder::new(store, state, cancel));
    let rendering = progress::render(&recorder, progress::style(args.json), timestamps);
    let destroyer = Arc::new(OutscaleDestroyer::new(cloud, lineage));
    let outcome = engine::destroy(&recorder, destroyer, &addresses, args.parallelism).await;
    recorder.unsubscribe();
    let _ = rendering.await;
    report(&outcome, "destroy")
}

pub fn state_command(command: StateCommand, state_flag: &Option<PathBuf>) -> anyhow::Result<()> {
    let path_of = |template: &Option<PathBuf>| -> anyhow::Result<PathBuf> {
        match (state_flag, template) {
            (Some(p), _) => Ok(p.clone()),
            (None, Some(t)) => Ok(state_path(&None, t)),
            (None, None) => bail!("name the state with --state PATH (or give the template)"),
        }
    };
    match command {
        StateCommand::List { template } => {
            let state = StateStore::read_only(&path_of(&template)?)?;
            for r in &state.resources {
                println!(
                    "{}\t{}\t{}{}",
                    r.address,
                    r.id.as_deref().unwrap_or("-"),
                    r.status,
                    if r.ephemeral { "\tephemeral" } else { "" }
                );
            }
        }
        StateCommand::Show { address, template } => {
            let state = StateStore::read_only(&path_of(&template)?)?;
            let r = state
                .get(&address)
                .with_context(|| format!("no resource at {address} in the state"))?;
            println!("{}", serde_json::to_string_pretty(r)?);
        }
        StateCommand::Rm { address, template } => {
            let path = path_of(&template)?;
            let (mut store, mut state) = StateStore::lock(&path, "state rm")?;
            let r = state
                .remove(&address)
                .with_context(|| format!("no resource at {address} in the state"))?;
            store.write(&mut state)?;
            eprintln!(
                "Removed {address}{} from the state; osci no longer manages it (it still exists in the cloud).",
                r.id.map(|i| format!(" ({i})")).unwrap_or_default()
            );
        }
    }
    Ok(())
}
