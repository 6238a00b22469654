//! Verification keys from the configuration.

use hmac::{Hmac, Mac};
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use rsa::RsaPublicKey;
use serde::Deserialize;
use sha2::Sha256;

/// A key as configured.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// Matched against the token's `kid` when the token has one.
    #[serde(default)]
    pub kid: Option<String>,
    /// `HS256` or `RS256`.
    pub alg: String,
    /// The shared secret, for HS256.
    #[serde(default)]
    pub secret: Option<String>,
    /// The public key in PEM (SPKI `PUBLIC KEY` or PKCS#1 `RSA PUBLIC KEY`), for RS256.
    #[serde(default)]
    pub public_key_pem: Option<String>,
}

/// A key ready to verify signatures.
pub struct Key {
    pub kid: Option<String>,
    pub verifier: Verifying,
}

/// How one algorithm checks a signature.
pub enum Verifying {
    Hs256(Vec<u8>),
    Rs256(Box<rsa::pkcs1v15::VerifyingKey<Sha256>>),
}

impl Verifying {
    /// The JOSE name of the algorithm.
    pub fn alg(&self) -> &'static str {
        match self {
            Verifying::Hs256(_) => "HS256",
            Verifying::Rs256(_) => "RS256",
        }
    }

    /// Whether `signature` signs `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            Verifying::Hs256(secret) => {
                let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else { return false };
                mac.update(message);
                // Constant-time comparison.
                mac.verify_slice(signature).is_ok()
            }
            Verifying::Rs256(key) => rsa::pkcs1v15::Signature::try_from(signature)
                .map(|sig| key.verify(message, &sig).is_ok())
                .unwrap_or(false),
        }
    }
}

impl Key {
    /// Checks one configured key; the error names what is wrong with it.
    pub fn from_config(k: KeyConfig) -> Result<Self, String> {
        let name = k.kid.clone().unwrap_or_else(|| format!("{} key", k.alg));
        let verifier = match k.alg.as_str() {
            "HS256" => {
                let secret = k.secret.ok_or_else(|| format!("{name}: HS256 needs `secret`"))?;
                if secret.len() < 32 {
                    return Err(format!("{name}: an HS256 secret needs at least 32 bytes (RFC 7518 §3.2)"));
                }
                Verifying::Hs256(secret.into_bytes())
            }
            "RS256" => {
                let pem = k.public_key_pem.ok_or_else(|| format!("{name}: RS256 needs `public_key_pem`"))?;
                let key = RsaPublicKey::from_public_key_pem(&pem)
                    .or_else(|_| RsaPublicKey::from_pkcs1_pem(&pem))
                    .map_err(|e| format!("{name}: `public_key_pem` is not an RSA public key: {e}"))?;
                Verifying::Rs256(Box::new(rsa::pkcs1v15::VerifyingKey::new(key)))
            }
            other => return Err(format!("{name}: algorithm {other:?} is not supported (HS256, RS256)")),
        };
        Ok(Key { kid: k.kid, verifier })
    }
}
