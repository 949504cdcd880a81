//! Who is calling: the service, region and access key of the SigV4 credential
//! scope (`Credential=AKID/DATE/REGION/SERVICE/aws4_request`), and the account
//! of that access key. Signatures are not verified.
//!
//! An access key maps to an account by, in order: the configured map; the STS
//! endpoint (a moto server), asked once per key with `GetCallerIdentity` signed
//! with that key, which for moto's `AssumeRole` credentials names the assumed
//! role's account; the default account. moto answers a key it never issued
//! with its placeholder identity (`arn:aws:sts::…:user/moto`): that counts as
//! not known, so such keys get the default account.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use aws_sdk_sts::config::{BehaviorVersion, Credentials, Region as StsRegion};
use http::HeaderMap;
use tokio::sync::OnceCell;
use tracing::{debug, warn};

use crate::domain::AccountId;

/// How long the STS endpoint may take to name an account.
const STS_TIMEOUT: Duration = Duration::from_secs(10);

/// The credential scope of a signed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub access_key: String,
    pub region: String,
    pub service: String,
}

/// The scope from the `Authorization` header, or from a presigned URL's
/// `X-Amz-Credential` query parameter.
pub fn scope(headers: &HeaderMap, query: Option<&str>) -> Option<Scope> {
    let from_header = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|auth| {
            let rest = auth.strip_prefix("AWS4-HMAC-SHA256")?;
            rest.split(',')
                .map(str::trim)
                .find_map(|part| part.strip_prefix("Credential="))
                .map(str::to_owned)
        });
    let credential = from_header.or_else(|| {
        form_urlencoded::parse(query?.as_bytes())
            .find(|(k, _)| k == "X-Amz-Credential")
            .map(|(_, v)| v.into_owned())
    })?;
    let mut parts = credential.split('/');
    let (key, _date, region, service, terminator) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    (terminator == "aws4_request" && !key.is_empty() && parts.next().is_none()).then(|| Scope {
        access_key: key.to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
    })
}

/// What the configuration says about one access key.
#[derive(Debug, Clone)]
pub struct KeyLookup {
    pub mapped: Option<AccountId>,
    pub sts_endpoint: Option<String>,
    pub default: AccountId,
}

/// (STS endpoint, access key).
type KeyAt = (String, String);

/// Resolves access keys to accounts, asking STS at most once per key.
#[derive(Debug, Default)]
pub struct Resolver {
    /// The account of each key once STS answered (`None`: STS does not know it).
    resolved: Mutex<HashMap<KeyAt, Arc<OnceCell<Option<AccountId>>>>>,
    /// One client per STS endpoint; each call carries its own credentials.
    clients: Mutex<HashMap<String, aws_sdk_sts::Client>>,
}

impl Resolver {
    pub async fn account(&self, access_key: &str, lookup: KeyLookup) -> AccountId {
        if let Some(account) = lookup.mapped {
            return account;
        }
        let Some(endpoint) = lookup.sts_endpoint else {
            return lookup.default;
        };
        let cell = {
            let mut resolved = self.resolved.lock().unwrap_or_else(PoisonError::into_inner);
            resolved
                .entry((endpoint.clone(), access_key.to_owned()))
                .or_default()
                .clone()
        };
        let client = self.client(&endpoint);
        let result = cell
            .get_or_try_init(|| ask_sts(client, access_key.to_owned()))
            .await;
        match result {
            Ok(account) => account.unwrap_or(lookup.default),
            Err(error) => {
                warn!(%endpoint, access_key, error = %error, "STS did not name the caller's account; using the default");
                lookup.default
            }
        }
    }

    fn client(&self, endpoint: &str) -> aws_sdk_sts::Client {
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        clients
            .entry(endpoint.to_owned())
            .or_insert_with(|| {
                let config = aws_sdk_sts::Config::builder()
                    .behavior_version(BehaviorVersion::latest())
                    .endpoint_url(endpoint)
                    .region(StsRegion::new("us-east-1"))
                    .credentials_provider(Credentials::new(
                        "unused", "unused", None, None, "drs-sim",
                    ))
                    .build();
                aws_sdk_sts::Client::from_conf(config)
            })
            .clone()
    }
}

/// Why STS could not name an account.
#[derive(Debug, thiserror::Error)]
pub enum StsError {
    #[error("GetCallerIdentity failed")]
    Call(#[source] Box<aws_sdk_sts::Error>),
    #[error("GetCallerIdentity timed out after {0:?}")]
    Timeout(Duration),
    #[error("GetCallerIdentity named no valid account: {0:?}")]
    NoAccount(Option<String>),
}

/// The account STS names for `access_key`, or `None` for moto's placeholder
/// identity of a key it never issued.
async fn ask_sts(
    client: aws_sdk_sts::Client,
    access_key: String,
) -> Result<Option<AccountId>, StsError> {
    // Signed with the caller's key (moto does not check the secret).
    let credentials = Credentials::new(access_key.clone(), "drs-sim", None, None, "drs-sim");
    let call = client
        .get_caller_identity()
        .customize()
        .config_override(aws_sdk_sts::Config::builder().credentials_provider(credentials))
        .send();
    let output = tokio::time::timeout(STS_TIMEOUT, call)
        .await
        .map_err(|_| StsError::Timeout(STS_TIMEOUT))?
        .map_err(|e| StsError::Call(Box::new(e.into())))?;
    if output.arn().is_some_and(|arn| arn.ends_with(":user/moto")) {
        debug!(access_key, "STS does not know the key");
        return Ok(None);
    }
    let account = output.account().map(str::to_owned);
    let id = account
        .as_deref()
        .and_then(|a| AccountId::parse(a).ok())
        .ok_or(StsError::NoAccount(account))?;
    debug!(access_key, account = %id, "STS named the caller's account");
    Ok(Some(id))
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn reads_the_scope_of_a_signed_request() {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240601/eu-west-1/drs/aws4_request, \
                 SignedHeaders=host;x-amz-date, Signature=abc",
            ),
        );
        assert_eq!(
            scope(&headers, None),
            Some(Scope {
                access_key: "AKIDEXAMPLE".into(),
                region: "eu-west-1".into(),
                service: "drs".into(),
            })
        );
    }

    #[test]
    fn reads_a_presigned_scope_and_refuses_malformed_ones() {
        let empty = HeaderMap::new();
        let query = "Action=ListInstanceProfiles&X-Amz-Credential=AKID%2F20240601%2Fus-east-1%2Fiam%2Faws4_request";
        assert_eq!(scope(&empty, Some(query)).unwrap().service, "iam");
        for bad in [
            "AWS4-HMAC-SHA256 Credential=AKID/20240601/us-east-1/drs",
            "AWS4-HMAC-SHA256 Credential=/20240601/us-east-1/drs/aws4_request",
            "AWS4-HMAC-SHA256 Credential=AKID/20240601/us-east-1/drs/aws4_request/x",
            "Basic dXNlcjpwYXNz",
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(
                http::header::AUTHORIZATION,
                HeaderValue::from_str(bad).unwrap(),
            );
            assert_eq!(scope(&headers, None), None, "{bad}");
        }
        assert_eq!(scope(&empty, None), None);
    }
}
