//! Tags on every taggable kind, kept in one table.

use super::{Ctx, check_len};
use crate::oapi::model::*;
use crate::sim::error::{Kind, SimError, SimResult};
use crate::sim::filters;

const TAGS_PER_RESOURCE: usize = 50;

fn check_targets(ctx: &Ctx<'_>, ids: &[String], tags: &[ResourceTag]) -> SimResult<()> {
    if ids.is_empty() {
        return Err(SimError::missing_parameter("ResourceIds"));
    }
    if tags.is_empty() {
        return Err(SimError::missing_parameter("Tags"));
    }
    for id in ids {
        let kind = Kind::of_id(id).ok_or_else(|| {
            SimError::invalid_value(format!("`{id}` is not the id of a taggable resource"))
        })?;
        ctx.own(kind, id)?;
    }
    for t in tags {
        check_len("Tags.Key", &t.key, 1, 255)?;
        check_len("Tags.Value", &t.value, 0, 255)?;
    }
    Ok(())
}

pub fn create(ctx: &mut Ctx<'_>, req: CreateTagsRequest) -> SimResult<EmptyResponse> {
    check_targets(ctx, &req.resource_ids, &req.tags)?;
    for id in &req.resource_ids {
        let mut merged = ctx.world.tags.get(id).cloned().unwrap_or_default();
        for t in &req.tags {
            merged.insert(t.key.clone(), t.value.clone());
        }
        if merged.len() > TAGS_PER_RESOURCE {
            return Err(SimError::quota(
                "10041",
                format!("{id} would have more than {TAGS_PER_RESOURCE} tags"),
            ));
        }
    }
    for id in &req.resource_ids {
        let entry = ctx.world.tags.entry(id.clone()).or_default();
        for t in &req.tags {
            entry.insert(t.key.clone(), t.value.clone());
        }
    }
    Ok(EmptyResponse::default())
}

pub fn delete(ctx: &mut Ctx<'_>, req: DeleteTagsRequest) -> SimResult<EmptyResponse> {
    check_targets(ctx, &req.resource_ids, &req.tags)?;
    for id in &req.resource_ids {
        if let Some(entry) = ctx.world.tags.get_mut(id) {
            for t in &req.tags {
                if entry.get(&t.key) == Some(&t.value) {
                    entry.remove(&t.key);
                }
            }
            if entry.is_empty() {
                ctx.world.tags.remove(id);
            }
        }
    }
    Ok(EmptyResponse::default())
}

pub fn read(ctx: &mut Ctx<'_>, req: ReadTagsRequest) -> SimResult<ReadTagsResponse> {
    let f = req.filters.unwrap_or_default();
    let mut tags = Vec::new();
    for (id, entries) in &ctx.world.tags {
        if ctx.world.owner_of(id) != Some(ctx.account.as_str()) {
            continue;
        }
        let Some(kind) = Kind::of_id(id) else {
            continue;
        };
        for (key, value) in entries {
            let tag = Tag {
                key: key.clone(),
                value: value.clone(),
                resource_id: id.clone(),
                resource_type: kind.tag_type().into(),
            };
            if filters::any(&f.keys, &tag.key)
                && filters::any(&f.values, &tag.value)
                && filters::any(&f.resource_ids, &tag.resource_id)
                && filters::any(&f.resource_types, &tag.resource_type)
            {
                tags.push(tag);
            }
        }
    }
    let (tags, next_page_token) =
        filters::paginate(tags, req.next_page_token.as_deref(), req.results_per_page)?;
    Ok(ReadTagsResponse {
        tags,
        next_page_token,
        ..Default::default()
    })
}
