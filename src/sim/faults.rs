//! Fault injection (`osci sim serve --faults SPEC`), to prove that clients
//! survive what a real region does to them.
//!
//! SPEC is a comma-separated list of rules `KIND[@OPERATION][=RATE][*COUNT]`
//! and an optional `seed=N` for a repeatable run:
//!
//! | KIND        | effect                                                    |
//! |-------------|-----------------------------------------------------------|
//! | `throttle`  | HTTP 429 code 25 before the call runs                     |
//! | `busy`      | HTTP 503 code 6 (platform throttling) before the call runs|
//! | `error`     | HTTP 500 before the call runs                             |
//! | `drop`      | the call runs, then the connection closes with no answer  |
//! | `slow:MS`   | the answer is delayed by MS milliseconds                  |
//! | `fail`      | the call succeeds, but the image it starts ends `failed`  |
//! | `crash:N`   | the Nth call runs, then the process ends before answering |
//!
//! `crash:N` stands for a client killed right after its Nth call, before the
//! answer reached it: with `sim://`, the simulator runs in osci's process,
//! so osci ends there and then (exit code 137, as after SIGKILL). With
//! `@OPERATION`, N counts that operation's calls only.
//!
//! RATE is a probability (default 1), COUNT caps how many times the rule
//! fires. `throttle=0.3` throttles 30% of all calls; `drop@CreateVms*1` loses
//! the answer of the first CreateVms.

use std::sync::Mutex;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    Throttle,
    Busy,
    Error,
    Drop,
    Slow(Duration),
    /// What the call starts fails later on the platform's side (an image
    /// ends in `failed`), as a real region sometimes does.
    Fail,
    /// The Nth matching call runs, then the process ends.
    Crash(u64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub kind: FaultKind,
    pub operation: Option<String>,
    pub rate: f64,
    pub remaining: Option<u64>,
}

/// What to do with one call.
#[derive(Debug, Default, PartialEq)]
pub struct Decision {
    /// Answer this instead of running the call.
    pub refuse: Option<FaultKind>,
    pub drop_after: bool,
    /// What the call starts is to end in its failure state.
    pub fail_later: bool,
    /// The process ends once the call has run, before it answers.
    pub crash_after: bool,
    pub delay: Duration,
}

pub struct Faults {
    rules: Mutex<(Vec<Rule>, StdRng)>,
    /// Calls seen so far, all operations, and per operation.
    seen: Mutex<(u64, std::collections::HashMap<String, u64>)>,
}

impl Faults {
    pub fn none() -> Faults {
        Faults {
            rules: Mutex::new((Vec::new(), StdRng::from_entropy())),
            seen: Mutex::default(),
        }
    }

    pub fn parse(spec: &str) -> Result<Faults, String> {
        let mut rules = Vec::new();
        let mut seed = None;
        for raw in spec.split(',').map(str::trim).filter(|r| !r.is_empty()) {
            if let Some(n) = raw.strip_prefix("seed=") {
                seed = Some(
                    n.parse::<u64>()
                        .map_err(|_| format!("`{raw}`: the seed must be a number"))?,
                );
                continue;
            }
            rules.push(parse_rule(raw)?);
        }
        let rng = match seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_entropy(),
        };
        Ok(Faults {
            rules: Mutex::new((rules, rng)),
            seen: Mutex::default(),
        })
    }

    /// Decides the fate of one call of `operation`.
    pub fn decide(&self, operation: &str) -> Decision {
        let (all, this) = {
            let mut seen = self.seen.lock().expect("faults lock");
            seen.0 += 1;
            let all = seen.0;
            let this = seen.1.entry(operation.to_string()).or_insert(0);
            *this += 1;
            (all, *this)
        };
        let mut guard = self.rules.lock().expect("faults lock");
        let (rules, rng) = &mut *guard;
        let mut decision = Decision::default();
        for rule in rules.iter_mut() {
            if rule.operation.as_deref().is_some_and(|op| op != operation) {
                continue;
            }
            if let FaultKind::Crash(n) = rule.kind {
                let count = if rule.operation.is_some() { this } else { all };
                decision.crash_after |= count == n;
                continue;
            }
            if rule.remaining == Some(0) || !rng.gen_bool(rule.rate) {
                continue;
            }
            match &rule.kind {
                FaultKind::Slow(d) => decision.delay += *d,
                FaultKind::Fail if !decision.fail_later => decision.fail_later = true,
                FaultKind::Drop if !decision.drop_after && decision.refuse.is_none() => {
                    decision.drop_after = true
                }
                kind @ (FaultKind::Throttle | FaultKind::Busy | FaultKind::Error)
                    if decision.refuse.is_none() && !decision.drop_after =>
                {
                    decision.refuse = Some(kind.clone())
                }
                _ => continue,
            }
            if let Some(n) = &mut rule.remaining {
                *n -= 1;
            }
        }
        decision
    }
}

fn parse_rule(raw: &str) -> Result<Rule, String> {
    let (rest, remaining) = match raw.split_once('*') {
        Some((r, n)) => (
            r,
            Some(
                n.parse::<u64>()
                    .map_err(|_| format!("`{raw}`: the count after * must be a number"))?,
            ),
        ),
        None => (raw, None),
    };
    let (rest, rate) = match rest.split_once('=') {
        Some((r, p)) => {
            let rate = p
                .parse::<f64>()
                .ok()
                .filter(|r| (0.0..=1.0).contains(r))
                .ok_or_else(|| format!("`{raw}`: the rate must be a number from 0 to 1"))?;
            (r, rate)
        }
        None => (rest, 1.0),
    };
    let (kind, operation) = match rest.split_once('@') {
        Some((k, op)) if !op.is_empty() => (k, Some(op.to_string())),
        Some(_) => return Err(format!("`{raw}`: an operation name must follow @")),
        None => (rest, None),
    };
    let kind = match kind {
        "throttle" => FaultKind::Throttle,
        "busy" => FaultKind::Busy,
        "error" => FaultKind::Error,
        "drop" => FaultKind::Drop,
        "fail" => FaultKind::Fail,
        k if k.starts_with("crash:") => FaultKind::Crash(
            k["crash:".len()..]
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("`{raw}`: crash takes the number of a call, as crash:3"))?,
        ),
        k => match k.strip_prefix("slow:") {
            Some(ms) => {
                FaultKind::Slow(Duration::from_millis(ms.parse().map_err(|_| {
                    format!("`{raw}`: slow takes milliseconds, as slow:200")
                })?))
            }
            None => {
                return Err(format!(
                    "`{raw}`: unknown fault `{k}` (throttle, busy, error, drop, slow:MS, fail, crash:N)"
                ));
            }
        },
    };
    Ok(Rule {
        kind,
        operation,
        rate,
        remaining,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rules() {
        let f =
            Faults::parse("seed=7, throttle=0.3, drop@CreateVms*1, slow:200@ReadVms=0.5").unwrap();
        let rules = &f.rules.lock().unwrap().0;
        assert_eq!(rules.len(), 3);
        assert_eq!(rules[0].kind, FaultKind::Throttle);
        assert_eq!(rules[0].rate, 0.3);
        assert_eq!(rules[1].operation.as_deref(), Some("CreateVms"));
        assert_eq!(rules[1].remaining, Some(1));
        assert_eq!(rules[2].kind, FaultKind::Slow(Duration::from_millis(200)));
        for bad in ["nope", "throttle=2", "error@", "slow:x", "drop*x", "seed=x"] {
            assert!(Faults::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn count_and_operation_limit_firing() {
        let f = Faults::parse("error@CreateVms*2").unwrap();
        assert_eq!(f.decide("ReadVms"), Decision::default());
        assert_eq!(f.decide("CreateVms").refuse, Some(FaultKind::Error));
        assert_eq!(f.decide("CreateVms").refuse, Some(FaultKind::Error));
        assert_eq!(f.decide("CreateVms").refuse, None);
    }

    #[test]
    fn crash_comes_at_the_nth_call() {
        let f = Faults::parse("crash:3").unwrap();
        let crashes: Vec<bool> = ["A", "B", "A", "B"]
            .iter()
            .map(|op| f.decide(op).crash_after)
            .collect();
        assert_eq!(crashes, [false, false, true, false]);
        let f = Faults::parse("crash:2@B").unwrap();
        let crashes: Vec<bool> = ["A", "B", "A", "B"]
            .iter()
            .map(|op| f.decide(op).crash_after)
            .collect();
        assert_eq!(crashes, [false, false, false, true]);
        assert!(Faults::parse("crash:0").is_err() && Faults::parse("crash:x").is_err());
    }

    #[test]
    fn rate_is_roughly_honoured_and_seeded_runs_repeat() {
        let run = || {
            let f = Faults::parse("seed=42,throttle=0.3").unwrap();
            (0..1000)
                .map(|_| f.decide("ReadVms").refuse.is_some())
                .collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run());
        let n = a.iter().filter(|x| **x).count();
        assert!((230..370).contains(&n), "{n}");
    }
}
