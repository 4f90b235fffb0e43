//! The relay key and what both sides derive from it. The merchant pastes one key into the relay's
//! environment and the desktop's Settings; from it each side derives the same Daraja path token (so
//! the callback URLs agree without copying a second value) and the relay derives the key that
//! encrypts the events it holds. Pure: no I/O.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::secrets::{Secret, SecretName};

/// Shorter keys could be guessed; `malipo relay --new-key` prints 64 hex characters.
pub const MIN_KEY_CHARS: usize = 32;

const PATH_TOKEN_LABEL: &[u8] = b"malipo daraja path token";
const STORAGE_KEY_LABEL: &[u8] = b"malipo relay storage key";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("no relay key is set: save it in Settings → Inbound or set {} (make one with `malipo relay --new-key`)", SecretName::RelayKey.env_var())]
    Missing,
    #[error("the relay key is too short ({chars} characters; at least {MIN_KEY_CHARS}): make one with `malipo relay --new-key`")]
    TooShort { chars: usize },
}

/// The per-merchant key shared by `malipo relay` and the desktop. Prints as `[redacted]`.
#[derive(Clone, Debug)]
pub struct RelayKey(Secret);

impl RelayKey {
    /// The key from the secret store: present, trimmed, long enough.
    pub fn parse(saved: Option<Secret>) -> Result<RelayKey, KeyError> {
        let value = saved.map(|s| s.expose().trim().to_string()).filter(|s| !s.is_empty()).ok_or(KeyError::Missing)?;
        let chars = value.chars().count();
        if chars < MIN_KEY_CHARS {
            return Err(KeyError::TooShort { chars });
        }
        Ok(RelayKey(Secret::new(value)))
    }

    /// A fresh key: 32 random bytes as hex.
    pub fn generate() -> String {
        crate::store::settings::random_token()
    }

    fn derive(&self, label: &[u8]) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.0.expose().as_bytes()).expect("HMAC takes any key length");
        mac.update(label);
        mac.finalize().into_bytes().into()
    }

    /// The unguessable Daraja path token both sides use: the first 32 hex characters of
    /// HMAC-SHA256(key, "malipo daraja path token").
    pub fn path_token(&self) -> String {
        hex::encode(self.derive(PATH_TOKEN_LABEL))[..32].to_string()
    }

    /// The key that encrypts events at rest on the relay. Distinct from the path token by its label.
    pub fn storage_key(&self) -> [u8; 32] {
        self.derive(STORAGE_KEY_LABEL)
    }

    /// The `Authorization` header value the desktop sends.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.0.expose())
    }

    /// Whether an `Authorization` header carries this key. Compares SHA-256 digests in constant time,
    /// so neither the content nor the length of the key leaks through timing.
    pub fn authorizes(&self, header: Option<&str>) -> bool {
        let Some(given) = header.and_then(|h| h.strip_prefix("Bearer ")).map(str::trim) else {
            return false;
        };
        let (given, expected) = (Sha256::digest(given.as_bytes()), Sha256::digest(self.0.expose().as_bytes()));
        bool::from(given.ct_eq(&expected))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn key() -> RelayKey {
        RelayKey::parse(Some(Secret::new(KEY))).unwrap()
    }

    #[test]
    fn a_missing_or_short_key_is_refused_with_the_way_to_fix_it() {
        let missing = RelayKey::parse(None).unwrap_err();
        assert!(missing.to_string().contains("MALIPO_RELAY_KEY"), "{missing}");
        assert_eq!(RelayKey::parse(Some(Secret::new("  "))).unwrap_err(), KeyError::Missing);
        let short = RelayKey::parse(Some(Secret::new("abc"))).unwrap_err();
        assert_eq!(short, KeyError::TooShort { chars: 3 });
        assert!(short.to_string().contains("--new-key"));
    }

    #[test]
    fn both_sides_derive_the_same_path_token_and_it_is_not_the_key() {
        let token = key().path_token();
        assert_eq!(token.len(), 32);
        assert!(token.chars().all(|c| c.is_ascii_hexdigit()));
        // Whitespace around a pasted key does not change what is derived.
        assert_eq!(RelayKey::parse(Some(Secret::new(format!(" {KEY}\n")))).unwrap().path_token(), token);
        assert!(!KEY.contains(&token));
        let other = RelayKey::parse(Some(Secret::new(KEY.replace('0', "1")))).unwrap();
        assert_ne!(other.path_token(), token);
        assert_ne!(&key().storage_key()[..16], &hex::decode(&token).unwrap()[..]);
    }

    #[test]
    fn only_the_exact_bearer_key_is_authorized() {
        let k = key();
        assert!(k.authorizes(Some(&k.bearer())));
        assert!(!k.authorizes(None));
        assert!(!k.authorizes(Some(KEY)), "without the Bearer scheme");
        assert!(!k.authorizes(Some("Bearer ")));
        assert!(!k.authorizes(Some(&format!("Bearer {}", &KEY[..63]))));
        assert!(!k.authorizes(Some(&format!("Bearer {KEY}0"))));
    }

    #[test]
    fn new_keys_are_long_random_and_accepted() {
        let (a, b) = (RelayKey::generate(), RelayKey::generate());
        assert_ne!(a, b);
        assert!(RelayKey::parse(Some(Secret::new(a))).is_ok());
    }
}
