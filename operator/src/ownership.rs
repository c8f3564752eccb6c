//! How the operator marks what it wrote, so that it never touches anything else: service
//! instances carry their owner in meta, keys carry it in the upper half of their flags.

use std::collections::BTreeMap;

use kube::runtime::reflector::ObjectRef;

/// The catalog node the operator registers its instances on (as consul-k8s's catalog sync does).
pub const NODE: &str = "k8s-sync";
/// Meta: `<namespace>/<name>` of the Service resource that wrote the instance.
pub const OWNER_META: &str = "census-owner";
/// Meta: `kubernetes`, as Consul's own sync writes it.
pub const SOURCE_META: &str = "external-source";
pub const SOURCE: &str = "kubernetes";

/// Meta keys users cannot set in a Service spec.
pub fn is_reserved_meta(key: &str) -> bool {
    key.starts_with("census-") || key.starts_with("external-")
}

pub fn owner_of(meta: &BTreeMap<String, String>) -> Option<&str> {
    meta.get(OWNER_META).map(String::as_str)
}

/// `namespace/name` of a resource.
pub fn owner_key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// The resource an owner key names.
pub fn owner_ref<K>(owner: &str) -> Option<ObjectRef<K>>
where
    K: kube::Resource<DynamicType = ()>,
{
    let (ns, name) = owner.split_once('/')?;
    Some(ObjectRef::new(name).within(ns))
}

/// The catalog ID of the instance a Service's pod becomes.
pub fn pod_instance_id(owner: &str, pod: &str) -> String {
    format!("{}-{pod}", owner.replace('/', "-"))
}

/// The catalog ID of a Service's static endpoint.
pub fn endpoint_instance_id(owner: &str, address: &str, port: u16) -> String {
    format!("{}-{address}-{port}", owner.replace('/', "-"))
}

/// Bits 48..64 of a key's flags say "written by census" (0xCE05), bits 32..48 hash the owning
/// KVEntry, bits 0..32 are the user's flags.
const MARK: u64 = 0xCE05;

fn owner_hash(owner: &str) -> u64 {
    // FNV-1a folded to 16 bits: stable across versions and platforms (unlike std's hasher).
    let mut h: u32 = 0x811c_9dc5;
    for b in owner.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    u64::from((h >> 16) ^ (h & 0xffff))
}

pub fn key_flags(owner: &str, user_flags: u32) -> u64 {
    (MARK << 48) | (owner_hash(owner) << 32) | u64::from(user_flags)
}

/// The user's part of a key's flags (census's mark removed).
pub fn user_flags(flags: u64) -> u64 {
    flags & 0xffff_ffff
}

/// Who a key's flags say wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOwner {
    /// This KVEntry.
    Me,
    /// Another KVEntry.
    OtherEntry,
    /// Nobody census knows: a user or another tool.
    Foreign,
}

pub fn key_owner(flags: u64, owner: &str) -> KeyOwner {
    if flags >> 48 != MARK {
        KeyOwner::Foreign
    } else if (flags >> 32) & 0xffff == owner_hash(owner) {
        KeyOwner::Me
    } else {
        KeyOwner::OtherEntry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_keep_the_user_bits_and_name_the_owner() {
        let f = key_flags("default/app-config", 42);
        assert_eq!(user_flags(f), 42);
        assert_eq!(key_owner(f, "default/app-config"), KeyOwner::Me);
        assert_eq!(key_owner(f, "default/other"), KeyOwner::OtherEntry);
        assert_eq!(key_owner(42, "default/app-config"), KeyOwner::Foreign);
        assert_eq!(key_owner(0, "default/app-config"), KeyOwner::Foreign);
    }

    #[test]
    fn reserved_meta_keys() {
        assert!(is_reserved_meta("census-owner"));
        assert!(is_reserved_meta("external-source"));
        assert!(!is_reserved_meta("version"));
    }
}
