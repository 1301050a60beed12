//! What a resource destroyed in this apply leaves its successor at the same
//! address. Terraform replaces an object by destroying it and then creating
//! the new one, in one provider process, and gives the create no prior state:
//! this is the only way the create learns what its predecessor owned. The
//! host-key pin goes through the pool ([`Context::remember_pin`]); the owner
//! id of a builder that did not clean its host goes here.

use std::collections::HashMap;
use std::sync::Mutex;

use tf_provider::Diagnostics;

use super::{Context, Target};

/// Owner ids left on hosts by objects destroyed in this process, by
/// `host:port`.
#[derive(Default)]
pub struct Successors {
    owners: Mutex<HashMap<String, String>>,
}

impl Context {
    fn address(&self, target: &Target<'_>) -> Option<String> {
        let mut quiet = Diagnostics::default();
        let settings = self.settings(target, &mut quiet)?;
        Some(format!(
            "{}:{}",
            settings.endpoint.host, settings.endpoint.port
        ))
    }

    /// A destroyed object's `owner_id` stays on `target` (it did not clean
    /// the host): the next object created there in this apply takes it over.
    pub fn leave_owner(&self, target: &Target<'_>, owner_id: &str) {
        if let Some(address) = self.address(target) {
            let mut owners = self.successors.owners.lock().expect("successors lock");
            owners.insert(address, owner_id.to_string());
        }
    }

    /// The owner id a destroyed object left on `target` in this apply, taken
    /// (one successor inherits it).
    pub fn take_left_owner(&self, target: &Target<'_>) -> Option<String> {
        let address = self.address(target)?;
        let mut owners = self.successors.owners.lock().expect("successors lock");
        owners.remove(&address)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::context;
    use super::*;
    use tf_provider::value::Value;

    #[test]
    fn one_successor_at_the_same_address_inherits_the_owner() {
        let context = context();
        let agent = Value::Value(super::super::SshBlock {
            agent: Value::Value(true),
            ..Default::default()
        });
        let at = |host| Target::new(host, &agent);
        context.leave_owner(&at("10.0.0.1"), "aa");
        assert_eq!(context.take_left_owner(&at("10.0.0.2")), None);
        assert_eq!(context.take_left_owner(&at("10.0.0.1")), Some("aa".into()));
        assert_eq!(context.take_left_owner(&at("10.0.0.1")), None);
    }
}
