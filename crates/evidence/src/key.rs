//! The installation's signing key: one Ed25519 key per data folder, created
//! at first start (`signing-key.ed25519`, mode 0600, written atomically),
//! that signs every evidence package's manifest. Its private part never
//! leaves this module: no accessor returns it, and its `Debug` shows the
//! public fingerprint only. Readers of a package check it with the
//! [`PublicKey`] that `roadwarden key show` prints.

use std::fmt;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use roadwarden_store::{DataDir, sync_dir};
use sha2::{Digest, Sha256};

use crate::EvidenceError;
use crate::files::create_dir_durable;

/// The first line of the key file.
const KEY_HEADER: &str = "roadwarden-ed25519-seed-v1";

/// The installation's private signing key.
pub struct InstallationKey {
    signing: SigningKey,
}

impl fmt::Debug for InstallationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InstallationKey({})", self.public().fingerprint())
    }
}

/// An installation's public key, as `roadwarden key show` prints it (64 hex digits).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.hex())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

/// What is wrong with a public key given to check a package.
#[derive(Debug, thiserror::Error)]
#[error(
    "not a roadwarden public key: {0} (expected the 64 hex digits `roadwarden key show` prints, or a file holding them)"
)]
pub struct KeyParseError(String);

impl PublicKey {
    /// Parses the 64 hex digits of a public key (surrounding space ignored).
    pub fn parse(s: &str) -> Result<PublicKey, KeyParseError> {
        let s = s.trim();
        let bytes = hex::decode(s).map_err(|e| KeyParseError(format!("`{s}`: {e}")))?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| KeyParseError(format!("{} bytes, not 32", b.len())))?;
        VerifyingKey::from_bytes(&arr)
            .map(PublicKey)
            .map_err(|e| KeyParseError(e.to_string()))
    }

    /// The key as 64 lower-case hex digits.
    pub fn hex(&self) -> String {
        hex::encode(self.0.as_bytes())
    }

    /// The first 16 hex digits of the SHA-256 of the key's 32 bytes.
    pub fn fingerprint(&self) -> String {
        let mut fp = hex::encode(Sha256::digest(self.0.as_bytes()));
        fp.truncate(16);
        fp
    }

    /// Whether `signature_hex` is this key's signature over exactly `message`.
    pub fn verifies(&self, message: &[u8], signature_hex: &str) -> bool {
        let Ok(bytes) = hex::decode(signature_hex.trim()) else {
            return false;
        };
        let Ok(sig) = Signature::from_slice(&bytes) else {
            return false;
        };
        self.0.verify(message, &sig).is_ok()
    }
}

impl InstallationKey {
    /// The data folder's key, created (from the OS's random source) when the
    /// folder has none yet. The flag says whether it was created now.
    pub fn load_or_create(data: &DataDir) -> Result<(InstallationKey, bool), EvidenceError> {
        let path = data.signing_key_path();
        if path.exists() {
            return Ok((Self::load(data)?, false));
        }
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| {
            EvidenceError::Invalid(format!(
                "cannot create the signing key {}: no random source ({e})",
                path.display()
            ))
        })?;
        let dir = data.root();
        create_dir_durable(dir)?;
        let tmp = dir.join(format!(
            ".signing-key.tmp-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let io = |e: std::io::Error| EvidenceError::io(&tmp, e);
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io)?;
        f.write_all(format!("{KEY_HEADER}\n{}\n", hex::encode(seed)).as_bytes())
            .map_err(io)?;
        f.sync_all().map_err(io)?;
        drop(f);
        // A key another process created meanwhile wins: never replace a key that may have signed.
        if let Err(e) = std::fs::hard_link(&tmp, &path) {
            let _ = std::fs::remove_file(&tmp);
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                return Ok((Self::load(data)?, false));
            }
            return Err(EvidenceError::io(&path, e));
        }
        std::fs::remove_file(&tmp).map_err(io)?;
        sync_dir(dir)?;
        Ok((Self::load(data)?, true))
    }

    /// The data folder's existing key.
    pub fn load(data: &DataDir) -> Result<InstallationKey, EvidenceError> {
        let path = data.signing_key_path();
        let meta = std::fs::metadata(&path).map_err(|e| EvidenceError::io(&path, e))?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(EvidenceError::Invalid(format!(
                "{} is readable by others (mode {:o}); run `chmod 600 {}`",
                path.display(),
                meta.permissions().mode() & 0o777,
                path.display()
            )));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| EvidenceError::io(&path, e))?;
        let bad = || {
            EvidenceError::Invalid(format!(
                "{} is not a roadwarden signing key (expected `{KEY_HEADER}` and 64 hex digits); restore it from a backup",
                path.display()
            ))
        };
        let mut lines = text.lines();
        if lines.next() != Some(KEY_HEADER) {
            return Err(bad());
        }
        let seed: [u8; 32] = lines
            .next()
            .and_then(|l| hex::decode(l.trim()).ok())
            .and_then(|b| b.try_into().ok())
            .ok_or_else(bad)?;
        Ok(InstallationKey {
            signing: SigningKey::from_bytes(&seed),
        })
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key())
    }

    /// The signature over exactly `message`, as 128 hex digits.
    pub fn sign(&self, message: &[u8]) -> String {
        hex::encode(self.signing.sign(message).to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_created_once_private_and_signs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = DataDir::new(dir.path().join("data"));
        let (k, created) = InstallationKey::load_or_create(&data).expect("create");
        assert!(created);
        let mode = std::fs::metadata(data.signing_key_path())
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let (again, created) = InstallationKey::load_or_create(&data).expect("load");
        assert!(!created);
        assert_eq!(k.public(), again.public());
        assert_eq!(k.public().fingerprint().len(), 16);
        assert!(!format!("{k:?}").contains(&hex::encode(k.signing.to_bytes())));

        let sig = k.sign(b"manifest");
        assert!(k.public().verifies(b"manifest", &sig));
        assert!(!k.public().verifies(b"manifest!", &sig));
        let other = DataDir::new(dir.path().join("other"));
        let (o, _) = InstallationKey::load_or_create(&other).expect("other");
        assert_ne!(o.public(), k.public());
        assert!(!o.public().verifies(b"manifest", &sig));
        assert_eq!(
            PublicKey::parse(&k.public().hex()).expect("parse"),
            k.public()
        );
        assert!(PublicKey::parse("abc").is_err());

        std::fs::set_permissions(
            data.signing_key_path(),
            std::fs::Permissions::from_mode(0o644),
        )
        .expect("chmod");
        let e = InstallationKey::load(&data).expect_err("too open");
        assert!(e.to_string().contains("chmod 600"), "{e}");
    }
}
