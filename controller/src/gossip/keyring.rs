//! Gossip encryption (`-encrypt`, `/v1/operator/keyring`): every datagram is sealed with the
//! primary key (AES-GCM with a random 96-bit nonce) and opened with whichever installed key fits,
//! so that keys rotate without a gap: install the new key everywhere, use it, remove the old one.
//!
//! A sealed datagram is `SEALED`, the nonce, then the ciphertext with its tag. A member that
//! cannot open a datagram answers with `REJECTED` and a reason, so that the sender can say why
//! it cannot join instead of timing out.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{AES_128_GCM, AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

const SEALED: &[u8; 4] = b"CSK\x01";
const REJECTED: &[u8; 4] = b"CSK!";
/// What sealing adds to a datagram: marker, nonce, tag.
pub const OVERHEAD: usize = SEALED.len() + NONCE_LEN + 16;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("Invalid key: {0}")]
    Invalid(String),
    #[error("Requested key is not in the keyring")]
    NotInstalled,
    #[error("Removing the primary key is not allowed")]
    RemovePrimary,
    #[error("No keyring to modify (encryption not enabled)")]
    Disabled,
    #[error("Keyring is empty (encryption not enabled)")]
    Empty,
    #[error("keyring file {path}: {reason}")]
    File { path: String, reason: String },
}

/// Why a member could not take a datagram (sent back to the sender in a `REJECTED` datagram).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Sealed, but with a key this member does not have.
    UnknownKey = 1,
    /// Not sealed, and this member takes only sealed datagrams.
    NotSealed = 2,
    /// Sealed, and this member has no keyring.
    NoKeyring = 3,
}

impl Rejection {
    fn from_byte(b: u8) -> Option<Rejection> {
        match b {
            1 => Some(Rejection::UnknownKey),
            2 => Some(Rejection::NotSealed),
            3 => Some(Rejection::NoKeyring),
            _ => None,
        }
    }

    /// Said by the receiver about what it got.
    pub fn as_receiver(self) -> &'static str {
        match self {
            Rejection::UnknownKey => "No installed keys could decrypt the message",
            Rejection::NotSealed => "Encryption is configured but remote state is not encrypted",
            Rejection::NoKeyring => "Remote state is encrypted and encryption is not configured",
        }
    }

    /// Said by the sender about why it was turned away.
    pub fn as_sender(self) -> &'static str {
        match self {
            Rejection::UnknownKey => "it has none of this agent's gossip encryption keys (-encrypt differs)",
            Rejection::NotSealed => "it requires gossip encryption and this agent has no key (-encrypt)",
            Rejection::NoKeyring => "it has no gossip encryption key and this agent encrypts (-encrypt)",
        }
    }

    pub fn datagram(self) -> Vec<u8> {
        let mut out = REJECTED.to_vec();
        out.push(self as u8);
        out
    }
}

/// What arrived on the gossip socket.
#[derive(Debug, PartialEq, Eq)]
pub enum Received<'a> {
    Gossip(Cow<'a, [u8]>),
    Rejected(Option<Rejection>),
    /// Dropped; the sender should hear why.
    Refused(Rejection),
}

impl Received<'_> {
    /// The same, owning its bytes (so that the keyring's lock can be let go).
    pub fn into_owned(self) -> Received<'static> {
        match self {
            Received::Gossip(data) => Received::Gossip(Cow::Owned(data.into_owned())),
            Received::Rejected(r) => Received::Rejected(r),
            Received::Refused(r) => Received::Refused(r),
        }
    }
}

struct Key {
    text: String,
    aead: LessSafeKey,
}

/// This member's keys, the primary first.
pub struct Keyring {
    keys: Vec<Key>,
    /// Where the keys are kept across restarts (`data-dir/serf/local.keyring`).
    file: Option<PathBuf>,
    /// `encrypt_verify_incoming = false`: plaintext is taken too (while turning encryption on).
    pub accept_plain: bool,
    /// `encrypt_verify_outgoing = false`: datagrams go out unsealed.
    pub send_plain: bool,
    random: SystemRandom,
}

/// Shows how many keys, never the keys.
impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring").field("keys", &self.keys.len()).finish_non_exhaustive()
    }
}

/// A new random 32-byte key, in base64 (`census keygen`).
pub fn generate() -> Result<String, KeyError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes).map_err(|_| KeyError::Invalid("no random source".into()))?;
    Ok(STANDARD.encode(bytes))
}

/// A key as the keyring writes it (base64, canonical padding), or why it is no key.
pub fn normalized(text: &str) -> Result<String, KeyError> {
    parse(text).map(|k| k.text)
}

fn parse(text: &str) -> Result<Key, KeyError> {
    let bytes = STANDARD.decode(text.trim()).map_err(|e| KeyError::Invalid(e.to_string()))?;
    let algorithm = match bytes.len() {
        16 => &AES_128_GCM,
        32 => &AES_256_GCM,
        24 => return Err(KeyError::Invalid("census takes 16- or 32-byte keys (AES-128 or AES-256)".into())),
        n => return Err(KeyError::Invalid(format!("key size must be 16 or 32 bytes, not {n}"))),
    };
    let key = UnboundKey::new(algorithm, &bytes).map_err(|_| KeyError::Invalid("rejected by AES".into()))?;
    Ok(Key { text: STANDARD.encode(&bytes), aead: LessSafeKey::new(key) })
}

impl Keyring {
    /// No encryption.
    pub fn disabled() -> Keyring {
        Keyring {
            keys: Vec::new(),
            file: None,
            accept_plain: true,
            send_plain: true,
            random: SystemRandom::new(),
        }
    }

    /// The keyring kept in `data_dir` if there is one, else `encrypt` (then kept there).
    pub fn load(data_dir: Option<&Path>, encrypt: Option<&str>) -> Result<Keyring, KeyError> {
        let file = data_dir.map(|d| d.join("serf").join("local.keyring"));
        let mut ring = Keyring { file: file.clone(), ..Keyring::disabled() };
        let kept: Option<Vec<String>> = match &file {
            Some(path) if path.exists() => {
                let err = |reason: String| KeyError::File { path: path.display().to_string(), reason };
                let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
                Some(serde_json::from_str(&text).map_err(|e| err(e.to_string()))?)
            }
            _ => None,
        };
        match (kept, encrypt) {
            (Some(keys), given) => {
                if given.is_some() {
                    tracing::warn!(target: "agent", "LAN keyring exists but -encrypt given, using keyring");
                }
                ring.keys = keys.iter().map(|k| parse(k)).collect::<Result<_, _>>()?;
            }
            (None, Some(key)) => {
                ring.keys = vec![parse(key)?];
                ring.save()?;
            }
            (None, None) => {}
        }
        let on = ring.is_enabled();
        ring.accept_plain = !on;
        ring.send_plain = !on;
        Ok(ring)
    }

    pub fn is_enabled(&self) -> bool {
        !self.keys.is_empty()
    }

    /// The installed keys, the primary first.
    pub fn keys(&self) -> Vec<String> {
        self.keys.iter().map(|k| k.text.clone()).collect()
    }

    pub fn primary(&self) -> Option<&str> {
        self.keys.first().map(|k| k.text.as_str())
    }

    /// The datagram to send for `plain`.
    pub fn seal(&self, plain: &[u8]) -> Vec<u8> {
        let Some(key) = self.keys.first().filter(|_| !self.send_plain) else { return plain.to_vec() };
        let mut nonce = [0u8; NONCE_LEN];
        if self.random.fill(&mut nonce).is_err() {
            return Vec::new();
        }
        let mut body = plain.to_vec();
        let sealed =
            key.aead.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut body);
        if sealed.is_err() {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(OVERHEAD + plain.len());
        out.extend_from_slice(SEALED);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&body);
        out
    }

    /// What a datagram from the socket is.
    pub fn open<'a>(&self, datagram: &'a [u8]) -> Received<'a> {
        if let Some(reason) = datagram.strip_prefix(REJECTED) {
            return Received::Rejected(reason.first().copied().and_then(Rejection::from_byte));
        }
        let Some(sealed) = datagram.strip_prefix(SEALED) else {
            return match self.accept_plain {
                true => Received::Gossip(Cow::Borrowed(datagram)),
                false => Received::Refused(Rejection::NotSealed),
            };
        };
        if self.keys.is_empty() {
            return Received::Refused(Rejection::NoKeyring);
        }
        let Some((nonce, body)) = sealed.split_first_chunk::<{ NONCE_LEN }>() else {
            return Received::Refused(Rejection::UnknownKey);
        };
        for key in &self.keys {
            let mut plain = body.to_vec();
            let nonce = Nonce::assume_unique_for_key(*nonce);
            if let Ok(opened) = key.aead.open_in_place(nonce, Aad::empty(), &mut plain) {
                let len = opened.len();
                plain.truncate(len);
                return Received::Gossip(Cow::Owned(plain));
            }
        }
        Received::Refused(Rejection::UnknownKey)
    }

    pub fn install(&mut self, text: &str) -> Result<(), KeyError> {
        self.require_enabled()?;
        let key = parse(text)?;
        if !self.keys.iter().any(|k| k.text == key.text) {
            self.keys.push(key);
            self.save()?;
        }
        Ok(())
    }

    pub fn use_key(&mut self, text: &str) -> Result<(), KeyError> {
        self.require_enabled()?;
        let wanted = parse(text)?.text;
        let at = self.keys.iter().position(|k| k.text == wanted).ok_or(KeyError::NotInstalled)?;
        let key = self.keys.remove(at);
        self.keys.insert(0, key);
        self.save()
    }

    pub fn remove(&mut self, text: &str) -> Result<(), KeyError> {
        self.require_enabled()?;
        let wanted = parse(text)?.text;
        let at = self.keys.iter().position(|k| k.text == wanted).ok_or(KeyError::NotInstalled)?;
        if at == 0 {
            return Err(KeyError::RemovePrimary);
        }
        self.keys.remove(at);
        self.save()
    }

    fn require_enabled(&self) -> Result<(), KeyError> {
        if self.is_enabled() { Ok(()) } else { Err(KeyError::Disabled) }
    }

    fn save(&self) -> Result<(), KeyError> {
        let Some(path) = &self.file else { return Ok(()) };
        let err = |reason: String| KeyError::File { path: path.display().to_string(), reason };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
        }
        let text = serde_json::to_string(&self.keys()).map_err(|e| err(e.to_string()))?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).map_err(|e| err(e.to_string()))?;
        restrict(&tmp);
        std::fs::rename(&tmp, path).map_err(|e| err(e.to_string()))
    }
}

/// The keyring file holds secrets: owner-only.
fn restrict(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
        tracing::warn!(path = %path.display(), error = %e, "cannot restrict the keyring file");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(keys: &[&str]) -> Keyring {
        let mut ring = Keyring::disabled();
        ring.keys = keys.iter().map(|k| parse(k).expect("key")).collect();
        ring.accept_plain = keys.is_empty();
        ring.send_plain = keys.is_empty();
        ring
    }

    #[test]
    fn sealed_datagrams_open_with_any_installed_key_only() {
        let (a, b) = (generate().expect("key"), generate().expect("key"));
        let sender = ring(&[&a]);
        let datagram = sender.seal(b"hello");
        assert_ne!(&datagram[OVERHEAD - 16..], b"hello", "sealed, not plaintext");
        assert_eq!(ring(&[&b, &a]).open(&datagram), Received::Gossip(Cow::Owned(b"hello".to_vec())));
        assert_eq!(ring(&[&b]).open(&datagram), Received::Refused(Rejection::UnknownKey));
        assert_eq!(ring(&[]).open(&datagram), Received::Refused(Rejection::NoKeyring));
        assert_eq!(ring(&[&a]).open(b"plain"), Received::Refused(Rejection::NotSealed));
        assert_eq!(ring(&[]).open(b"plain"), Received::Gossip(Cow::Borrowed(&b"plain"[..])));
        let mut tampered = datagram.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(ring(&[&a]).open(&tampered), Received::Refused(Rejection::UnknownKey));
        assert_eq!(
            ring(&[&a]).open(&Rejection::UnknownKey.datagram()),
            Received::Rejected(Some(Rejection::UnknownKey))
        );
    }

    #[test]
    fn rotation_install_use_remove() {
        let (a, b) = (generate().expect("key"), generate().expect("key"));
        let mut keys = ring(&[&a]);
        assert_eq!(keys.use_key(&b), Err(KeyError::NotInstalled));
        keys.install(&b).expect("install");
        keys.install(&b).expect("installing twice is fine");
        assert_eq!(keys.keys(), [a.clone(), b.clone()]);
        assert_eq!(keys.remove(&a), Err(KeyError::RemovePrimary));
        keys.use_key(&b).expect("use");
        assert_eq!(keys.primary(), Some(b.as_str()));
        keys.remove(&a).expect("remove the old key");
        assert_eq!(keys.keys(), [b]);
        assert_eq!(ring(&[]).install(&a), Err(KeyError::Disabled));
    }

    #[test]
    fn keys_are_base64_of_16_or_32_bytes() {
        assert!(parse("pUqJrVyVRj5jsiYEkM/tFQ==").is_ok(), "16 bytes (Consul's older keygen)");
        assert!(parse(&generate().expect("key")).is_ok());
        assert!(matches!(parse("not base64!"), Err(KeyError::Invalid(_))));
        assert!(matches!(parse("c2VjcmV0"), Err(KeyError::Invalid(m)) if m.contains("16 or 32")));
    }

    #[test]
    fn the_keyring_file_wins_over_encrypt_and_keeps_rotations() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (generate().expect("key"), generate().expect("key"));
        let mut first = Keyring::load(Some(dir.path()), Some(&a)).expect("load");
        first.install(&b).expect("install");
        first.use_key(&b).expect("use");
        let again = Keyring::load(Some(dir.path()), Some(&a)).expect("reload");
        assert_eq!(again.keys(), [b, a]);
        assert!(!again.send_plain && !again.accept_plain);
        assert!(!Keyring::load(None, None).expect("none").is_enabled());
    }
}
