//! Walking a DAG of jobs, as cargo's `DependencyQueue` does: a job starts
//! once every job before it is done; of the ready ones, those heading the
//! longest remaining chain start first; at most `parallelism` run at once.
//!
//! Jobs belong to groups (a build): the first failure in a group stops new
//! work in it, the rest of the graph goes on, and when asked the walk then
//! reverses what the group made, in reverse order. A panicking job is a
//! failed job.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use petgraph::graph::{DiGraph, NodeIndex};
use tokio::task::JoinSet;

use crate::graph::{Cycle, find_cycle};

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

/// How a walk goes.
pub struct Options<'a> {
    /// At most this many jobs at once (0 counts as 1).
    pub parallelism: usize,
    /// Whether a failed group's work is undone.
    pub reverse: bool,
    /// Asked before each job starts: when it answers true (an interrupt),
    /// no more jobs start, and every group with unfinished work fails.
    pub stop: &'a (dyn Fn() -> bool + Sync),
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
    if options.reverse && !report.failed_groups.is_empty() {
        // What each failed group started, undone in reverse order.
        let undo: Vec<usize> = (0..jobs.len())
            .filter(|&i| {
                jobs[i]
                    .group()
                    .is_some_and(|g| report.failed_groups.contains(&g))
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
            &Options {
                parallelism: options.parallelism,
                reverse: false,
                stop: &never,
            },
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

/// Runs the jobs of `dag` once each, as far as failures allow.
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
    let mut running: JoinSet<Result<(), String>> = JoinSet::new();
    let mut task_of: HashMap<tokio::task::Id, usize> = HashMap::new();
    let mut report = Report::default();
    let parallelism = options.parallelism.max(1);
    loop {
        while running.len() < parallelism {
            let Some((_, Reverse(i))) = ready.pop() else {
                break;
            };
            if !report.stopped && (options.stop)() {
                report.stopped = true;
            }
            let group_failed = jobs[i].group().is_some_and(|g| failed.contains(&g));
            if report.stopped || group_failed {
                outcomes[i] = Some(Outcome::Skipped);
                continue;
            }
            let job = Arc::clone(&jobs[i]);
            let task = running.spawn(async move { job.run().await });
            task_of.insert(task.id(), i);
        }
        let Some(joined) = running.join_next_with_id().await else {
            break;
        };
        let (i, result) = match joined {
            Ok((task, result)) => (task_of[&task], result),
            Err(e) => (
                task_of[&e.id()],
                Err(format!("panicked: {}", panic_message(e))),
            ),
        };
        match result {
            Ok(()) => {
                outcomes[i] = Some(Outcome::Done);
                for next in dag.graph.neighbors(NodeIndex::new(i)) {
                    let next = next.index();
                    waiting[next] -= 1;
                    if waiting[next] == 0 {
                        ready.push((dag.priority[next], Reverse(next)));
                    }
                }
            }
            Err(why) => {
                if let Some(g) = jobs[i].group() {
                    failed.insert(g);
                }
                outcomes[i] = Some(Outcome::Failed(why));
            }
        }
    }
    if report.stopped {
        for (i, job) in jobs.iter().enumerate() {
            if outcomes[i] != Some(Outcome::Done)
                && let Some(g) = job.group()
            {
                failed.insert(g);
            }
        }
    }
    report.outcomes = outcomes
        .into_iter()
        .map(|o| o.unwrap_or(Outcome::Skipped))
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
