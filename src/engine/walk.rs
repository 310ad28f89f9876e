//! Walking a DAG of jobs, as cargo's `DependencyQueue` does: a job starts
//! once every job before it is done; of the ready ones, those heading the
//! longest remaining chain start first; at most `parallelism` run at once.
//!
//! Jobs belong to groups (a build): the first failure in a group stops new
//! work in it, the rest of the graph goes on, and the walk then reverses
//! what the group made, in reverse order, keeps it, or runs the failed job
//! again, as the options say or the user answers. A panicking job is a
//! failed job. At most so many groups may have work under way at once.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use petgraph::graph::{DiGraph, NodeIndex};
use tokio::task::JoinSet;

use crate::graph::{Cycle, find_cycle};
use crate::oapi::transport::BoxFuture;

/// One unit of work.
#[async_trait]
pub trait Job: Send + Sync + 'static {
    /// Names the job in messages and cycles.
    fn label(&self) -> String;

    /// The group whose work stops at its first failure; `None` for work
    /// that stands alone.
    fn group(&self) -> Option<String>;

    /// How long the job usually lasts, relative to the others.
    fn weight(&self) -> u64 {
        1
    }

    async fn run(&self) -> Result<(), String>;

    /// Undoes what `run` made (or began to make), once its group failed.
    async fn undo(&self) -> Result<(), String> {
        Ok(())
    }
}

/// What becomes of a group once one of its jobs failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Its work is undone, in reverse order.
    Reverse,
    /// Its work is left as it is.
    Keep,
    /// The failed job runs again.
    Retry,
}

/// A job that failed, as the one who decides sees it.
#[derive(Debug, Clone)]
pub struct Failure {
    pub group: String,
    pub job: String,
    pub why: String,
}

/// Asks what becomes of a failed group.
pub type Ask<'a> = &'a (dyn Fn(Failure) -> BoxFuture<'static, Decision> + Sync);

/// How a walk goes.
pub struct Options<'a> {
    /// At most this many jobs at once (0 counts as 1).
    pub parallelism: usize,
    /// At most this many groups with work started and not finished.
    pub max_groups: Option<usize>,
    /// What becomes of a failed group (`Reverse` or `Keep`) when nobody is
    /// asked, or when it failed without a failing job of its own.
    pub on_failure: Decision,
    /// Asked when a job of a group fails.
    pub ask: Option<Ask<'a>>,
    /// Asked before each job starts: when it answers true (an interrupt),
    /// no more jobs start, and every group with unfinished work fails.
    pub stop: &'a (dyn Fn() -> bool + Sync),
}

impl<'a> Options<'a> {
    /// `parallelism` jobs at once, failed groups as `on_failure` says.
    pub fn new(
        parallelism: usize,
        on_failure: Decision,
        stop: &'a (dyn Fn() -> bool + Sync),
    ) -> Self {
        Options {
            parallelism,
            max_groups: None,
            on_failure,
            ask: None,
            stop,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Failed(String),
    /// Never started: its group failed, a job before it failed, or the walk
    /// was stopped.
    Skipped,
}

/// How every job ended, in the order of the jobs given.
#[derive(Debug, Default)]
pub struct Report {
    pub outcomes: Vec<Outcome>,
    /// The groups that failed.
    pub failed_groups: BTreeSet<String>,
    /// Those of them whose work was left as it is.
    pub kept_groups: BTreeSet<String>,
    /// The jobs of failed groups that were undone, and how.
    pub undone: Vec<(usize, Result<(), String>)>,
    /// Whether the walk was stopped before its end.
    pub stopped: bool,
}

/// Runs `jobs` in the order `edges` give (`(a, b)`: `a` before `b`), or
/// refuses a graph with a cycle, naming it, before running anything.
pub async fn walk<J: Job>(
    jobs: Vec<Arc<J>>,
    edges: &[(usize, usize)],
    options: &Options<'_>,
) -> Result<Report, Cycle> {
    let dag = Dag::new(&jobs, edges)?;
    let mut report = run(&dag, &jobs, options).await;
    let reversed: BTreeSet<&String> = report
        .failed_groups
        .difference(&report.kept_groups)
        .collect();
    if !reversed.is_empty() {
        // What each failed group started, undone in reverse order.
        let undo: Vec<usize> = (0..jobs.len())
            .filter(|&i| {
                jobs[i].group().is_some_and(|g| reversed.contains(&g))
                    && report.outcomes[i] != Outcome::Skipped
            })
            .collect();
        let position = |i: usize| undo.iter().position(|&u| u == i);
        let undo_jobs: Vec<Arc<Undo<J>>> = undo
            .iter()
            .map(|&i| Arc::new(Undo(Arc::clone(&jobs[i]))))
            .collect();
        let undo_edges: Vec<(usize, usize)> = edges
            .iter()
            .filter_map(|&(a, b)| Some((position(b)?, position(a)?)))
            .collect();
        let undo_dag = Dag::new(&undo_jobs, &undo_edges)?;
        let never = || false;
        let undone = run(
            &undo_dag,
            &undo_jobs,
            &Options::new(options.parallelism, Decision::Keep, &never),
        )
        .await;
        report.undone = undone
            .outcomes
            .into_iter()
            .enumerate()
            .map(|(u, outcome)| {
                let result = match outcome {
                    Outcome::Done => Ok(()),
                    Outcome::Failed(why) => Err(why),
                    Outcome::Skipped => Err("not undone: what had to go first failed".into()),
                };
                (undo[u], result)
            })
            .collect();
    }
    Ok(report)
}

/// Undoing a job is a job of its own.
struct Undo<J>(Arc<J>);

#[async_trait]
impl<J: Job> Job for Undo<J> {
    fn label(&self) -> String {
        format!("undo {}", self.0.label())
    }

    fn group(&self) -> Option<String> {
        None
    }

    fn weight(&self) -> u64 {
        self.0.weight()
    }

    async fn run(&self) -> Result<(), String> {
        self.0.undo().await
    }
}

/// The order between jobs, checked for cycles, with each job's priority.
struct Dag {
    graph: DiGraph<String, ()>,
    /// The weight of the longest chain a job heads.
    priority: Vec<u64>,
}

impl Dag {
    fn new<J: Job>(jobs: &[Arc<J>], edges: &[(usize, usize)]) -> Result<Dag, Cycle> {
        let mut graph = DiGraph::new();
        for job in jobs {
            graph.add_node(job.label());
        }
        for &(a, b) in edges {
            graph.update_edge(NodeIndex::new(a), NodeIndex::new(b), ());
        }
        let order = petgraph::algo::toposort(&graph, None)
            .map_err(|_| find_cycle(&graph, String::clone))?;
        let mut priority = vec![0; jobs.len()];
        for &n in order.iter().rev() {
            let longest = graph.neighbors(n).map(|m| priority[m.index()]).max();
            priority[n.index()] = jobs[n.index()].weight() + longest.unwrap_or(0);
        }
        Ok(Dag { graph, priority })
    }
}

/// Runs the jobs of `dag` once each (or again, when asked), as far as
/// failures allow.
async fn run<J: Job>(dag: &Dag, jobs: &[Arc<J>], options: &Options<'_>) -> Report {
    let n = jobs.len();
    let mut waiting: Vec<usize> = (0..n)
        .map(|i| {
            dag.graph
                .neighbors_directed(NodeIndex::new(i), petgraph::Direction::Incoming)
                .count()
        })
        .collect();
    let mut outcomes: Vec<Option<Outcome>> = vec![None; n];
    // Highest priority first; among equals, the job given first.
    let mut ready: BinaryHeap<(u64, Reverse<usize>)> = (0..n)
        .filter(|&i| waiting[i] == 0)
        .map(|i| (dag.priority[i], Reverse(i)))
        .collect();
    let mut failed: HashSet<String> = HashSet::new();
    let mut decided: HashMap<String, Decision> = HashMap::new();
    // Jobs of each group not ended yet, and the groups under way.
    let mut unfinished: HashMap<String, usize> = HashMap::new();
    for job in jobs {
        if let Some(g) = job.group() {
            *unfinished.entry(g).or_default() += 1;
        }
    }
    let mut under_way: HashSet<String> = HashSet::new();
    let mut running: JoinSet<Result<(), String>> = JoinSet::new();
    let mut task_of: HashMap<tokio::task::Id, usize> = HashMap::new();
    let mut retried: HashSet<usize> = HashSet::new();
    let mut report = Report::default();
    let parallelism = options.parallelism.max(1);
    // A job ended for good: its group may no longer be under way.
    let mut end = |g: &Option<String>, under_way: &mut HashSet<String>| {
        if let Some(g) = g {
            let left = unfinished.get_mut(g).expect("a counted group");
            *left -= 1;
            if *left == 0 {
                under_way.remove(g);
            }
        }
    };
    // Failed jobs whose group awaits the user's answer, and those groups:
    // their other jobs wait, the other groups go on.
    let mut asking: JoinSet<(usize, String, Decision)> = JoinSet::new();
    let mut paused: HashSet<String> = HashSet::new();
    loop {
        let mut held = Vec::new();
        while running.len() < parallelism {
            let Some((priority, Reverse(i))) = ready.pop() else {
                break;
            };
            if !report.stopped && (options.stop)() {
                report.stopped = true;
            }
            let group = jobs[i].group();
            let group_failed = group.as_ref().is_some_and(|g| failed.contains(g));
            if report.stopped || group_failed {
                outcomes[i] = Some(Outcome::Skipped);
                end(&group, &mut under_way);
                continue;
            }
            if group.as_ref().is_some_and(|g| paused.contains(g)) {
                held.push((priority, Reverse(i)));
                continue;
            }
            // A failed group holds no place: its work only winds down.
            let holding = under_way.iter().filter(|g| !failed.contains(*g)).count();
            if let (Some(g), Some(max)) = (&group, options.max_groups)
                && !under_way.contains(g)
                && holding >= max.max(1)
            {
                // Its build waits for another to finish.
                held.push((priority, Reverse(i)));
                continue;
            }
            if let Some(g) = &group {
                under_way.insert(g.clone());
            }
            let job = Arc::clone(&jobs[i]);
            // A retried job first undoes what its failed attempt left (a
            // failed image would hold the name the next attempt needs).
            let again = retried.remove(&i);
            let task = running.spawn(async move {
                if again {
                    job.undo()
                        .await
                        .map_err(|e| format!("undoing the failed attempt: {e}"))?;
                }
                job.run().await
            });
            task_of.insert(task.id(), i);
        }
        ready.extend(held);
        if running.is_empty() && asking.is_empty() {
            break;
        }
        // A job ended, or the user answered for a failed one.
        let (i, result) = tokio::select! {
            Some(joined) = running.join_next_with_id(), if !running.is_empty() => match joined {
                Ok((task, result)) => (task_of[&task], result.map_err(|why| (why, None))),
                Err(e) => (
                    task_of[&e.id()],
                    Err((format!("panicked: {}", panic_message(e)), None)),
                ),
            },
            Some(answer) = asking.join_next(), if !asking.is_empty() => {
                let (i, why, decision) = answer.expect("asking does not panic");
                if let Some(g) = jobs[i].group() {
                    paused.remove(&g);
                }
                (i, Err((why, Some(decision))))
            }
        };
        let group = jobs[i].group();
        match result {
            Ok(()) => {
                outcomes[i] = Some(Outcome::Done);
                end(&group, &mut under_way);
                for next in dag.graph.neighbors(NodeIndex::new(i)) {
                    let next = next.index();
                    waiting[next] -= 1;
                    if waiting[next] == 0 {
                        ready.push((dag.priority[next], Reverse(next)));
                    }
                }
            }
            Err((why, answered)) => {
                let decision = match (answered, &group, options.ask) {
                    (Some(decision), _, _) => decision,
                    (None, Some(g), Some(ask)) if !(options.stop)() => {
                        let question = ask(Failure {
                            group: g.clone(),
                            job: jobs[i].label(),
                            why: why.clone(),
                        });
                        paused.insert(g.clone());
                        asking.spawn(async move { (i, why, question.await) });
                        continue;
                    }
                    _ => options.on_failure,
                };
                if decision == Decision::Retry {
                    retried.insert(i);
                    ready.push((dag.priority[i], Reverse(i)));
                    continue;
                }
                if let Some(g) = &group {
                    failed.insert(g.clone());
                    decided.entry(g.clone()).or_insert(decision);
                }
                outcomes[i] = Some(Outcome::Failed(why));
                end(&group, &mut under_way);
            }
        }
    }
    // A group with work that never ran (its own failure, another's it
    // waited for, or a stop) did not finish.
    for (i, job) in jobs.iter().enumerate() {
        if outcomes[i] != Some(Outcome::Done)
            && let Some(g) = job.group()
        {
            failed.insert(g);
        }
    }
    report.outcomes = outcomes
        .into_iter()
        .map(|o| o.unwrap_or(Outcome::Skipped))
        .collect();
    report.kept_groups = failed
        .iter()
        .filter(|g| decided.get(*g).copied().unwrap_or(options.on_failure) == Decision::Keep)
        .cloned()
        .collect();
    report.failed_groups = failed.into_iter().collect();
    report
}

fn panic_message(e: tokio::task::JoinError) -> String {
    if !e.is_panic() {
        return e.to_string();
    }
    let payload = e.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[derive(Clone)]
    enum Does {
        Succeed,
        Fail,
        Panic,
        /// Runs only if `n` jobs meet at the barrier at once.
        Meet(Arc<tokio::sync::Barrier>),
        Sleep(u64),
        /// Fails the first time only.
        FailOnce(Arc<AtomicUsize>),
        /// Succeeds, and says so.
        Signal(Arc<tokio::sync::Notify>),
    }

    /// A job that logs what happens to it and counts how many run at once.
    struct Probe {
        name: &'static str,
        group: Option<&'static str>,
        weight: u64,
        does: Does,
        log: Arc<Mutex<Vec<String>>>,
        running: Arc<AtomicUsize>,
        most: Arc<AtomicUsize>,
    }

    #[async_trait]
    impl Job for Probe {
        fn label(&self) -> String {
            self.name.to_string()
        }

        fn group(&self) -> Option<String> {
            self.group.map(String::from)
        }

        fn weight(&self) -> u64 {
            self.weight
        }

        async fn run(&self) -> Result<(), String> {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            self.log.lock().unwrap().push(format!("run {}", self.name));
            let result = match &self.does {
                Does::Succeed => Ok(()),
                Does::Fail => Err(format!("{} failed", self.name)),
                Does::Panic => panic!("{} panicked on purpose", self.name),
                Does::Meet(barrier) => {
                    match tokio::time::timeout(Duration::from_secs(5), barrier.wait()).await {
                        Ok(_) => Ok(()),
                        Err(_) => Err("nobody met me".into()),
                    }
                }
                Does::Sleep(ms) => {
                    tokio::time::sleep(Duration::from_millis(*ms)).await;
                    Ok(())
                }
                Does::Signal(done) => {
                    done.notify_one();
                    Ok(())
                }
                Does::FailOnce(tries) => match tries.fetch_add(1, Ordering::SeqCst) {
                    0 => Err(format!("{} failed", self.name)),
                    _ => Ok(()),
                },
            };
            self.running.fetch_sub(1, Ordering::SeqCst);
            result
        }

        async fn undo(&self) -> Result<(), String> {
            self.log.lock().unwrap().push(format!("undo {}", self.name));
            Ok(())
        }
    }

    struct Bench {
        log: Arc<Mutex<Vec<String>>>,
        running: Arc<AtomicUsize>,
        most: Arc<AtomicUsize>,
    }

    impl Bench {
        fn new() -> Bench {
            Bench {
                log: Arc::default(),
                running: Arc::default(),
                most: Arc::default(),
            }
        }

        fn job(&self, name: &'static str, group: Option<&'static str>, does: Does) -> Arc<Probe> {
            self.weighed(name, group, 1, does)
        }

        fn weighed(
            &self,
            name: &'static str,
            group: Option<&'static str>,
            weight: u64,
            does: Does,
        ) -> Arc<Probe> {
            Arc::new(Probe {
                name,
                group,
                weight,
                does,
                log: Arc::clone(&self.log),
                running: Arc::clone(&self.running),
                most: Arc::clone(&self.most),
            })
        }

        fn log(&self) -> Vec<String> {
            self.log.lock().unwrap().clone()
        }
    }

    fn never() -> bool {
        false
    }

    fn options(parallelism: usize, reverse: bool) -> Options<'static> {
        let on_failure = if reverse {
            Decision::Reverse
        } else {
            Decision::Keep
        };
        Options::new(parallelism, on_failure, &never)
    }

    #[tokio::test]
    async fn independent_jobs_overlap() {
        let b = Bench::new();
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let jobs = vec![
            b.job("a", Some("one"), Does::Meet(Arc::clone(&barrier))),
            b.job("b", Some("two"), Does::Meet(barrier)),
        ];
        let report = walk(jobs, &[], &options(2, false)).await.unwrap();
        assert_eq!(report.outcomes, [Outcome::Done, Outcome::Done]);
        assert_eq!(b.most.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn the_parallelism_bound_holds() {
        let b = Bench::new();
        let jobs: Vec<_> = (0..20).map(|_| b.job("j", None, Does::Sleep(10))).collect();
        let report = walk(jobs, &[], &options(3, false)).await.unwrap();
        assert!(report.outcomes.iter().all(|o| *o == Outcome::Done));
        assert_eq!(b.log().len(), 20);
        assert_eq!(
            b.most.load(Ordering::SeqCst),
            3,
            "at most 3 at once, and 3 reached"
        );
    }

    #[tokio::test]
    async fn the_longest_remaining_chain_goes_first() {
        let b = Bench::new();
        // x and y are given first, but a heads a chain of three.
        let jobs = vec![
            b.job("x", None, Does::Succeed),
            b.job("y", None, Does::Succeed),
            b.job("a", None, Does::Succeed),
            b.job("b", None, Does::Succeed),
            b.job("c", None, Does::Succeed),
            b.weighed("long", None, 10, Does::Succeed),
        ];
        let edges = [(2, 3), (3, 4)];
        walk(jobs, &edges, &options(1, false)).await.unwrap();
        // Once a and b are done, c heads a chain as short as x's and y's:
        // then the order they were given decides.
        assert_eq!(
            b.log(),
            ["run long", "run a", "run b", "run x", "run y", "run c"]
        );
    }

    #[tokio::test]
    async fn a_failure_stops_new_work_and_reverses_exactly_what_was_made() {
        let b = Bench::new();
        let jobs = vec![
            b.job("a", Some("web"), Does::Succeed),
            b.job("b", Some("web"), Does::Fail),
            b.job("c", Some("web"), Does::Succeed),
            b.job("d", Some("web"), Does::Succeed),
            // Independent of the chain, in the same build: not started
            // after the failure.
            b.job("late", Some("web"), Does::Succeed),
            b.job("x", Some("db"), Does::Succeed),
            b.job("y", Some("db"), Does::Succeed),
        ];
        let edges = [(0, 1), (1, 2), (2, 3), (5, 6)];
        let report = walk(jobs, &edges, &options(1, true)).await.unwrap();
        assert_eq!(
            report.outcomes,
            [
                Outcome::Done,
                Outcome::Failed("b failed".into()),
                Outcome::Skipped,
                Outcome::Skipped,
                Outcome::Skipped,
                Outcome::Done,
                Outcome::Done,
            ]
        );
        assert_eq!(report.failed_groups, BTreeSet::from(["web".to_string()]));
        let log = b.log();
        let undos: Vec<&String> = log.iter().filter(|l| l.starts_with("undo")).collect();
        assert_eq!(undos, ["undo b", "undo a"], "{log:?}");
        assert!(!log.contains(&"run c".to_string()) && !log.contains(&"run late".to_string()));
        let undone: Vec<usize> = report.undone.iter().map(|(i, _)| *i).collect();
        assert_eq!(undone, [0, 1]);
    }

    #[tokio::test]
    async fn without_reversal_a_failed_group_is_left_as_it_is() {
        let b = Bench::new();
        let jobs = vec![
            b.job("a", Some("web"), Does::Succeed),
            b.job("b", Some("web"), Does::Fail),
        ];
        let report = walk(jobs, &[(0, 1)], &options(2, false)).await.unwrap();
        assert!(report.undone.is_empty());
        assert_eq!(b.log(), ["run a", "run b"]);
    }

    /// Asked, the user decides per group: a retried job first undoes its
    /// failed attempt, then runs again and the group goes on; a kept group
    /// is left as it is.
    #[tokio::test]
    async fn each_failed_group_gets_its_answer() {
        let b = Bench::new();
        let jobs = vec![
            b.job("a", Some("web"), Does::Succeed),
            b.job("b", Some("web"), Does::FailOnce(Arc::default())),
            b.job("c", Some("web"), Does::Succeed),
            b.job("x", Some("db"), Does::Succeed),
            b.job("y", Some("db"), Does::Fail),
        ];
        let asked = Mutex::new(Vec::new());
        let ask = |f: Failure| -> BoxFuture<'static, Decision> {
            asked
                .lock()
                .unwrap()
                .push(format!("{}: {}", f.group, f.job));
            let answer = if f.group == "web" {
                Decision::Retry
            } else {
                Decision::Keep
            };
            Box::pin(async move { answer })
        };
        let options = Options {
            ask: Some(&ask),
            ..options(1, true)
        };
        let report = walk(jobs, &[(0, 1), (1, 2), (3, 4)], &options)
            .await
            .unwrap();
        assert_eq!(
            report.outcomes[..3],
            [Outcome::Done, Outcome::Done, Outcome::Done]
        );
        assert_eq!(report.outcomes[4], Outcome::Failed("y failed".into()));
        assert_eq!(report.failed_groups, BTreeSet::from(["db".to_string()]));
        assert_eq!(report.kept_groups, BTreeSet::from(["db".to_string()]));
        assert!(report.undone.is_empty());
        let mut asked = asked.into_inner().unwrap();
        asked.sort();
        assert_eq!(asked, ["db: y", "web: b"]);
        let log = b.log();
        let web: Vec<&String> = log
            .iter()
            .filter(|l| {
                ["a", "b", "c"]
                    .iter()
                    .any(|n| l.ends_with(&format!(" {n}")))
            })
            .collect();
        assert_eq!(
            web,
            ["run a", "run b", "undo b", "run b", "run c"],
            "{log:?}"
        );
    }

    /// With `max_groups`, a group starts only once another has finished.
    #[tokio::test]
    async fn at_most_so_many_groups_are_under_way() {
        let b = Bench::new();
        let jobs = vec![
            b.job("a1", Some("a"), Does::Sleep(5)),
            b.job("a2", Some("a"), Does::Sleep(5)),
            b.job("b1", Some("b"), Does::Sleep(5)),
            b.job("b2", Some("b"), Does::Sleep(5)),
            b.job("free", None, Does::Sleep(5)),
        ];
        let options = Options {
            max_groups: Some(1),
            ..options(4, true)
        };
        let report = walk(jobs, &[(0, 1), (2, 3)], &options).await.unwrap();
        assert!(report.outcomes.iter().all(|o| *o == Outcome::Done));
        let grouped: Vec<String> = b.log().into_iter().filter(|l| l != "run free").collect();
        assert_eq!(grouped, ["run a1", "run a2", "run b1", "run b2"]);
        assert_eq!(b.most.load(Ordering::SeqCst), 2, "free runs beside a");
    }

    /// A failed build holds no place among those under way: the next
    /// one starts.
    #[tokio::test]
    async fn a_failed_group_makes_way_for_the_next() {
        let b = Bench::new();
        let jobs = vec![
            b.job("a1", Some("a"), Does::Fail),
            b.job("a2", Some("a"), Does::Succeed),
            b.job("b1", Some("b"), Does::Succeed),
            b.job("b2", Some("b"), Does::Succeed),
        ];
        let options = Options {
            max_groups: Some(1),
            ..options(1, false)
        };
        let report = walk(jobs, &[(0, 1), (2, 3)], &options).await.unwrap();
        assert_eq!(report.outcomes[2..], [Outcome::Done, Outcome::Done]);
        assert_eq!(report.failed_groups, BTreeSet::from(["a".to_string()]));
    }

    /// While the user is asked about one build, the others go on.
    #[tokio::test]
    async fn other_groups_go_on_while_the_user_is_asked() {
        let b = Bench::new();
        let done = Arc::new(tokio::sync::Notify::new());
        let jobs = vec![
            b.job("web", Some("web"), Does::Fail),
            b.job("db1", Some("db"), Does::Succeed),
            b.job("db2", Some("db"), Does::Signal(Arc::clone(&done))),
        ];
        let log = Arc::clone(&b.log);
        let ask = move |_: Failure| -> BoxFuture<'static, Decision> {
            let (done, log) = (Arc::clone(&done), Arc::clone(&log));
            Box::pin(async move {
                let _ = tokio::time::timeout(Duration::from_secs(5), done.notified()).await;
                log.lock().unwrap().push("answered".into());
                Decision::Keep
            })
        };
        let options = Options {
            ask: Some(&ask),
            ..options(1, true)
        };
        let report = walk(jobs, &[(1, 2)], &options).await.unwrap();
        assert_eq!(report.outcomes[1..], [Outcome::Done, Outcome::Done]);
        let log = b.log();
        let at = |what: &str| log.iter().position(|l| l == what).unwrap();
        assert!(at("run db2") < at("answered"), "{log:?}");
        assert_eq!(report.kept_groups, BTreeSet::from(["web".to_string()]));
    }

    #[tokio::test]
    async fn a_cycle_is_refused_naming_it() {
        let b = Bench::new();
        let jobs = vec![
            b.job("d", None, Does::Succeed),
            b.job("a", None, Does::Succeed),
            b.job("b", None, Does::Succeed),
            b.job("c", None, Does::Succeed),
        ];
        let edges = [(0, 1), (1, 2), (2, 3), (3, 1)];
        let cycle = walk(jobs, &edges, &options(2, true)).await.unwrap_err();
        assert_eq!(cycle.0, ["a", "b", "c"]);
        assert_eq!(cycle.to_string(), "the graph has a cycle: a -> b -> c -> a");
        assert!(b.log().is_empty(), "nothing ran");
    }

    #[tokio::test]
    async fn a_panicking_job_fails_only_its_group() {
        let b = Bench::new();
        let jobs = vec![
            b.job("a", Some("web"), Does::Panic),
            b.job("a2", Some("web"), Does::Succeed),
            b.job("x", Some("db"), Does::Succeed),
            b.job("y", Some("db"), Does::Succeed),
        ];
        let edges = [(0, 1), (2, 3)];
        let report = walk(jobs, &edges, &options(2, true)).await.unwrap();
        match &report.outcomes[0] {
            Outcome::Failed(why) => assert!(why.contains("a panicked on purpose"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(report.outcomes[1], Outcome::Skipped);
        assert_eq!(report.outcomes[2..], [Outcome::Done, Outcome::Done]);
        assert_eq!(report.failed_groups, BTreeSet::from(["web".to_string()]));
        assert!(
            b.log().contains(&"undo a".to_string()),
            "cleanup still runs"
        );
    }

    #[tokio::test]
    async fn a_stop_starts_nothing_more_and_fails_unfinished_groups() {
        let b = Bench::new();
        let stop = || true;
        let jobs = vec![
            b.job("a", Some("web"), Does::Succeed),
            b.job("b", Some("web"), Does::Succeed),
        ];
        let report = walk(jobs, &[(0, 1)], &Options::new(1, Decision::Reverse, &stop))
            .await
            .unwrap();
        assert!(report.stopped);
        assert_eq!(report.outcomes, [Outcome::Skipped, Outcome::Skipped]);
        assert_eq!(report.failed_groups, BTreeSet::from(["web".to_string()]));
        assert!(b.log().is_empty(), "{:?}", b.log());
    }
}
