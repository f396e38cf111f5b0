//! The client on storage directly (no server needed). Safe while a server
//! runs on the same storage: every operation goes through the same
//! crash-safe, GC-safe registry code the server uses.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{
    Client, ClientError, CreatedToken, ErrorKind, GcRequest, Progress, Result, Tagged, TokenInfo,
    TokenRequest, Usage,
};
use crate::auth::perms::{self, Permission};
use crate::auth::tokens::{self, TokenError};
use crate::config::Config;
use crate::registry::Registry;
use crate::registry::error::{Code, RegistryError};
use crate::registry::gc::{GcOptions, GcReport};
use crate::registry::images::{ImageRef, ImageRow, Inspection};
use crate::registry::ops::Deleted;
use crate::registry::refglob::RefGlob;
use crate::registry::retention::{RetentionReport, Rule};

pub struct Local {
    reg: Arc<Registry>,
    rules: Vec<Rule>,
    grace: Duration,
    upload_ttl: Duration,
}

impl Local {
    pub fn new(reg: Arc<Registry>, config: &Config) -> Local {
        Local {
            reg,
            rules: config.retention.clone(),
            grace: config.gc.grace,
            upload_ttl: config.storage.upload_ttl,
        }
    }

    /// Opens the storage the config names.
    pub fn open(config: &Config) -> Result<Local> {
        let (reg, _) = crate::serve::open_registry(config)
            .map_err(|e| ClientError::new(ErrorKind::Failed, e.to_string()))?;
        Ok(Local::new(reg, config))
    }
}

impl From<RegistryError> for ClientError {
    fn from(e: RegistryError) -> Self {
        let kind = match e.code {
            Code::BlobUnknown
            | Code::BlobUploadUnknown
            | Code::ManifestUnknown
            | Code::NameUnknown => ErrorKind::NotFound,
            Code::Busy | Code::InUse => ErrorKind::Conflict,
            Code::Internal => ErrorKind::Failed,
            _ => ErrorKind::Invalid,
        };
        let message = match e.cause {
            Some(cause) => format!("{}: {cause}", e.message),
            None => e.message,
        };
        ClientError::new(kind, message)
    }
}

impl From<TokenError> for ClientError {
    fn from(e: TokenError) -> Self {
        let kind = match &e {
            TokenError::Invalid(_) => ErrorKind::Invalid,
            TokenError::NotFound(_) => ErrorKind::NotFound,
            TokenError::Exists(_) => ErrorKind::Conflict,
            TokenError::Storage(_) => ErrorKind::Failed,
        };
        ClientError::new(kind, e.to_string())
    }
}

/// Names the reference in a not-found error: "no such image a:1 (...)".
fn about(reference: &str) -> impl Fn(RegistryError) -> ClientError + '_ {
    move |e| {
        let mut e = ClientError::from(e);
        if e.kind == ErrorKind::NotFound {
            e.message = format!("no such image {reference} ({})", e.message);
        }
        e
    }
}

#[async_trait]
impl Client for Local {
    async fn images(&self, pattern: Option<&str>) -> Result<Vec<ImageRow>> {
        let glob = pattern
            .map(RefGlob::new)
            .transpose()
            .map_err(|e| ClientError::new(ErrorKind::Invalid, e))?;
        Ok(self.reg.images(glob.as_ref()).await?)
    }

    async fn inspect(&self, reference: &str) -> Result<Inspection> {
        let r = ImageRef::parse(reference)?;
        self.reg.inspect(&r).await.map_err(about(reference))
    }

    async fn tag(&self, source: &str, target: &str) -> Result<Tagged> {
        let src = ImageRef::parse(source)?;
        let dst = ImageRef::parse(target)?;
        let (digest, replaced) = self.reg.retag(&src, &dst).await.map_err(about(source))?;
        Ok(Tagged {
            source: src.to_string(),
            target: dst.to_string(),
            digest: digest.to_string(),
            replaced: replaced.map(|d| d.to_string()),
        })
    }

    async fn delete(
        &self,
        reference: &str,
        dry_run: bool,
        expect: Option<&str>,
    ) -> Result<Deleted> {
        let r = ImageRef::parse(reference)?;
        let expect = expect
            .map(|d| {
                d.parse()
                    .map_err(|_| ClientError::new(ErrorKind::Invalid, format!("bad digest {d}")))
            })
            .transpose()?;
        self.reg
            .delete_image(&r, dry_run, expect.as_ref())
            .await
            .map_err(about(reference))
    }

    async fn gc(&self, req: &GcRequest, progress: Progress<'_>) -> Result<GcReport> {
        let opts = GcOptions {
            dry_run: req.dry_run,
            grace: req
                .grace_seconds
                .map(Duration::from_secs)
                .unwrap_or(self.grace),
            upload_ttl: self.upload_ttl,
        };
        Ok(self.reg.gc(&opts, progress).await?)
    }

    async fn retention(&self, dry_run: bool) -> Result<RetentionReport> {
        Ok(self.reg.retention(&self.rules, dry_run).await?)
    }

    async fn usage(&self) -> Result<Usage> {
        Ok(self.reg.usage().await?)
    }

    async fn token_create(&self, req: &TokenRequest) -> Result<CreatedToken> {
        let invalid = |m: String| ClientError::new(ErrorKind::Invalid, m);
        let mut permissions = match &req.role {
            Some(r) => perms::role(r).map_err(invalid)?,
            None => Vec::new(),
        };
        for s in &req.scopes {
            permissions.push(Permission::parse(s).map_err(invalid)?);
        }
        let expires = req
            .expires_in
            .map(|s| tokens::expiry(s).map_err(invalid))
            .transpose()?;
        let (secret, token) = tokens::create(
            self.reg.storage().as_ref(),
            &req.name,
            &permissions,
            expires,
        )
        .await?;
        Ok(CreatedToken { secret, token })
    }

    async fn tokens(&self) -> Result<Vec<TokenInfo>> {
        Ok(tokens::list(self.reg.storage().as_ref()).await?)
    }

    async fn token_revoke(&self, name: &str) -> Result<TokenInfo> {
        Ok(tokens::revoke(self.reg.storage().as_ref(), name).await?)
    }
}
