//! The answers every resource gives the same way: list (`GET /v2.0/<collection>`), show
//! (`GET …/{id}`), and the object answered after a create (201) or an update (200).
//!
//! A resource module describes itself once as a [`Resource`] (its wrapper keys, its
//! not-found error, how to find an object by id, enumerate them and render one); these
//! answers are written once here for all of them. `I` is the index of an object in a
//! [`State`]: `usize`, or `(group, rule)` for rules.
//!
//! The two not-found answers are kept as they were: `show` says `<What> <id> could not be
//! found.`; an object that vanished between a change and the snapshot that renders it is
//! answered with its bare id.
//!
//! Owns: the shape of list, show and single-object answers. May not touch: a resource's
//! rendering or bodies (each resource module owns its own), the store beyond taking a
//! snapshot, or query parsing and filtering ([`super::query`]).

use serde_json::{Map, Value};

use super::error::{Fail, Reply};
use super::query::filter;
use crate::control::store::{State, Store};

/// One resource of the API, as the generic answers need it.
pub(super) struct Resource<I> {
    /// The wrapper key of a list (`security_groups`).
    pub(super) collection: &'static str,
    /// The wrapper key of one object (`security_group`).
    pub(super) key: &'static str,
    /// The Neutron error type when no object has the id (`SecurityGroupNotFound`).
    pub(super) not_found: &'static str,
    /// The resource's name in a show's not-found message (`Security group`).
    pub(super) what: &'static str,
    /// Every object, in the order a list shows them.
    pub(super) all: fn(&State) -> Vec<I>,
    /// The object with this id.
    pub(super) find: fn(&State, &str) -> Option<I>,
    /// One object as Neutron shows it.
    pub(super) render: fn(&State, I) -> Value,
}

/// `{"<key>": value}` with `status`.
pub(super) fn wrapped(status: u16, key: &str, v: Value) -> Reply {
    let mut m = Map::new();
    m.insert(key.to_string(), v);
    Ok((status, Some(Value::Object(m))))
}

impl<I> Resource<I> {
    /// `200 {"<collection>": [...]}`: the objects of `s` matching every filter of `query`.
    pub(super) fn list_in(&self, s: &State, query: &[(String, String)]) -> Reply {
        let items = (self.all)(s)
            .into_iter()
            .map(|i| (self.render)(s, i))
            .collect();
        wrapped(200, self.collection, Value::Array(filter(items, query)?))
    }

    /// `GET /v2.0/<collection>` on the current snapshot.
    pub(super) fn list(&self, store: &Store, query: &[(String, String)]) -> Reply {
        self.list_in(&store.snapshot(), query)
    }

    /// `GET /v2.0/<collection>/{id}`: `200 {"<key>": {...}}`, or 404
    /// `<What> <id> could not be found.`
    pub(super) fn show(&self, store: &Store, id: &str) -> Reply {
        let snap = store.snapshot();
        match (self.find)(&snap, id) {
            Some(i) => wrapped(200, self.key, (self.render)(&snap, i)),
            None => Err(Fail::not_found(
                self.not_found,
                format!("{} {id} could not be found.", self.what),
            )),
        }
    }

    /// The object with `id` in `s`, rendered; 404 naming the bare id if it is gone.
    pub(super) fn render_id(&self, s: &State, id: &str) -> Result<Value, Fail> {
        let i = (self.find)(s, id).ok_or_else(|| Fail::not_found(self.not_found, id))?;
        Ok((self.render)(s, i))
    }

    /// The answer to a create: `201 {"<key>": {...}}` from a fresh snapshot.
    pub(super) fn created(&self, store: &Store, id: &str) -> Reply {
        wrapped(201, self.key, self.render_id(&store.snapshot(), id)?)
    }

    /// The answer to an update: `200 {"<key>": {...}}` from a fresh snapshot.
    pub(super) fn updated(&self, store: &Store, id: &str) -> Reply {
        wrapped(200, self.key, self.render_id(&store.snapshot(), id)?)
    }
}
