//! The installation's signing key: an Ed25519 key that signs checkpoints
//! of the event log (see [`super::checkpoint`]).
//!
//! It lives in one file (`NUANXIN_SIGNING_KEY_FILE`), PKCS#8 PEM (the
//! format `openssl pkey` reads), created with mode 0600 on the first start
//! when missing. The private key is never logged or printed: this type's
//! `Debug` shows the public key id only. Whoever holds the file can sign
//! checkpoints in the installation's name, so it belongs with the other
//! secrets of the server, and its **public** key — printed by `nuanxin
//! audit public-key` — belongs with every supervisor who keeps checkpoint
//! copies, who then checks copies against it.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// An Ed25519 public key: what a checkpoint's signature is checked with.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// The 32 key bytes as 64 lowercase hex digits (how checkpoints carry it).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0.as_bytes())
    }

    /// The key as a PEM `PUBLIC KEY` (SubjectPublicKeyInfo), for OpenSSL.
    pub fn to_pem(&self) -> String {
        self.0.to_public_key_pem(LineEnding::LF).unwrap_or_default()
    }

    /// The first 16 hex digits of SHA-256 over the key bytes: short enough
    /// to read out over the phone, named in every checkpoint.
    pub fn key_id(&self) -> String {
        self.sha256()[..16].to_owned()
    }

    /// SHA-256 over the key bytes, 64 hex digits.
    pub fn sha256(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }

    /// The key id in groups of four (`3f2a 9c01 7be4 5d10`), for people.
    pub fn fingerprint(&self) -> String {
        let id = self.key_id();
        id.as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// A key given as 64 hex digits or as a PEM `PUBLIC KEY`.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        if text.starts_with("-----BEGIN") {
            return VerifyingKey::from_public_key_pem(text)
                .map(Self)
                .map_err(|_| KeyError::NotAPublicKey);
        }
        let bytes: [u8; 32] = hex::decode(text)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(KeyError::NotAPublicKey)?;
        VerifyingKey::from_bytes(&bytes)
            .map(Self)
            .map_err(|_| KeyError::NotAPublicKey)
    }

    /// Whether `signature` (128 hex digits) is this key's signature of
    /// `message` (strict Ed25519 verification: no malleable encodings).
    pub fn verifies(&self, message: &[u8], signature: &str) -> bool {
        let Some(bytes) = hex::decode(signature)
            .ok()
            .and_then(|b| <[u8; 64]>::try_from(b).ok())
        else {
            return false;
        };
        self.0
            .verify_strict(message, &Signature::from_bytes(&bytes))
            .is_ok()
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.key_id())
    }
}

/// Why a public key could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("not an Ed25519 public key (expected 64 hex digits or a PEM PUBLIC KEY)")]
    NotAPublicKey,
}

/// The installation's private signing key, read from (or created in) its
/// file.
pub struct SigningKeyFile {
    key: SigningKey,
    path: PathBuf,
}

impl fmt::Debug for SigningKeyFile {
    /// Never prints the private key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeyFile")
            .field("path", &self.path)
            .field("key_id", &self.public().key_id())
            .finish()
    }
}

impl SigningKeyFile {
    /// Reads the key at `path`, or creates one there if there is no file:
    /// `(key, created)`. Two processes starting at once end up with the
    /// same key (the file appears atomically, complete, or not at all).
    pub fn load_or_create(path: &Path) -> anyhow::Result<(Self, bool)> {
        if path.exists() {
            return Ok((Self::load(path)?, false));
        }
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        let key = SigningKey::from_bytes(&seed);
        match write_new(path, key.to_pkcs8_pem(LineEnding::LF)?.as_bytes()) {
            Ok(()) => Ok((
                Self {
                    key,
                    path: path.to_owned(),
                },
                true,
            )),
            // Another process created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Ok((Self::load(path)?, false))
            }
            Err(e) => Err(e).with_context(|| {
                format!(
                    "creating the signing key file {} (NUANXIN_SIGNING_KEY_FILE)",
                    path.display()
                )
            }),
        }
    }

    /// Reads the key at `path`. Warns (without failing) when the file can
    /// be read by other users than its owner.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let pem = std::fs::read_to_string(path).with_context(|| {
            format!(
                "reading the signing key file {} (NUANXIN_SIGNING_KEY_FILE)",
                path.display()
            )
        })?;
        let key = SigningKey::from_pkcs8_pem(&pem).map_err(|_| {
            anyhow::anyhow!(
                "the signing key file {} is not an Ed25519 private key in PKCS#8 PEM",
                path.display()
            )
        })?;
        if too_open(path) {
            tracing::warn!(path = %path.display(),
                "the signing key file can be read by other users; run `chmod 600` on it");
        }
        Ok(Self {
            key,
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.key.verifying_key())
    }

    /// The signature of `message`, 128 hex digits.
    pub fn sign(&self, message: &[u8]) -> String {
        hex::encode(self.key.sign(message).to_bytes())
    }
}

/// Whether group or others may read `path` (always `false` off Unix).
pub fn too_open(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

/// Writes `bytes` to a new file at `path` (mode 0600 on Unix): first to a
/// temporary file beside it, synced, then linked into place, which fails
/// with `AlreadyExists` if `path` appeared meanwhile.
pub(crate) fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        uuid::Uuid::new_v4().simple()
    ));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = (|| {
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::hard_link(&tmp, path)?;
        sync_dir(&dir)
    })();
    let _ = std::fs::remove_file(&tmp);
    written
}

/// Makes a directory's entries durable (a no-op where directories cannot
/// be opened).
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_created_once_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("signing.key");
        let (key, created) = SigningKeyFile::load_or_create(&path).unwrap();
        assert!(created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!too_open(&path));
        let pem = std::fs::read_to_string(&path).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{pem}");
        let (again, created) = SigningKeyFile::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(again.public(), key.public());
        // No temporary files are left behind.
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["signing.key"]);
        // Debug never shows the private key.
        let shown = format!("{key:?}");
        assert!(shown.contains(&key.public().key_id()), "{shown}");
        assert!(!shown.contains(&pem[30..60]), "{shown}");
    }

    #[test]
    fn signatures_verify_only_for_the_message_and_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let (a, _) = SigningKeyFile::load_or_create(&dir.path().join("a.key")).unwrap();
        let (b, _) = SigningKeyFile::load_or_create(&dir.path().join("b.key")).unwrap();
        let sig = a.sign(b"statement");
        assert_eq!(sig.len(), 128);
        assert!(a.public().verifies(b"statement", &sig));
        assert!(!a.public().verifies(b"statemenT", &sig));
        assert!(!b.public().verifies(b"statement", &sig));
        assert!(!a.public().verifies(b"statement", "zz"));
        assert!(!a.public().verifies(b"statement", &sig[..126]));
    }

    #[test]
    fn public_keys_parse_from_hex_and_pem() {
        let dir = tempfile::tempdir().unwrap();
        let (key, _) = SigningKeyFile::load_or_create(&dir.path().join("k")).unwrap();
        let public = key.public();
        assert_eq!(PublicKey::parse(&public.to_hex()).unwrap(), public);
        assert_eq!(PublicKey::parse(&public.to_pem()).unwrap(), public);
        assert_eq!(public.key_id().len(), 16);
        assert_eq!(public.fingerprint().len(), 19);
        assert_eq!(public.fingerprint().replace(' ', ""), public.key_id());
        assert!(public.sha256().starts_with(&public.key_id()));
        assert_eq!(PublicKey::parse("abcd"), Err(KeyError::NotAPublicKey));
        assert_eq!(
            PublicKey::parse("-----BEGIN PUBLIC KEY-----\nxx\n-----END PUBLIC KEY-----"),
            Err(KeyError::NotAPublicKey)
        );
    }

    #[test]
    fn a_damaged_key_file_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.key");
        std::fs::write(&path, "not a key").unwrap();
        let err = SigningKeyFile::load_or_create(&path).unwrap_err();
        assert!(err.to_string().contains("bad.key"), "{err}");
    }
}
