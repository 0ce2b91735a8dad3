//! The mutations, one per Neutron operation (security groups, rules, address groups,
//! ports; packet logs are in [`super::logs`]), and their request types. Each runs inside
//! `Store::mutate` on a private candidate: it checks quotas and Neutron's rules, edits
//! model and meta at the same index, and returns the new object's id. Deleting or
//! renaming a group or a port carries over to the packet logs that name it, as in
//! Neutron.
//!
//! Owns: what each operation changes and the Neutron errors it answers. May not touch:
//! the committed state, the apply hook or the state file (that is `Store::mutate`'s
//! job: validate → prepare → apply → commit).
//!
//! Depends on: `policy` (model, specs, validators) and its siblings `state`, `to_spec`,
//! `ids`, `error`.

use std::collections::HashMap;

use ipnet::IpNet;

use super::error::StoreError;
use super::ids::{random_mac, Id};
use super::state::{GroupMeta, ObjMeta, State};
use super::to_spec::{model_to_spec, port_to_spec};
use super::{
    over_quota, Store, MAX_ADDRESSES_PER_GROUP, MAX_ADDRESS_GROUPS, MAX_GROUPS, MAX_PORTS,
    MAX_RULES_PER_GROUP,
};
use crate::policy::spec::{
    AllowedAddressPairSpec, BackendSpec, PortSpec, RuleSpec, SecurityGroupSpec,
};
use crate::policy::validate::{self, parse_cidr, DEFAULT_GROUP};
use crate::policy::{AddressGroup, ErrorClass, ErrorKind, Model, NetworkLog, Remote};

/// A new security group.
#[derive(Clone, Debug, Default)]
pub struct GroupCreate {
    pub name: String,
    pub description: Option<String>,
    pub stateful: Option<bool>,
}

/// Changes to a security group (`None` = unchanged).
#[derive(Clone, Debug, Default)]
pub struct GroupUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub stateful: Option<bool>,
}

/// A new rule: the target group's id and the rule as written, with remote group /
/// address group given by **id** (translated to names here).
#[derive(Clone, Debug, Default)]
pub struct RuleCreate {
    pub security_group_id: String,
    pub spec: RuleSpec,
    pub remote_group_id: Option<String>,
    pub remote_address_group_id: Option<String>,
}

/// A new port. Groups are ids; `None` = `[default]` (none without port security).
#[derive(Clone, Debug, Default)]
pub struct PortCreate {
    pub name: String,
    pub network_id: String,
    /// `None`: a random `fa:16:3e` address.
    pub mac: Option<String>,
    pub fixed_ips: Vec<String>,
    pub security_group_ids: Option<Vec<String>>,
    pub port_security: Option<bool>,
    pub allowed_address_pairs: Vec<AllowedAddressPairSpec>,
    pub backend: Option<BackendSpec>,
    /// `binding:host_id` (`None`: not bound).
    pub host: Option<String>,
}

/// Changes to a port (`None` = unchanged).
#[derive(Clone, Debug, Default)]
pub struct PortUpdate {
    pub name: Option<String>,
    /// Group ids; replaces the whole list.
    pub security_group_ids: Option<Vec<String>>,
    pub port_security: Option<bool>,
    pub allowed_address_pairs: Option<Vec<AllowedAddressPairSpec>>,
    /// `binding:host_id`: `Some(None)` unbinds (Neutron: `""`).
    pub host: Option<Option<String>>,
}

/// Changes to an address group.
#[derive(Clone, Debug, Default)]
pub struct AddressGroupUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
}

impl Store {
    // ----- security groups -------------------------------------------------------

    /// Create a security group with the template rules; returns its id.
    pub fn create_group(&self, req: &GroupCreate) -> Result<String, StoreError> {
        self.mutate(|state, now| {
            if state.model.security_groups.len() >= MAX_GROUPS {
                return Err(over_quota("security_group", MAX_GROUPS));
            }
            if req.name.eq_ignore_ascii_case(DEFAULT_GROUP) {
                return Err(StoreError::conflict(
                    "SecurityGroupDefaultAlreadyExists",
                    "Default security group already exists.",
                ));
            }
            let spec = SecurityGroupSpec {
                name: Some(req.name.clone()),
                description: req.description.clone(),
                stateful: req.stateful,
                rules: None,
            };
            let group = validate::validate_group(&state.model, &spec)
                .map_err(|e| StoreError::from_validation(e, state))?;
            let meta = GroupMeta {
                obj: ObjMeta::new(now),
                rules: group.rules.iter().map(|_| ObjMeta::new(now)).collect(),
            };
            let id = meta.obj.id.to_string();
            state.model.security_groups.push(group);
            state.meta.groups.push(meta);
            Ok(id)
        })
    }

    /// Update a group's name / description / stateful flag.
    pub fn update_group(&self, id: &str, req: &GroupUpdate) -> Result<(), StoreError> {
        self.mutate(|state, now| {
            let gi = group_index(state, id)?;
            let old_name = state.model.security_groups[gi].name.clone();
            if let Some(name) = &req.name {
                if *name != old_name {
                    if old_name == DEFAULT_GROUP {
                        return Err(StoreError::conflict(
                            "SecurityGroupCannotUpdateDefault",
                            "Updating default security group not allowed.",
                        ));
                    }
                    if name.eq_ignore_ascii_case(DEFAULT_GROUP) {
                        return Err(StoreError::conflict(
                            "SecurityGroupDefaultAlreadyExists",
                            "Default security group already exists.",
                        ));
                    }
                    rename_group(&mut state.model, &old_name, name);
                }
            }
            if let Some(stateful) = req.stateful {
                let g = &state.model.security_groups[gi];
                if g.stateful != stateful && state.model.ports_in_group(&g.name).next().is_some()
                {
                    return Err(StoreError::conflict(
                        "SecurityGroupInUse",
                        format!(
                            "Security Group {id} in use: cannot change stateful while it is bound to a port."
                        ),
                    ));
                }
                state.model.security_groups[gi].stateful = stateful;
            }
            if let Some(d) = &req.description {
                state.model.security_groups[gi].description = d.clone();
            }
            revalidate(state)?;
            state.meta.groups[gi].obj.touch(now);
            Ok(())
        })
    }

    /// Delete a security group (409 for `default`, or while bound to a port or
    /// referenced as another group's remote group).
    pub fn delete_group(&self, id: &str) -> Result<(), StoreError> {
        self.mutate(|state, _now| {
            let gi = group_index(state, id)?;
            let name = state.model.security_groups[gi].name.clone();
            if name == DEFAULT_GROUP {
                return Err(StoreError::conflict(
                    "SecurityGroupCannotRemoveDefault",
                    "Insufficient rights for removing default security group.",
                ));
            }
            if state.model.ports_in_group(&name).next().is_some() {
                return Err(StoreError::conflict(
                    "SecurityGroupInUse",
                    format!("Security Group {id} in use."),
                ));
            }
            // Neutron deletes rules of other groups that use this group as remote.
            for (g, gm) in state
                .model
                .security_groups
                .iter_mut()
                .zip(state.meta.groups.iter_mut())
            {
                let mut k = 0;
                while k < g.rules.len() {
                    if g.rules[k].remote == Remote::Group(name.clone()) {
                        g.rules.remove(k);
                        gm.rules.remove(k);
                    } else {
                        k += 1;
                    }
                }
            }
            state.model.security_groups.remove(gi);
            state.meta.groups.remove(gi);
            // Neutron deletes the logs of the group (`_clean_logs_by_resource_id`).
            remove_logs(state, |l| l.resource.as_deref() == Some(name.as_str()));
            Ok(())
        })
    }

    // ----- rules -----------------------------------------------------------------

    /// Create rules, all or none (bulk create); returns their ids in order.
    ///
    /// Linear in the request and the model: ids are resolved through maps built once,
    /// the rules are checked by one [`validate::RuleBatch`] (each target group's keys
    /// hashed once) and appended at the end; a duplicate of an earlier rule of the same
    /// request is 409 `DuplicateSecurityGroupRuleInPost`, as in Neutron.
    pub fn create_rules(&self, reqs: &[RuleCreate]) -> Result<Vec<String>, StoreError> {
        self.mutate(|state, now| {
            let accepted = check_new_rules(state, reqs)?;
            let mut ids = Vec::with_capacity(accepted.len());
            let mut touched = Vec::new();
            for (gi, rule) in accepted {
                let meta = ObjMeta::new(now);
                ids.push(meta.id.to_string());
                state.model.security_groups[gi].rules.push(rule);
                state.meta.groups[gi].rules.push(meta);
                touched.push(gi);
            }
            touched.sort_unstable();
            touched.dedup();
            for gi in touched {
                state.meta.groups[gi].obj.touch(now);
            }
            Ok(ids)
        })
    }

    /// Delete a rule.
    pub fn delete_rule(&self, id: &str) -> Result<(), StoreError> {
        self.mutate(|state, now| {
            let (gi, ri) = state.rule_by_id(id).ok_or_else(|| {
                StoreError::not_found(
                    "SecurityGroupRuleNotFound",
                    format!("Security group rule {id} does not exist"),
                )
            })?;
            state.model.security_groups[gi].rules.remove(ri);
            state.meta.groups[gi].rules.remove(ri);
            state.meta.groups[gi].obj.touch(now);
            Ok(())
        })
    }

    // ----- address groups --------------------------------------------------------

    /// Create an address group; returns its id.
    pub fn create_address_group(
        &self,
        name: &str,
        description: Option<&str>,
        addresses: &[String],
    ) -> Result<String, StoreError> {
        self.mutate(|state, now| {
            if state.model.address_groups.len() >= MAX_ADDRESS_GROUPS {
                return Err(over_quota("address_group", MAX_ADDRESS_GROUPS));
            }
            if addresses.len() > MAX_ADDRESSES_PER_GROUP {
                return Err(over_quota("address", MAX_ADDRESSES_PER_GROUP));
            }
            state.model.address_groups.push(AddressGroup {
                name: name.to_string(),
                description: description.unwrap_or_default().to_string(),
                addresses: parse_addresses(addresses)?,
            });
            let meta = ObjMeta::new(now);
            let id = meta.id.to_string();
            state.meta.address_groups.push(meta);
            revalidate(state)?;
            Ok(id)
        })
    }

    /// Rename / re-describe an address group.
    pub fn update_address_group(
        &self,
        id: &str,
        req: &AddressGroupUpdate,
    ) -> Result<(), StoreError> {
        self.mutate(|state, now| {
            let ai = address_group_index(state, id)?;
            if let Some(name) = &req.name {
                let old = state.model.address_groups[ai].name.clone();
                if *name != old {
                    for g in &mut state.model.security_groups {
                        for r in &mut g.rules {
                            if r.remote == Remote::AddressGroup(old.clone()) {
                                r.remote = Remote::AddressGroup(name.clone());
                            }
                        }
                    }
                    state.model.address_groups[ai].name = name.clone();
                }
            }
            if let Some(d) = &req.description {
                state.model.address_groups[ai].description = d.clone();
            }
            revalidate(state)?;
            state.meta.address_groups[ai].touch(now);
            Ok(())
        })
    }

    /// Add (`add == true`) or remove addresses of an address group.
    pub fn change_addresses(
        &self,
        id: &str,
        addresses: &[String],
        add: bool,
    ) -> Result<(), StoreError> {
        self.mutate(|state, now| {
            let ai = address_group_index(state, id)?;
            let nets = parse_addresses(addresses)?;
            let list = &mut state.model.address_groups[ai].addresses;
            for net in nets {
                let at = list.iter().position(|a| *a == net);
                match (add, at) {
                    (true, None) => list.push(net),
                    (true, Some(_)) => {
                        return Err(StoreError::rejected(
                            ErrorClass::BadRequest,
                            "AddressesAlreadyExist",
                            format!("Addresses {net} already exist in address group {id}."),
                        ))
                    }
                    (false, Some(k)) => {
                        list.remove(k);
                    }
                    (false, None) => {
                        return Err(StoreError::rejected(
                            ErrorClass::BadRequest,
                            "AddressesNotFound",
                            format!("Addresses {net} not found in address group {id}."),
                        ))
                    }
                }
            }
            if list.len() > MAX_ADDRESSES_PER_GROUP {
                return Err(over_quota("address", MAX_ADDRESSES_PER_GROUP));
            }
            state.meta.address_groups[ai].touch(now);
            Ok(())
        })
    }

    /// Delete an address group (409 while a rule uses it).
    pub fn delete_address_group(&self, id: &str) -> Result<(), StoreError> {
        self.mutate(|state, _now| {
            let ai = address_group_index(state, id)?;
            let name = state.model.address_groups[ai].name.clone();
            let used = state
                .model
                .security_groups
                .iter()
                .flat_map(|g| g.rules.iter())
                .any(|r| r.remote == Remote::AddressGroup(name.clone()));
            if used {
                return Err(StoreError::conflict(
                    "AddressGroupInUse",
                    format!("Address group {id} is in use by a security group rule."),
                ));
            }
            state.model.address_groups.remove(ai);
            state.meta.address_groups.remove(ai);
            Ok(())
        })
    }

    // ----- ports -----------------------------------------------------------------

    /// Create a port (hot-plug); returns its id.
    pub fn create_port(&self, req: &PortCreate) -> Result<String, StoreError> {
        self.mutate(|state, now| {
            if state.model.ports.len() >= MAX_PORTS {
                return Err(over_quota("port", MAX_PORTS));
            }
            let ni = state.network_by_id(&req.network_id).ok_or_else(|| {
                StoreError::not_found(
                    "NetworkNotFound",
                    format!("Network {} could not be found.", req.network_id),
                )
            })?;
            let groups = match &req.security_group_ids {
                Some(ids) => Some(group_names(state, ids)?),
                None => None,
            };
            let spec = PortSpec {
                name: Some(req.name.clone()),
                network: Some(state.model.networks[ni].name.clone()),
                mac: Some(req.mac.clone().unwrap_or_else(random_mac)),
                fixed_ips: req.fixed_ips.clone(),
                security_groups: groups,
                port_security: req.port_security,
                allowed_address_pairs: req.allowed_address_pairs.clone(),
                backend: req.backend.clone(),
                host: req.host.clone(),
            };
            let port = validate::validate_port(&state.model, &spec)
                .map_err(|e| StoreError::from_validation(e, state))?;
            state.model.ports.push(port);
            let meta = ObjMeta::new(now);
            let id = meta.id.to_string();
            state.meta.ports.push(meta);
            Ok(id)
        })
    }

    /// Update a port.
    pub fn update_port(&self, id: &str, req: &PortUpdate) -> Result<(), StoreError> {
        self.mutate(|state, now| {
            let pi = port_index(state, id)?;
            let mut spec = port_to_spec(&state.model.ports[pi]);
            if let Some(n) = &req.name {
                spec.name = Some(n.clone());
            }
            if let Some(ids) = &req.security_group_ids {
                spec.security_groups = Some(group_names(state, ids)?);
            }
            if let Some(ps) = req.port_security {
                spec.port_security = Some(ps);
            }
            if let Some(aap) = &req.allowed_address_pairs {
                spec.allowed_address_pairs = aap.clone();
            }
            if let Some(host) = &req.host {
                spec.host = host.clone();
            }
            // Validate against the candidate without this port, then put it back in
            // place (the candidate is a private copy: on error it is dropped whole).
            let old = state.model.ports.remove(pi);
            let port = validate::validate_port(&state.model, &spec);
            state.model.ports.insert(pi, old);
            let port = port.map_err(|e| StoreError::from_validation(e, state))?;
            let old_name = std::mem::replace(&mut state.model.ports[pi], port).name;
            let new_name = &state.model.ports[pi].name;
            for l in &mut state.model.logs {
                if l.target.as_deref() == Some(old_name.as_str()) {
                    l.target = Some(new_name.clone());
                }
            }
            state.meta.ports[pi].touch(now);
            Ok(())
        })
    }

    /// Delete a port (hot-unplug).
    pub fn delete_port(&self, id: &str) -> Result<(), StoreError> {
        self.mutate(|state, _now| {
            let pi = port_index(state, id)?;
            let port = state.model.ports.remove(pi);
            state.meta.ports.remove(pi);
            // Neutron deletes the logs that target the port (`_clean_logs_by_target_id`).
            remove_logs(state, |l| l.target.as_deref() == Some(port.name.as_str()));
            Ok(())
        })
    }
}

// ----- helpers ---------------------------------------------------------------------

/// Check every rule of a bulk create against `state` (unchanged): the target group's
/// index and the validated rule of each request, in order.
fn check_new_rules(
    state: &State,
    reqs: &[RuleCreate],
) -> Result<Vec<(usize, crate::policy::Rule)>, StoreError> {
    let groups: HashMap<Id, usize> = (state.meta.groups.iter().enumerate())
        .map(|(i, g)| (g.obj.id, i))
        .collect();
    let address_groups: HashMap<Id, usize> = (state.meta.address_groups.iter().enumerate())
        .map(|(i, a)| (a.id, i))
        .collect();
    let group_named = |id: &str| Id::parse(id).and_then(|id| groups.get(&id).copied());
    let mut batch = validate::RuleBatch::new(&state.model);
    let mut added: HashMap<usize, usize> = HashMap::new();
    let mut out = Vec::with_capacity(reqs.len());
    for req in reqs {
        let gi = group_named(&req.security_group_id).ok_or_else(|| {
            StoreError::not_found(
                "SecurityGroupNotFound",
                format!("Security group {} does not exist", req.security_group_id),
            )
        })?;
        let mut spec = req.spec.clone();
        if let Some(rid) = &req.remote_group_id {
            let ri = group_named(rid).ok_or_else(|| {
                StoreError::not_found(
                    "SecurityGroupNotFound",
                    format!("Security group {rid} does not exist"),
                )
            })?;
            spec.remote_group = Some(state.model.security_groups[ri].name.clone());
        }
        if let Some(aid) = &req.remote_address_group_id {
            let ai = Id::parse(aid)
                .and_then(|id| address_groups.get(&id).copied())
                .ok_or_else(|| {
                    StoreError::not_found(
                        "AddressGroupNotFound",
                        format!("Address group {aid} could not be found."),
                    )
                })?;
            spec.remote_address_group = Some(state.model.address_groups[ai].name.clone());
        }
        let n = added.entry(gi).or_insert(0);
        if state.model.security_groups[gi].rules.len() + *n >= MAX_RULES_PER_GROUP {
            return Err(over_quota("security_group_rule", MAX_RULES_PER_GROUP));
        }
        let existing = state.model.security_groups[gi].rules.len();
        let rule = batch.check(gi, &spec).map_err(|e| match e.errors().first() {
            Some(f) if matches!(f.kind, ErrorKind::DuplicateRule { first } if first >= existing) => {
                StoreError::conflict(
                    "DuplicateSecurityGroupRuleInPost",
                    "Duplicate Security Group Rule in POST.",
                )
            }
            _ => StoreError::from_validation(e, state),
        })?;
        *n += 1;
        out.push((gi, rule));
    }
    Ok(out)
}

pub(super) fn group_index(state: &State, id: &str) -> Result<usize, StoreError> {
    state.group_by_id(id).ok_or_else(|| {
        StoreError::not_found(
            "SecurityGroupNotFound",
            format!("Security group {id} does not exist"),
        )
    })
}

fn address_group_index(state: &State, id: &str) -> Result<usize, StoreError> {
    state.address_group_by_id(id).ok_or_else(|| {
        StoreError::not_found(
            "AddressGroupNotFound",
            format!("Address group {id} could not be found."),
        )
    })
}

pub(super) fn port_index(state: &State, id: &str) -> Result<usize, StoreError> {
    state.port_by_id(id).ok_or_else(|| {
        StoreError::not_found("PortNotFound", format!("Port {id} could not be found."))
    })
}

fn group_names(state: &State, ids: &[String]) -> Result<Vec<String>, StoreError> {
    ids.iter()
        .map(|id| group_index(state, id).map(|gi| state.model.security_groups[gi].name.clone()))
        .collect()
}

fn parse_addresses(addresses: &[String]) -> Result<Vec<IpNet>, StoreError> {
    let mut out: Vec<IpNet> = Vec::with_capacity(addresses.len());
    for a in addresses {
        let net = parse_cidr(a)
            .map_err(|r| {
                StoreError::bad_request(format!(
                    "Invalid input for addresses. Reason: '{a}' is not a valid IP subnet ({r})."
                ))
            })?
            .trunc();
        if out.contains(&net) {
            return Err(StoreError::bad_request(format!(
                "Invalid input for addresses. Reason: duplicate address {net}."
            )));
        }
        out.push(net);
    }
    Ok(out)
}

/// Rename a group and every reference to it (remote groups, port bindings).
fn rename_group(model: &mut Model, old: &str, new: &str) {
    for g in &mut model.security_groups {
        if g.name == old {
            g.name = new.to_string();
        }
        for r in &mut g.rules {
            if r.remote == Remote::Group(old.to_string()) {
                r.remote = Remote::Group(new.to_string());
            }
        }
    }
    for p in &mut model.ports {
        for s in &mut p.security_groups {
            if s == old {
                *s = new.to_string();
            }
        }
    }
    for l in &mut model.logs {
        if l.resource.as_deref() == Some(old) {
            l.resource = Some(new.to_string());
        }
    }
}

/// Remove the logs (model and meta, same index) that `gone` selects.
fn remove_logs(state: &mut State, gone: impl Fn(&NetworkLog) -> bool) {
    let mut k = 0;
    while k < state.model.logs.len() {
        if gone(&state.model.logs[k]) {
            state.model.logs.remove(k);
            state.meta.logs.remove(k);
        } else {
            k += 1;
        }
    }
}

/// Validate the whole candidate model (for changes without a targeted validator).
pub(super) fn revalidate(state: &State) -> Result<(), StoreError> {
    match validate::validate_model(&model_to_spec(&state.model)) {
        Ok(_) => Ok(()),
        Err(e) => Err(StoreError::from_validation(e, state)),
    }
}
