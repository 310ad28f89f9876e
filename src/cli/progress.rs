//! What the user sees while an apply or destroy runs: on a terminal, a live
//! view of the running nodes with their state and elapsed time (indicatif);
//! elsewhere one line per event on stderr; with `--json`, one JSON object
//! per event on stdout.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use osci::engine::StateRecorder;
use osci::graph::{Address, Event};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Json,
    Lines,
    Live,
}

/// JSON when asked, a live view on a terminal, lines otherwise.
pub fn style(json: bool) -> Style {
    if json {
        Style::Json
    } else if std::io::stderr().is_terminal() {
        Style::Live
    } else {
        Style::Lines
    }
}

/// Renders the recorder's events as they come, until it unsubscribes;
/// `timestamps` (`-timestamp-ui`) starts each line with the UTC time, as
/// Packer's does.
pub fn render(
    recorder: &StateRecorder,
    style: Style,
    timestamps: bool,
) -> tokio::task::JoinHandle<()> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
    recorder.subscribe(tx);
    tokio::spawn(async move {
        let mut live = (style == Style::Live).then(|| Live::new(timestamps));
        while let Some(e) = rx.recv().await {
            match (&mut live, style) {
                (Some(live), _) => live.show(&e),
                (None, Style::Json) => println!("{}", as_json(&e)),
                (None, _) => eprintln!("{}", stamped(timestamps, line(&e))),
            }
        }
        if let Some(live) = live {
            live.finish();
        }
    })
}

/// `text`, after the time when `timestamps` asks for it.
fn stamped(timestamps: bool, text: String) -> String {
    if !timestamps {
        return text;
    }
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc());
    let at = now
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    format!("{at}: {text}")
}

/// The line an event is on its own.
fn line(e: &Event) -> String {
    match e {
        Event::Start { address, action } => format!("{address}: {action}…"),
        Event::Done {
            address,
            action,
            id,
            elapsed,
        } => format!(
            "{address}: {action} done{} after {:.1}s",
            id.as_ref().map(|i| format!(" ({i})")).unwrap_or_default(),
            elapsed.as_secs_f64()
        ),
        Event::Failed {
            address, action, ..
        } => format!("{address}: {action} failed"),
        Event::Wait {
            address,
            state,
            elapsed,
        } => format!("{address}: {state} ({:.1}s)", elapsed.as_secs_f64()),
        Event::Note { build, text } => format!("build \"{build}\": {text}"),
        Event::Output { build, line } => format!("    {build}: {line}"),
    }
}

fn as_json(e: &Event) -> serde_json::Value {
    match e {
        Event::Start { address, action } => {
            json!({"type": "start", "address": address, "action": action})
        }
        Event::Done {
            address,
            action,
            id,
            elapsed,
        } => {
            json!({"type": "done", "address": address, "action": action, "id": id, "elapsed_ms": elapsed.as_millis() as u64})
        }
        Event::Failed {
            address,
            action,
            error,
        } => json!({"type": "failed", "address": address, "action": action, "error": error}),
        Event::Wait {
            address,
            state,
            elapsed,
        } => {
            json!({"type": "wait", "address": address, "state": state, "elapsed_ms": elapsed.as_millis() as u64})
        }
        Event::Note { build, text } => json!({"type": "note", "build": build, "text": text}),
        Event::Output { build, line } => json!({"type": "output", "build": build, "line": line}),
    }
}

/// One spinner per running node; finished nodes and output scroll above.
struct Live {
    multi: MultiProgress,
    bars: HashMap<Address, (ProgressBar, &'static str)>,
    timestamps: bool,
}

impl Live {
    fn new(timestamps: bool) -> Live {
        Live {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: HashMap::new(),
            timestamps,
        }
    }

    fn show(&mut self, e: &Event) {
        match e {
            Event::Start { address, action } => {
                let bar = self.multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                        .expect("a valid template"),
                );
                bar.set_message(format!("{address}: {action}…"));
                bar.enable_steady_tick(Duration::from_millis(120));
                self.bars.insert(address.clone(), (bar, action));
            }
            Event::Wait { address, state, .. } => match self.bars.get(address) {
                Some((bar, action)) => bar.set_message(format!("{address}: {action}, {state}")),
                None => self.print(&line(e)),
            },
            Event::Done { address, .. } | Event::Failed { address, .. } => {
                if let Some((bar, _)) = self.bars.remove(address) {
                    bar.finish_and_clear();
                    self.multi.remove(&bar);
                }
                self.print(&line(e));
            }
            Event::Note { .. } | Event::Output { .. } => self.print(&line(e)),
        }
    }

    fn print(&self, text: &str) {
        let text = &stamped(self.timestamps, text.to_string());
        // Without a visible draw target, println draws nothing: say it anyway.
        if self.multi.println(text).is_err() || self.multi.is_hidden() {
            eprintln!("{text}");
        }
    }

    fn finish(self) {
        for (bar, _) in self.bars.into_values() {
            bar.finish_and_clear();
        }
        let _ = self.multi.clear();
    }
}
