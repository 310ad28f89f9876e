//! Keypairs: generated (the private key is returned once, never kept) or
//! imported; names unique per account.

use super::{Ctx, check_len};
use crate::oapi::Secret;
use crate::oapi::model::*;
use crate::sim::error::{Kind, SimError, SimResult};
use crate::sim::filters;
use crate::sim::keys;
use crate::sim::world::KeypairRecord;

pub fn create(ctx: &mut Ctx<'_>, req: CreateKeypairRequest) -> SimResult<CreateKeypairResponse> {
    check_len("KeypairName", &req.keypair_name, 1, 255)?;
    if !req
        .keypair_name
        .chars()
        .all(|c| c.is_ascii_graphic() || c == ' ')
    {
        return Err(SimError::invalid_value(
            "KeypairName must be printable ASCII",
        ));
    }
    if ctx
        .world
        .keypairs
        .values()
        .any(|k| k.owner == ctx.account && k.keypair.keypair_name == req.keypair_name)
    {
        return Err(SimError::conflict(
            "9011",
            format!("a keypair named `{}` already exists", req.keypair_name),
        ));
    }
    let (private_key, public) = match &req.public_key {
        Some(b64) => (None, keys::import(b64)?),
        None => {
            let (pem, public) = keys::generate()?;
            (Some(Secret::new(pem)), public)
        }
    };
    let id = ctx.world.new_id(Kind::Keypair);
    let keypair = Keypair {
        keypair_name: req.keypair_name.clone(),
        keypair_id: Some(id.clone()),
        keypair_fingerprint: Some(public.fingerprint()),
        keypair_type: Some(public.kind.clone()),
        tags: Vec::new(),
    };
    ctx.world.keypairs.insert(
        id.clone(),
        KeypairRecord {
            keypair: keypair.clone(),
            owner: ctx.account.clone(),
            public_key: public.openssh(),
        },
    );
    Ok(CreateKeypairResponse {
        keypair: KeypairCreated {
            keypair_name: keypair.keypair_name,
            keypair_id: keypair.keypair_id,
            keypair_fingerprint: keypair.keypair_fingerprint,
            keypair_type: keypair.keypair_type,
            private_key,
            tags: Vec::new(),
        },
        ..Default::default()
    })
}

pub fn read(ctx: &mut Ctx<'_>, req: ReadKeypairsRequest) -> SimResult<ReadKeypairsResponse> {
    let f = req.filters.unwrap_or_default();
    let keypairs: Vec<Keypair> = ctx
        .world
        .keypairs
        .values()
        .filter(|r| r.owner == ctx.account)
        .map(|r| {
            let mut k = r.keypair.clone();
            k.tags = ctx
                .world
                .tags_of(k.keypair_id.as_deref().unwrap_or_default());
            k
        })
        .filter(|k| {
            filters::any(&f.keypair_names, &k.keypair_name)
                && filters::any_opt(&f.keypair_ids, k.keypair_id.as_deref())
                && filters::any_opt(&f.keypair_fingerprints, k.keypair_fingerprint.as_deref())
                && filters::any_opt(&f.keypair_types, k.keypair_type.as_deref())
                && filters::tags(
                    &f,
                    ctx.world
                        .tags
                        .get(k.keypair_id.as_deref().unwrap_or_default()),
                )
        })
        .collect();
    let (keypairs, next_page_token) = filters::paginate(
        keypairs,
        req.next_page_token.as_deref(),
        req.results_per_page,
    )?;
    Ok(ReadKeypairsResponse {
        keypairs,
        next_page_token,
        ..Default::default()
    })
}

pub fn delete(ctx: &mut Ctx<'_>, req: DeleteKeypairRequest) -> SimResult<EmptyResponse> {
    let id = match (&req.keypair_id, &req.keypair_name) {
        (Some(id), _) => {
            ctx.own(Kind::Keypair, id)?;
            id.clone()
        }
        (None, Some(name)) => ctx
            .world
            .keypairs
            .iter()
            .find(|(_, k)| k.owner == ctx.account && k.keypair.keypair_name == *name)
            .map(|(id, _)| id.clone())
            .ok_or_else(|| SimError::not_found(Kind::Keypair, name))?,
        (None, None) => return Err(SimError::missing_parameter("KeypairName or KeypairId")),
    };
    ctx.world.keypairs.remove(&id);
    ctx.world.tags.remove(&id);
    Ok(EmptyResponse::default())
}
