//! Applying commands to the catalog. A rejected command changes nothing.

use super::command::{CheckRegistration, Command, CommandResult, Registration};
use super::model::{CheckRecord, CheckStatus, KvRecord, NodeRecord, ServiceRecord};
use super::state::{CatalogState, Changes, Table};

impl CatalogState {
    /// Applies one command at log index `log_index`.
    pub fn apply(&mut self, log_index: u64, command: &Command) -> (CommandResult, Changes) {
        let mut changes = Changes::default();
        self.last_index = self.last_index.max(log_index);
        let index = log_index + self.index_base;
        let result = self.apply_at(index, command, &mut changes);
        (result, changes)
    }

    /// Applies one command whose records get the client index `index`.
    pub(crate) fn apply_at(&mut self, index: u64, command: &Command, changes: &mut Changes) -> CommandResult {
        match command {
            Command::Register(reg) => self.register(index, reg, changes),
            Command::DeregisterNode { node } => self.deregister_node(index, node, changes),
            Command::DeregisterService { node, service_id } => {
                self.deregister_service(index, node, service_id, changes)
            }
            Command::DeregisterCheck { node, check_id } => {
                self.remove_check(index, node, check_id, changes);
                CommandResult::Done
            }
            Command::UpdateCheck { node, check_id, status, output } => {
                self.update_check(index, node, check_id, *status, output, changes)
            }
            Command::KvSet { key, value, flags, cas } => {
                self.kv_set(index, key, value, *flags, *cas, changes)
            }
            Command::KvDelete { key, cas } => self.kv_delete(index, key, *cas, changes),
            Command::Batch(commands) => {
                let mut results = Vec::with_capacity(commands.len());
                for command in commands {
                    // A restore earlier in the batch moves the base: later commands follow it.
                    let index = self.last_index + self.index_base;
                    results.push(self.apply_at(index, command, changes));
                }
                CommandResult::Batch(results)
            }
            Command::RestoreChunk { id, offset, data } => self.restore_chunk(id, *offset, data),
            Command::RestoreCommit { id } => self.restore_commit(id, changes),
            Command::SessionCreate(spec) => self.session_create(index, spec, changes),
            Command::SessionDestroy { id, now_ms } => self.session_invalidate(index, id, *now_ms, changes),
            Command::SessionRenew { id } => self.session_renew(index, id, changes),
            Command::SessionExpire { id, renew_index, now_ms } => {
                self.session_expire(index, id, *renew_index, *now_ms, changes)
            }
            Command::KvLock { key, value, flags, session, now_ms } => {
                self.kv_lock(index, key, value, *flags, session, *now_ms, changes)
            }
            Command::KvUnlock { key, value, flags, session } => {
                self.kv_unlock(index, key, value, *flags, session, changes)
            }
            Command::Txn { ops, now_ms } => self.txn(index, ops, *now_ms, changes),
            Command::DocSet(write) => self.doc_set(index, write, changes),
            Command::DocDelete { kind, key, cas } => self.doc_delete(index, *kind, key, *cas, changes),
            Command::PruneNode { node, keep_services, keep_checks } => {
                self.prune_node(index, node, keep_services, keep_checks, changes)
            }
            Command::KvDeleteTree { prefix } => {
                let keys: Vec<String> = self
                    .kv
                    .range(prefix.clone()..)
                    .take_while(|(k, _)| k.starts_with(prefix))
                    .map(|(k, _)| k.clone())
                    .collect();
                for key in keys {
                    self.kv_remove(index, &key, changes);
                }
                CommandResult::Bool(true)
            }
        }
    }

    /// Marks the tables and records of the current apply as changed by Raft itself (membership,
    /// blank entries): only the applied index moves.
    pub fn note_applied(&mut self, index: u64) {
        self.last_index = self.last_index.max(index);
    }

    fn prune_node(
        &mut self,
        index: u64,
        node: &str,
        keep_services: &[String],
        keep_checks: &[String],
        changes: &mut Changes,
    ) -> CommandResult {
        let services: Vec<String> = self
            .node_services(node)
            .into_iter()
            .filter(|s| !keep_services.contains(&s.id))
            .map(|s| s.id.clone())
            .collect();
        for id in services {
            self.deregister_service(index, node, &id, changes);
        }
        let checks: Vec<String> = self
            .node_checks(node)
            .into_iter()
            .filter(|c| !keep_checks.contains(&c.id))
            .map(|c| c.id.clone())
            .collect();
        for id in checks {
            self.remove_check(index, node, &id, changes);
        }
        CommandResult::Done
    }

    fn remove_check(&mut self, index: u64, node: &str, check_id: &str, changes: &mut Changes) {
        if let Some(check) = self.checks.remove(&(node.to_string(), check_id.to_string())) {
            self.bump(changes, Table::Checks, index);
            self.bump_check_owner(&check, index, changes);
        }
    }

    fn validate_registration(&self, reg: &Registration) -> Result<(), String> {
        if reg.node.name.is_empty() {
            return Err("Must provide node".into());
        }
        if reg.node.address.is_empty() && !(reg.skip_node_update && self.nodes.contains_key(&reg.node.name)) {
            return Err("Must provide address".into());
        }
        if let Some(svc) = &reg.service {
            if svc.name.is_empty() {
                return Err("Must provide service name (Service.Service)".into());
            }
            if svc.id.is_empty() {
                return Err("Must provide service ID".into());
            }
        }
        for check in &reg.checks {
            if check.id.is_empty() {
                return Err("Must provide check ID".into());
            }
            if check.service_id.is_empty() {
                continue;
            }
            let registering = reg.service.as_ref().is_some_and(|s| s.id == check.service_id);
            let existing = self.services.contains_key(&(reg.node.name.clone(), check.service_id.clone()));
            if !registering && !existing {
                return Err(format!("ServiceID \"{}\" does not exist", check.service_id));
            }
        }
        Ok(())
    }

    fn register(&mut self, index: u64, reg: &Registration, changes: &mut Changes) -> CommandResult {
        if let Err(reason) = self.validate_registration(reg) {
            return CommandResult::Rejected(reason);
        }
        let node_name = reg.node.name.clone();
        self.upsert_node(index, reg, changes);
        if let Some(spec) = &reg.service {
            let key = (node_name.clone(), spec.id.clone());
            let existing = self.services.get(&key).cloned();
            let mut record = ServiceRecord {
                node: node_name.clone(),
                id: spec.id.clone(),
                name: spec.name.clone(),
                kind: spec.kind.clone(),
                tags: spec.tags.clone(),
                address: spec.address.clone(),
                tagged_addresses: spec.tagged_addresses.clone(),
                meta: spec.meta.clone(),
                port: spec.port,
                socket_path: spec.socket_path.clone(),
                weights: spec.weights,
                enable_tag_override: spec.enable_tag_override,
                proxy: spec.proxy.clone(),
                connect_native: spec.connect_native,
                locality: spec.locality.clone(),
                create_index: index,
                modify_index: index,
            };
            let unchanged = existing.as_ref().is_some_and(|old| {
                record.create_index = old.create_index;
                record.modify_index = old.modify_index;
                *old == record
            });
            if !unchanged {
                record.modify_index = index;
                if let Some(old) = &existing
                    && old.name != record.name
                {
                    self.unlink_service_name(&old.name, &key);
                    self.bump_service(changes, &old.name, index);
                }
                self.by_service_name.entry(record.name.clone()).or_default().insert(key.clone());
                self.bump_service(changes, &record.name, index);
                self.services.insert(key, record);
                self.bump(changes, Table::Services, index);
                self.refresh_check_service_fields(index, &node_name, &spec.id, changes);
            }
            if reg.replace_service_checks {
                let keep: Vec<&str> = reg.checks.iter().map(|c| c.id.as_str()).collect();
                let stale: Vec<(String, String)> = self
                    .checks_on(&node_name)
                    .filter(|c| c.service_id == spec.id && !keep.contains(&c.id.as_str()))
                    .map(|c| (c.node.clone(), c.id.clone()))
                    .collect();
                for key in stale {
                    self.checks.remove(&key);
                    self.bump(changes, Table::Checks, index);
                    self.bump_service(changes, &spec.name, index);
                }
            }
        }
        for check in &reg.checks {
            self.upsert_check(index, &node_name, check, changes);
        }
        CommandResult::Done
    }

    fn upsert_node(&mut self, index: u64, reg: &Registration, changes: &mut Changes) {
        let spec = &reg.node;
        if reg.skip_node_update && self.nodes.contains_key(&spec.name) {
            return;
        }
        let mut record = NodeRecord {
            id: spec.id.clone(),
            name: spec.name.clone(),
            address: spec.address.clone(),
            datacenter: spec.datacenter.clone(),
            tagged_addresses: spec.tagged_addresses.clone(),
            meta: spec.meta.clone(),
            locality: spec.locality.clone(),
            create_index: index,
            modify_index: index,
        };
        if let Some(old) = self.nodes.get(&spec.name) {
            record.create_index = old.create_index;
            record.modify_index = old.modify_index;
            if record.id.is_empty() {
                record.id = old.id.clone();
            }
            if *old == record {
                return;
            }
            record.modify_index = index;
        }
        self.nodes.insert(spec.name.clone(), record);
        self.bump(changes, Table::Nodes, index);
        for name in self.service_names_on(&spec.name) {
            self.bump_service(changes, &name, index);
        }
    }

    fn upsert_check(&mut self, index: u64, node: &str, reg: &CheckRegistration, changes: &mut Changes) {
        let key = (node.to_string(), reg.id.clone());
        let existing = self.checks.get(&key);
        let (service_name, service_tags) = self
            .services
            .get(&(node.to_string(), reg.service_id.clone()))
            .map(|s| (s.name.clone(), s.tags.clone()))
            .unwrap_or_default();
        let (status, output) = match (reg.status, existing) {
            (Some(status), _) => (status, reg.output.clone()),
            (None, Some(old)) => (old.status, old.output.clone()),
            (None, None) => (CheckStatus::Critical, reg.output.clone()),
        };
        let mut record = CheckRecord {
            node: node.to_string(),
            id: reg.id.clone(),
            name: reg.name.clone(),
            status,
            notes: reg.notes.clone(),
            output,
            service_id: reg.service_id.clone(),
            service_name,
            service_tags,
            spec: reg.spec.clone(),
            create_index: index,
            modify_index: index,
        };
        if let Some(old) = existing {
            record.create_index = old.create_index;
            record.modify_index = old.modify_index;
            if *old == record {
                return;
            }
            record.modify_index = index;
        }
        self.bump_check_owner(&record, index, changes);
        self.checks.insert(key, record);
        self.bump(changes, Table::Checks, index);
    }

    /// A check change touches its service, or every service of its node for a node check.
    fn bump_check_owner(&mut self, check: &CheckRecord, index: u64, changes: &mut Changes) {
        if check.service_id.is_empty() {
            for name in self.service_names_on(&check.node) {
                self.bump_service(changes, &name, index);
            }
        } else if !check.service_name.is_empty() {
            self.bump_service(changes, &check.service_name, index);
        }
    }

    /// Keeps `ServiceName`/`ServiceTags` of a service's checks in step with the service.
    fn refresh_check_service_fields(
        &mut self,
        index: u64,
        node: &str,
        service_id: &str,
        changes: &mut Changes,
    ) {
        let Some(svc) = self.services.get(&(node.to_string(), service_id.to_string())) else { return };
        let (name, tags) = (svc.name.clone(), svc.tags.clone());
        let mut touched = false;
        for ((n, _), check) in self.checks.range_mut((node.to_string(), String::new())..) {
            if n != node {
                break;
            }
            if check.service_id == service_id && (check.service_name != name || check.service_tags != tags) {
                check.service_name = name.clone();
                check.service_tags = tags.clone();
                check.modify_index = index;
                touched = true;
            }
        }
        if touched {
            self.bump(changes, Table::Checks, index);
        }
    }

    fn unlink_service_name(&mut self, name: &str, key: &(String, String)) {
        if let Some(set) = self.by_service_name.get_mut(name) {
            set.remove(key);
            if set.is_empty() {
                self.by_service_name.remove(name);
            }
        }
    }

    fn deregister_node(&mut self, index: u64, node: &str, changes: &mut Changes) -> CommandResult {
        if self.nodes.remove(node).is_none() {
            return CommandResult::Done;
        }
        self.bump(changes, Table::Nodes, index);
        let service_ids: Vec<String> = self.services_on(node).map(|s| s.id.clone()).collect();
        for id in service_ids {
            self.deregister_service(index, node, &id, changes);
        }
        self.remove_checks(node, |_| true, index, changes);
        CommandResult::Done
    }

    fn deregister_service(
        &mut self,
        index: u64,
        node: &str,
        service_id: &str,
        changes: &mut Changes,
    ) -> CommandResult {
        let key = (node.to_string(), service_id.to_string());
        let Some(svc) = self.services.remove(&key) else { return CommandResult::Done };
        self.unlink_service_name(&svc.name, &key);
        self.bump(changes, Table::Services, index);
        self.bump_service(changes, &svc.name, index);
        self.remove_checks(node, |c| c.service_id == service_id, index, changes);
        CommandResult::Done
    }

    /// Removes the checks on `node` that `which` selects; the checks table changes only if any did.
    fn remove_checks(
        &mut self,
        node: &str,
        which: impl Fn(&CheckRecord) -> bool,
        index: u64,
        changes: &mut Changes,
    ) {
        let keys: Vec<(String, String)> =
            self.checks_on(node).filter(|c| which(c)).map(|c| (c.node.clone(), c.id.clone())).collect();
        if keys.is_empty() {
            return;
        }
        for key in keys {
            self.checks.remove(&key);
        }
        self.bump(changes, Table::Checks, index);
    }

    fn update_check(
        &mut self,
        index: u64,
        node: &str,
        check_id: &str,
        status: CheckStatus,
        output: &str,
        changes: &mut Changes,
    ) -> CommandResult {
        let Some(check) = self.checks.get_mut(&(node.to_string(), check_id.to_string())) else {
            return CommandResult::Rejected(format!("CheckID \"{check_id}\" does not have associated TTL"));
        };
        if check.status == status && check.output == output {
            return CommandResult::Done;
        }
        check.status = status;
        check.output = output.to_string();
        check.modify_index = index;
        let check = check.clone();
        self.bump(changes, Table::Checks, index);
        self.bump_check_owner(&check, index, changes);
        CommandResult::Done
    }

    fn kv_set(
        &mut self,
        index: u64,
        key: &str,
        value: &[u8],
        flags: u64,
        cas: Option<u64>,
        changes: &mut Changes,
    ) -> CommandResult {
        let existing = self.kv.get(key);
        match (cas, existing) {
            (Some(0), Some(_)) => return CommandResult::Bool(false),
            (Some(n), Some(old)) if n != 0 && old.modify_index != n => return CommandResult::Bool(false),
            (Some(n), None) if n != 0 => return CommandResult::Bool(false),
            _ => {}
        }
        self.kv_store(index, key, value, flags, changes, |_| {});
        CommandResult::Bool(true)
    }

    /// Writes `value` and `flags` to `key` (creating it if absent) at `index`; `edit` then
    /// changes what the write does to the lock (session, LockIndex).
    pub(crate) fn kv_store(
        &mut self,
        index: u64,
        key: &str,
        value: &[u8],
        flags: u64,
        changes: &mut Changes,
        edit: impl FnOnce(&mut KvRecord),
    ) {
        let mut record = self.kv.remove(key).unwrap_or_else(|| KvRecord {
            key: key.to_string(),
            create_index: index,
            ..KvRecord::default()
        });
        record.value = value.to_vec();
        record.flags = flags;
        record.modify_index = index;
        edit(&mut record);
        self.kv.insert(key.to_string(), record);
        self.kv_tombstones.remove(key);
        self.bump_key(changes, key, index);
    }

    fn kv_delete(&mut self, index: u64, key: &str, cas: Option<u64>, changes: &mut Changes) -> CommandResult {
        match (cas, self.kv.get(key)) {
            (Some(0), _) => return CommandResult::Bool(false),
            (Some(n), Some(old)) if old.modify_index != n => return CommandResult::Bool(false),
            (Some(_), None) => return CommandResult::Bool(false),
            _ => {}
        }
        self.kv_remove(index, key, changes);
        CommandResult::Bool(true)
    }

    pub(crate) fn kv_remove(&mut self, index: u64, key: &str, changes: &mut Changes) {
        if self.kv.remove(key).is_some() {
            self.kv_tombstones.insert(key.to_string(), index);
            self.bump_key(changes, key, index);
        }
    }
}
