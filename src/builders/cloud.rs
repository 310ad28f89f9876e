//! What every step talks to: the API client, the shared waiters, the batched
//! tagger, the account, and the rules every created resource follows
//! (ownership tags, temporary names).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::graph::{Address, Event, Recorder, StepError};
use crate::oapi::model::ResourceTag;
use crate::oapi::wait::{WaitPolicy, Waiters};
use crate::oapi::{Client, Error};

pub const TAG_LINEAGE: &str = "osci:lineage";
pub const TAG_BUILD: &str = "osci:build";

/// How often a long wait tells the user it is still waiting.
const PROGRESS_EVERY: Duration = Duration::from_secs(15);

/// The cloud one plan and its apply work against.
pub struct Cloud {
    pub client: Client,
    pub waiters: Waiters,
    pub wait: WaitPolicy,
    pub tagger: super::tagger::Tagger,
    pub account_id: String,
    /// The metadata service of the VM osci runs on (the chroot builder's
    /// host).
    pub metadata: super::metadata::Metadata,
}

impl Cloud {
    pub fn new(
        client: Client,
        wait: WaitPolicy,
        account_id: String,
        metadata: super::metadata::Metadata,
    ) -> Cloud {
        Cloud {
            metadata,
            waiters: Waiters::new(&client),
            tagger: super::tagger::Tagger::new(client.clone()),
            client,
            wait,
            account_id,
        }
    }

    pub fn region(&self) -> &str {
        self.client.region()
    }
}

/// The tags that mark a resource as made by this state for this build. They
/// are the same for every resource of a build, so one CreateTags marks all
/// that were made at the same moment.
pub fn ownership_tags(lineage: &str, build: &str) -> Vec<ResourceTag> {
    vec![
        ResourceTag::new(TAG_LINEAGE, lineage),
        ResourceTag::new(TAG_BUILD, build),
    ]
}

/// Carries this state's lineage tag.
pub fn ours(tags: &[ResourceTag], lineage: &str) -> bool {
    tags.iter()
        .any(|t| t.key == TAG_LINEAGE && t.value == lineage)
}

/// Carries another state's lineage tag.
pub fn foreign(tags: &[ResourceTag], lineage: &str) -> bool {
    tags.iter()
        .any(|t| t.key == TAG_LINEAGE && t.value != lineage)
}

/// Tags the user manages: everything but osci's own.
pub fn user_tags(tags: &[ResourceTag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter(|t| !t.key.starts_with("osci:"))
        .map(|t| (t.key.clone(), t.value.clone()))
        .collect()
}

pub fn to_tags(map: &BTreeMap<String, String>) -> Vec<ResourceTag> {
    map.iter().map(|(k, v)| ResourceTag::new(k, v)).collect()
}

/// A unique name for a temporary resource: `osci-LINEAGE-BUILD-RANDOM`.
pub fn temporary_name(lineage: &str, build: &str) -> String {
    format!(
        "osci-{}-{build}-{}",
        lineage.chars().take(8).collect::<String>(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// An API error as a step failure.
pub fn failed(e: Error) -> StepError {
    StepError::Failed(e.to_string())
}

/// Runs a wait for `address` to be `target`, telling the user when it
/// starts, what states it sees, every [`PROGRESS_EVERY`] while it lasts, and
/// when it ends. The first Ctrl-C ends it at once: what it waits for is
/// recorded, so cleanup can start.
pub async fn waiting<T>(
    rec: &dyn Recorder,
    address: &Address,
    target: &str,
    wait: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, StepError> {
    let started = Instant::now();
    let event = |state: String| {
        rec.event(Event::Wait {
            address: address.clone(),
            state,
            elapsed: started.elapsed(),
        })
    };
    event(format!("waiting to be {target}"));
    let mut ticks = tokio::time::interval(Duration::from_millis(250));
    let mut told = Instant::now();
    tokio::pin!(wait);
    let result = loop {
        tokio::select! {
            result = &mut wait => break result.map_err(failed)?,
            _ = ticks.tick() => {
                if rec.cancelled() {
                    return Err(StepError::Interrupted(format!(
                        "interrupted while waiting for {address} to be {target}"
                    )));
                }
                if told.elapsed() >= PROGRESS_EVERY {
                    told = Instant::now();
                    event(format!("still waiting to be {target}"));
                }
            }
        }
    };
    event(target.to_string());
    Ok(result)
}

/// How a wait reports the states it sees to the user.
pub fn state_reporter<'a>(
    rec: &'a dyn Recorder,
    address: &'a Address,
) -> impl Fn(&str) + Sync + 'a {
    let started = Instant::now();
    move |state: &str| {
        rec.event(Event::Wait {
            address: address.clone(),
            state: state.to_string(),
            elapsed: started.elapsed(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_tags_hide_osci_tags() {
        let t = vec![
            ResourceTag::new(TAG_LINEAGE, "x"),
            ResourceTag::new("team", "a"),
        ];
        assert_eq!(
            user_tags(&t),
            BTreeMap::from([("team".to_string(), "a".to_string())])
        );
    }
}
