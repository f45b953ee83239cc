//! Authentication: `Authorization: Bearer <JWT>` verified against the route group's audience.
//!
//! - Audiences (SPEC §10): `snr_usr` for `/app`, `snr_pro` for `/pro`, `snr_dash` for `/admin`.
//!   `/sync/v1/*` takes either `snr_usr` or `snr_pro` ([`SyncAuth`]).
//!   Handlers take [`PatientAuth`], [`DoctorAuth`] or [`AdminAuth`]; a missing, malformed,
//!   badly signed or expired token answers 401, a valid token for another group 403 (both code
//!   2000). The signature is always checked before the audience, so a 403 is only ever given to
//!   an authentic token.
//! - Keys: with a JWKS URL, the identity service's keys are fetched, cached, and fetched again
//!   when a token names an unknown `kid` or the cache is older than [`JWKS_MAX_AGE`], at most
//!   once per configured interval (forged tokens must not turn into a flood of fetches).
//!   Otherwise a local ES256 key, generated on first start into the data directory
//!   ([`LOCAL_KEY_FILE`], mode 0600) and reused afterwards, verifies tokens; `sop-server token`
//!   signs with the same file.
//!
//! Authorization (who may do what to a case) is not decided here: that is a core call.

use crate::config::{JwksConfig, SecretUrl};
use crate::error::AppError;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

/// The file in the data directory holding the local signing key (PKCS#8 PEM, P-256).
pub const LOCAL_KEY_FILE: &str = "jwt-signing-key.pem";

/// The `iss` claim of tokens minted with the local key.
pub const LOCAL_ISSUER: &str = "sop-server-local";

/// After this long, the cached JWKS is fetched again before the next verification.
pub const JWKS_MAX_AGE: Duration = Duration::from_secs(15 * 60);

/// Clock skew tolerated on `exp`/`nbf`.
const LEEWAY_SECONDS: u64 = 30;

/// Time limit of one JWKS request.
const JWKS_FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// A JWKS document larger than this is refused (a real one is a few KiB).
const JWKS_MAX_BYTES: usize = 256 * 1024;

/// The route group a token is for (its `aud` claim).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Audience {
    /// `snr_usr`: patients, `/app/*`.
    #[value(name = "snr_usr")]
    Patient,
    /// `snr_pro`: doctors, `/pro/*`.
    #[value(name = "snr_pro")]
    Doctor,
    /// `snr_dash`: the admin dashboard, `/admin/*`.
    #[value(name = "snr_dash")]
    Admin,
}

impl Audience {
    /// The `aud` value on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Audience::Patient => "snr_usr",
            Audience::Doctor => "snr_pro",
            Audience::Admin => "snr_dash",
        }
    }
}

impl fmt::Display for Audience {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `aud` claim: one string or a list (RFC 7519 §4.1.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AudClaim {
    /// A single audience.
    One(String),
    /// Several audiences.
    Many(Vec<String>),
}

impl AudClaim {
    fn contains(&self, audience: &str) -> bool {
        match self {
            AudClaim::One(a) => a == audience,
            AudClaim::Many(list) => list.iter().any(|a| a == audience),
        }
    }
}

/// The JWT claims the server reads (and `token` writes). Other claims are ignored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// The audience(s); must contain the route group's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<AudClaim>,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Issued at, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Issuer (informational; not checked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
}

impl Claims {
    /// Claims for `sub` in `audience`, issued now by the local key, valid for `ttl`.
    pub fn new(sub: impl Into<String>, audience: Audience, ttl: Duration) -> Self {
        let now = jsonwebtoken::get_current_timestamp();
        Self {
            sub: sub.into(),
            aud: Some(AudClaim::One(audience.as_str().to_owned())),
            exp: now.saturating_add(ttl.as_secs()),
            iat: Some(now),
            iss: Some(LOCAL_ISSUER.to_owned()),
        }
    }
}

/// The authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthUser {
    /// The user id (`sub`).
    pub sub: String,
    /// The route group the token was accepted for.
    pub audience: Audience,
}

/// Why a request is not authenticated. Answers 401 (403 for [`AuthError::WrongAudience`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header.
    #[error("missing Authorization header (expected `Bearer <token>`)")]
    MissingToken,
    /// An `Authorization` header that is not `Bearer <token>`.
    #[error("malformed Authorization header (expected `Bearer <token>`)")]
    MalformedHeader,
    /// The token is past its `exp`.
    #[error("the token has expired")]
    Expired,
    /// The token names a key id the server does not know (or has no key to check it with).
    #[error("the token was signed by an unknown key")]
    UnknownKey,
    /// The token is not a valid JWT, its signature does not verify, or a claim is missing or
    /// malformed. The precise reason is only logged at debug level.
    #[error("invalid token")]
    InvalidToken,
    /// An authentic token for another route group.
    #[error("this token is not valid for this part of the API (expected audience {expected})")]
    WrongAudience {
        /// The audience the route group requires.
        expected: Audience,
    },
}

impl From<AuthError> for AppError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::WrongAudience { .. } => AppError::Forbidden(err.to_string()),
            _ => AppError::Unauthorized(err.to_string()),
        }
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        AppError::from(self).into_response()
    }
}

/// Failure to create, load or use the local signing key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing the key file failed.
    #[error("cannot access the signing key file {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The key file does not hold a usable P-256 PKCS#8 key, or signing failed.
    #[error("unusable signing key: {0}")]
    Key(#[from] jsonwebtoken::errors::Error),
    /// Encoding a new key failed.
    #[error("cannot encode a new signing key: {0}")]
    Encode(String),
}

/// The local ES256 signing key: signs tokens (`sop-server token`, tests) and verifies them when
/// no JWKS URL is configured. Its `kid` is the RFC 7638 thumbprint of the public key, so it is
/// the same on every start.
#[derive(Clone)]
pub struct LocalKey {
    encoding: EncodingKey,
    public: Jwk,
    kid: String,
}

impl fmt::Debug for LocalKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the private key.
        f.debug_struct("LocalKey").field("kid", &self.kid).finish()
    }
}

impl LocalKey {
    /// A new random key, in memory only (tests use it to play an identity service).
    pub fn generate() -> Result<Self, KeyError> {
        Self::from_pkcs8_pem(&generate_pem()?)
    }

    /// A key from PKCS#8 PEM text (`-----BEGIN PRIVATE KEY-----`, P-256).
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, KeyError> {
        let encoding = EncodingKey::from_ec_pem(pem.as_bytes())?;
        let mut public = Jwk::from_encoding_key(&encoding, Algorithm::ES256)?;
        let kid = public.thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)?;
        public.common.key_id = Some(kid.clone());
        public.common.public_key_use = Some(PublicKeyUse::Signature);
        Ok(Self {
            encoding,
            public,
            kid,
        })
    }

    /// Loads `<data_dir>/jwt-signing-key.pem`, creating it (mode 0600) on first use. The data
    /// directory must exist. Safe against two processes starting at once: the file is written
    /// under a temporary name and linked into place, and the loser of the race uses the winner's.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, KeyError> {
        let path = data_dir.join(LOCAL_KEY_FILE);
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| KeyError::Io { path, source }
        };
        match std::fs::read_to_string(&path) {
            Ok(pem) => {
                tighten_permissions(&path);
                return Self::from_pkcs8_pem(&pem);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&path)(e)),
        }

        let pem = generate_pem()?;
        if create_private_file_once(&path, pem.as_bytes()).map_err(io_err(&path))? {
            tracing::info!(path = %path.display(), "generated a new local signing key");
        }
        let pem = std::fs::read_to_string(&path).map_err(io_err(&path))?;
        Self::from_pkcs8_pem(&pem)
    }

    /// The key id put in the header of every token this key signs.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK (with `kid`, `alg` and `use`), e.g. to serve it in a JWKS.
    pub fn public_jwk(&self) -> &Jwk {
        &self.public
    }

    /// Signs arbitrary claims (ES256, `kid` in the header).
    pub fn sign(&self, claims: &Claims) -> Result<String, KeyError> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.encoding)?)
    }

    /// A token for `sub` in `audience`, valid for `ttl` from now.
    pub fn mint(&self, sub: &str, audience: Audience, ttl: Duration) -> Result<String, KeyError> {
        self.sign(&Claims::new(sub, audience, ttl))
    }

    fn verify_key(&self) -> Result<VerifyKey, KeyError> {
        Ok(VerifyKey {
            kid: Some(self.kid.clone()),
            key: DecodingKey::from_jwk(&self.public)?,
            alg: Algorithm::ES256,
        })
    }
}

fn generate_pem() -> Result<String, KeyError> {
    use p256::pkcs8::{EncodePrivateKey, LineEnding};
    let secret = p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
    let pem = secret
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| KeyError::Encode(e.to_string()))?;
    Ok(pem.as_str().to_owned())
}

/// Creates `path` with `contents`, readable and writable by the owner only, unless it exists;
/// answers whether this call created it. The file is written under a temporary name and linked
/// into place, so nobody ever reads a partial file, and of two processes starting at once one
/// wins and the other keeps the winner's file.
pub(crate) fn create_private_file_once(path: &Path, contents: &[u8]) -> std::io::Result<bool> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    write_private_file(&tmp, contents)?;
    let linked = std::fs::hard_link(&tmp, path);
    if let Err(e) = std::fs::remove_file(&tmp) {
        tracing::warn!(path = %tmp.display(), error = %e, "cannot remove a temporary file");
    }
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Creates `path` (which must not exist) readable and writable by the owner only.
fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// A secret file others can read is fixed to 0600 (and logged): it signs tokens or callbacks.
pub(crate) fn tighten_permissions(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let Ok(meta) = std::fs::metadata(path) else {
            return;
        };
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "secret file was readable by others; setting mode 0600");
            if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
                tracing::warn!(path = %path.display(), error = %e, "cannot set mode 0600");
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// One verification key.
#[derive(Clone)]
struct VerifyKey {
    kid: Option<String>,
    key: DecodingKey,
    alg: Algorithm,
}

/// Verifies bearer tokens; cheap to clone (shared inside).
#[derive(Clone)]
pub struct Authenticator {
    source: Arc<KeySource>,
    verified: Arc<VerifiedTokens>,
}

/// Tokens whose signature was verified lately, by SHA-256 of the token, with their claims: a
/// device sends the same token with every request, and an ES256 verification costs ~5% of a
/// sync push's CPU (docs/PERFORMANCE.md). Expiry is still checked on every use; an entry is
/// trusted for at most [`VerifiedTokens::TTL`], so a key removed from the JWKS stops
/// working within that time.
#[derive(Default)]
struct VerifiedTokens {
    entries: std::sync::Mutex<std::collections::HashMap<[u8; 32], (Claims, Instant)>>,
}

impl VerifiedTokens {
    const TTL: Duration = Duration::from_secs(60);
    const CAPACITY: usize = 10_000;

    fn key(token: &str) -> [u8; 32] {
        use sha2::Digest;
        sha2::Sha256::digest(token.as_bytes()).into()
    }

    fn get(&self, token: &str) -> Option<Claims> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let (claims, at) = entries.get(&Self::key(token))?;
        (at.elapsed() < Self::TTL).then(|| claims.clone())
    }

    fn put(&self, token: &str, claims: &Claims) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= Self::CAPACITY {
            entries.retain(|_, (_, at)| at.elapsed() < Self::TTL);
            if entries.len() >= Self::CAPACITY {
                entries.clear();
            }
        }
        entries.insert(Self::key(token), (claims.clone(), Instant::now()));
    }
}

enum KeySource {
    Local(VerifyKey),
    Jwks(JwksCache),
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.source {
            KeySource::Local(key) => f
                .debug_struct("Authenticator::Local")
                .field("kid", &key.kid)
                .finish(),
            KeySource::Jwks(cache) => f
                .debug_struct("Authenticator::Jwks")
                .field("url", &cache.url)
                .finish(),
        }
    }
}

impl Authenticator {
    /// Verifies with the local key only.
    pub fn local(key: &LocalKey) -> Result<Self, KeyError> {
        Ok(Self {
            source: Arc::new(KeySource::Local(key.verify_key()?)),
            verified: Arc::default(),
        })
    }

    /// Verifies with the keys of a JWKS URL. Fetches them once now; if that fails the server
    /// still starts (logged) and the next token triggers another attempt.
    pub async fn jwks(config: &JwksConfig) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(JWKS_FETCH_TIMEOUT)
            .build()?;
        let cache = JwksCache {
            url: config.url.clone(),
            client,
            min_refetch_interval: config.min_refetch_interval,
            keys: RwLock::new(Arc::new(CachedKeys::default())),
            last_attempt: tokio::sync::Mutex::new(None),
        };
        cache.refresh().await;
        if cache.snapshot().keys.is_empty() {
            tracing::warn!(url = %cache.url, "no usable JWKS keys yet; tokens fail until a fetch succeeds");
        }
        Ok(Self {
            source: Arc::new(KeySource::Jwks(cache)),
            verified: Arc::default(),
        })
    }

    /// Verifies `token` for `audience`: signature, expiry, then audience.
    pub async fn verify(&self, token: &str, audience: Audience) -> Result<AuthUser, AuthError> {
        self.verify_any(token, &[audience]).await
    }

    /// Verifies `token` for the first of `audiences` it carries (routes open to several groups,
    /// such as `/sync/v1/*`); a token carrying none of them is refused naming the first.
    pub async fn verify_any(
        &self,
        token: &str,
        audiences: &[Audience],
    ) -> Result<AuthUser, AuthError> {
        let claims = match self.verified.get(token) {
            Some(claims)
                if claims.exp.saturating_add(LEEWAY_SECONDS)
                    < jsonwebtoken::get_current_timestamp() =>
            {
                return Err(AuthError::Expired);
            }
            Some(claims) => claims,
            None => {
                let claims = self.verify_signature(token).await?;
                self.verified.put(token, &claims);
                claims
            }
        };
        let granted = claims.aud.as_ref().and_then(|aud| {
            audiences
                .iter()
                .copied()
                .find(|audience| aud.contains(audience.as_str()))
        });
        match (granted, audiences.first()) {
            (Some(audience), _) => Ok(AuthUser {
                sub: claims.sub,
                audience,
            }),
            (None, Some(&expected)) => Err(AuthError::WrongAudience { expected }),
            (None, None) => Err(AuthError::InvalidToken),
        }
    }

    /// The claims of `token` once its signature, expiry and subject are checked.
    async fn verify_signature(&self, token: &str) -> Result<Claims, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| {
            tracing::debug!(error = %e, "undecodable token header");
            AuthError::InvalidToken
        })?;
        let key = match &*self.source {
            KeySource::Local(key) => match header.kid.as_deref() {
                Some(kid) if Some(kid) != key.kid.as_deref() => return Err(AuthError::UnknownKey),
                _ => key.clone(),
            },
            KeySource::Jwks(cache) => cache.find(header.kid.as_deref()).await?,
        };

        // One algorithm per key: a token cannot choose a weaker or different family.
        let mut validation = Validation::new(key.alg);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_aud = false; // checked below, to answer 403 rather than 401
        validation.set_required_spec_claims(&["exp", "sub"]);
        let data =
            jsonwebtoken::decode::<Claims>(token, &key.key, &validation).map_err(|e| {
                match e.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                    _ => {
                        tracing::debug!(error = %e, "token rejected");
                        AuthError::InvalidToken
                    }
                }
            })?;
        let claims = data.claims;
        if claims.sub.is_empty() {
            return Err(AuthError::InvalidToken);
        }
        Ok(claims)
    }

    /// Reads the bearer token of a request and verifies it for `audience`.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        audience: Audience,
    ) -> Result<AuthUser, AuthError> {
        let token = bearer_token(headers)?;
        self.verify(token, audience).await
    }
}

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive).
pub(crate) fn bearer_token(headers: &HeaderMap) -> Result<&str, AuthError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or(AuthError::MissingToken)?
        .to_str()
        .map_err(|_| AuthError::MalformedHeader)?;
    let (scheme, token) = value
        .trim()
        .split_once(' ')
        .ok_or(AuthError::MalformedHeader)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(AuthError::MalformedHeader);
    }
    Ok(token)
}

#[derive(Default)]
struct CachedKeys {
    keys: Vec<VerifyKey>,
    fetched_at: Option<Instant>,
}

struct JwksCache {
    url: SecretUrl,
    client: reqwest::Client,
    min_refetch_interval: Duration,
    /// Replaced as a whole on refresh; readers clone the `Arc` and never hold the lock across
    /// an `.await`.
    keys: RwLock<Arc<CachedKeys>>,
    /// When the last fetch started; also serializes fetches.
    last_attempt: tokio::sync::Mutex<Option<Instant>>,
}

impl JwksCache {
    fn snapshot(&self) -> Arc<CachedKeys> {
        // A poisoned lock only means a panic elsewhere while swapping an `Arc`; the value is
        // still a whole key set.
        Arc::clone(&self.keys.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn lookup(&self, kid: Option<&str>) -> Option<VerifyKey> {
        let cached = self.snapshot();
        match kid {
            Some(kid) => cached
                .keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid))
                .cloned(),
            // Without a `kid`, only an unambiguous set can be used.
            None if cached.keys.len() == 1 => cached.keys.first().cloned(),
            None => None,
        }
    }

    async fn find(&self, kid: Option<&str>) -> Result<VerifyKey, AuthError> {
        let stale = self
            .snapshot()
            .fetched_at
            .is_none_or(|at| at.elapsed() >= JWKS_MAX_AGE);
        if stale {
            self.refresh().await;
        }
        if let Some(key) = self.lookup(kid) {
            return Ok(key);
        }
        self.refresh().await;
        self.lookup(kid).ok_or(AuthError::UnknownKey)
    }

    /// Fetches the key set unless a fetch started less than `min_refetch_interval` ago. A failed
    /// fetch keeps the previous keys.
    async fn refresh(&self) {
        let mut last = self.last_attempt.lock().await;
        if last.is_some_and(|at| at.elapsed() < self.min_refetch_interval) {
            return;
        }
        *last = Some(Instant::now());
        match self.fetch().await {
            Ok(keys) => {
                tracing::info!(url = %self.url, keys = keys.len(), "fetched JWKS");
                let fresh = Arc::new(CachedKeys {
                    keys,
                    fetched_at: Some(Instant::now()),
                });
                *self.keys.write().unwrap_or_else(PoisonError::into_inner) = fresh;
            }
            Err(e) => tracing::warn!(url = %self.url, error = %e, "JWKS fetch failed"),
        }
    }

    async fn fetch(&self) -> anyhow::Result<Vec<VerifyKey>> {
        let response = self
            .client
            .get(self.url.expose())
            .send()
            .await?
            .error_for_status()?;
        if response
            .content_length()
            .is_some_and(|n| n > JWKS_MAX_BYTES as u64)
        {
            anyhow::bail!("JWKS document larger than {JWKS_MAX_BYTES} bytes");
        }
        let body = response.bytes().await?;
        if body.len() > JWKS_MAX_BYTES {
            anyhow::bail!("JWKS document larger than {JWKS_MAX_BYTES} bytes");
        }
        parse_jwks(&body)
    }
}

/// The usable signature keys of a JWKS document. Keys this server cannot or must not use
/// (encryption keys, symmetric keys, unknown types) are skipped, not fatal: identity services
/// publish such keys next to the ones we need.
fn parse_jwks(body: &[u8]) -> anyhow::Result<Vec<VerifyKey>> {
    #[derive(Deserialize)]
    struct RawSet {
        keys: Vec<serde_json::Value>,
    }
    let raw: RawSet = serde_json::from_slice(body)?;
    let mut keys = Vec::with_capacity(raw.keys.len());
    for value in raw.keys {
        let jwk: Jwk = match serde_json::from_value(value) {
            Ok(jwk) => jwk,
            Err(e) => {
                tracing::debug!(error = %e, "skipping an unreadable JWK");
                continue;
            }
        };
        if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) {
            continue;
        }
        let Some(alg) = signature_algorithm(&jwk) else {
            tracing::debug!(kid = ?jwk.common.key_id, "skipping a JWK without a usable algorithm");
            continue;
        };
        match DecodingKey::from_jwk(&jwk) {
            Ok(key) => keys.push(VerifyKey {
                kid: jwk.common.key_id.clone(),
                key,
                alg,
            }),
            Err(e) => {
                tracing::debug!(kid = ?jwk.common.key_id, error = %e, "skipping an unusable JWK");
            }
        }
    }
    Ok(keys)
}

/// The asymmetric signature algorithm of a JWK: its `alg`, or the usual one for its key type.
/// Symmetric (HS*) keys are never accepted from a JWKS.
fn signature_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    if let Some(alg) = jwk.common.key_algorithm {
        return match alg {
            KeyAlgorithm::ES256 => Some(Algorithm::ES256),
            KeyAlgorithm::ES384 => Some(Algorithm::ES384),
            KeyAlgorithm::RS256 => Some(Algorithm::RS256),
            KeyAlgorithm::RS384 => Some(Algorithm::RS384),
            KeyAlgorithm::RS512 => Some(Algorithm::RS512),
            KeyAlgorithm::PS256 => Some(Algorithm::PS256),
            KeyAlgorithm::PS384 => Some(Algorithm::PS384),
            KeyAlgorithm::PS512 => Some(Algorithm::PS512),
            KeyAlgorithm::EdDSA => Some(Algorithm::EdDSA),
            _ => None,
        };
    }
    match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => Some(Algorithm::ES256),
            EllipticCurve::P384 => Some(Algorithm::ES384),
            _ => None,
        },
        AlgorithmParameters::RSA(_) => Some(Algorithm::RS256),
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
            Some(Algorithm::EdDSA)
        }
        _ => None,
    }
}

macro_rules! audience_extractor {
    ($(#[$doc:meta])* $name:ident => $audience:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $name(pub AuthUser);

        impl<S> FromRequestParts<S> for $name
        where
            Authenticator: FromRef<S>,
            S: Send + Sync,
        {
            type Rejection = AuthError;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &S,
            ) -> Result<Self, Self::Rejection> {
                let auth = Authenticator::from_ref(state);
                auth.authenticate(&parts.headers, $audience).await.map(Self)
            }
        }
    };
}

audience_extractor!(
    /// A patient authenticated for `/app/*` (audience `snr_usr`).
    PatientAuth => Audience::Patient
);
audience_extractor!(
    /// A doctor authenticated for `/pro/*` (audience `snr_pro`).
    DoctorAuth => Audience::Doctor
);
audience_extractor!(
    /// An admin authenticated for `/admin/*` (audience `snr_dash`).
    AdminAuth => Audience::Admin
);

/// A patient or a doctor authenticated for `/sync/v1/*` (audience `snr_usr` or `snr_pro`; the
/// audience tells which, and so which actor the user is).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncAuth(pub AuthUser);

/// The audiences `/sync/v1/*` accepts.
pub const SYNC_AUDIENCES: [Audience; 2] = [Audience::Patient, Audience::Doctor];

impl<S> FromRequestParts<S> for SyncAuth
where
    Authenticator: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = Authenticator::from_ref(state);
        let token = bearer_token(&parts.headers)?;
        auth.verify_any(token, &SYNC_AUDIENCES).await.map(Self)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a failing test should panic loudly
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(value).expect("ascii"),
        );
        h
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer_token(&headers("Bearer abc")), Ok("abc"));
        assert_eq!(bearer_token(&headers("bearer  abc ")), Ok("abc"));
        assert_eq!(
            bearer_token(&HeaderMap::new()),
            Err(AuthError::MissingToken)
        );
        for bad in ["Basic abc", "Bearer", "Bearer ", "abc"] {
            assert_eq!(
                bearer_token(&headers(bad)),
                Err(AuthError::MalformedHeader),
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn local_key_round_trip_and_audience_check() {
        let key = LocalKey::generate().expect("key");
        let auth = Authenticator::local(&key).expect("verifier");
        let token = key
            .mint("u1", Audience::Patient, Duration::from_secs(60))
            .expect("token");
        assert_eq!(
            auth.verify(&token, Audience::Patient).await,
            Ok(AuthUser {
                sub: "u1".into(),
                audience: Audience::Patient
            })
        );
        assert_eq!(
            auth.verify(&token, Audience::Admin).await,
            Err(AuthError::WrongAudience {
                expected: Audience::Admin
            })
        );
    }

    #[tokio::test]
    async fn expired_and_foreign_tokens_are_refused() {
        let key = LocalKey::generate().expect("key");
        let auth = Authenticator::local(&key).expect("verifier");
        let now = jsonwebtoken::get_current_timestamp();
        let expired = key
            .sign(&Claims {
                exp: now - 3600,
                ..Claims::new("u1", Audience::Doctor, Duration::ZERO)
            })
            .expect("token");
        assert_eq!(
            auth.verify(&expired, Audience::Doctor).await,
            Err(AuthError::Expired)
        );

        let other = LocalKey::generate().expect("key");
        let foreign = other
            .mint("u1", Audience::Doctor, Duration::from_secs(60))
            .expect("token");
        assert_eq!(
            auth.verify(&foreign, Audience::Doctor).await,
            Err(AuthError::UnknownKey)
        );

        // Same kid but tampered payload: the signature no longer matches.
        let good = key
            .mint("u1", Audience::Doctor, Duration::from_secs(60))
            .expect("token");
        let mut parts: Vec<&str> = good.split('.').collect();
        let evil = key
            .mint("admin", Audience::Doctor, Duration::from_secs(60))
            .expect("token");
        let evil_payload = evil.split('.').nth(1).expect("payload");
        parts[1] = evil_payload;
        let tampered = parts.join(".");
        assert_eq!(
            auth.verify(&tampered, Audience::Doctor).await,
            Err(AuthError::InvalidToken)
        );
        assert_eq!(
            auth.verify("not-a-jwt", Audience::Doctor).await,
            Err(AuthError::InvalidToken)
        );
    }

    #[tokio::test]
    async fn a_verified_token_is_remembered_but_its_expiry_and_audience_still_count() {
        let key = LocalKey::generate().expect("key");
        let auth = Authenticator::local(&key).expect("verifier");
        let token = key
            .mint("u1", Audience::Patient, Duration::from_secs(60))
            .expect("token");
        assert!(auth.verified.get(&token).is_none());
        auth.verify(&token, Audience::Patient).await.expect("valid");
        assert_eq!(auth.verified.get(&token).expect("remembered").sub, "u1");
        // From the cache: still the audience check.
        assert_eq!(
            auth.verify(&token, Audience::Admin).await,
            Err(AuthError::WrongAudience {
                expected: Audience::Admin
            })
        );
        // A remembered token past its expiry (and the leeway) is refused.
        let mut stale = auth.verified.get(&token).expect("remembered");
        stale.exp = jsonwebtoken::get_current_timestamp() - LEEWAY_SECONDS - 1;
        auth.verified.put(&token, &stale);
        assert_eq!(
            auth.verify(&token, Audience::Patient).await,
            Err(AuthError::Expired)
        );
        // Refused tokens are not remembered.
        assert!(auth.verify("not-a-jwt", Audience::Patient).await.is_err());
        assert!(auth.verified.get("not-a-jwt").is_none());
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = LocalKey::load_or_create(dir.path()).expect("create");
        let second = LocalKey::load_or_create(dir.path()).expect("load");
        assert_eq!(first.kid(), second.kid());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(LOCAL_KEY_FILE))
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // No temporary files left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(LOCAL_KEY_FILE)]);
    }

    #[test]
    fn jwks_parsing_skips_unusable_keys() {
        let key = LocalKey::generate().expect("key");
        let body = serde_json::json!({
            "keys": [
                {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
                {"kty": "weird", "kid": "w"},
                {"kty": "EC", "crv": "P-256", "x": "bad", "y": "bad", "kid": "enc", "use": "enc"},
                key.public_jwk(),
            ]
        });
        let keys = parse_jwks(&serde_json::to_vec(&body).expect("json")).expect("parsed");
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid.as_deref(), Some(key.kid()));
        assert_eq!(keys[0].alg, Algorithm::ES256);
    }
}
