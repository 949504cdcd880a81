//! Who is calling: the service, region and access key of the SigV4 credential
//! scope (`Credential=AKID/DATE/REGION/SERVICE/aws4_request`), and the account
//! of that access key. Signatures are not verified.
//!
//! An access key maps to an account by, in order: the configured map; the STS
//! endpoint (a moto server, `http://`), asked once per key with
//! `GetCallerIdentity` carrying that key in its credential scope, which for
//! moto's `AssumeRole` credentials names the assumed role's account; the
//! default account. moto answers a key it never issued with its placeholder
//! identity (`arn:aws:sts::…:user/moto`): that counts as not known, so such
//! keys get the default account. An STS that fails, or does not answer within
//! 10 s, gives the default account too, and is asked again on the key's next
//! request.

use std::{
    collections::HashMap,
    error::Error as _,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use http::{HeaderMap, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use quick_xml::{Reader, events::Event};
use tokio::sync::OnceCell;
use tracing::{debug, warn};

use crate::{clock::SimTime, ids::AccountId};

/// How long the STS endpoint may take to name an account.
const STS_TIMEOUT: Duration = Duration::from_secs(10);

/// The credential scope of a signed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scope {
    pub(crate) access_key: String,
    pub(crate) region: String,
    pub(crate) service: String,
}

/// The scope from the `Authorization` header, or from a presigned URL's
/// `X-Amz-Credential` query parameter.
pub(crate) fn scope(headers: &HeaderMap, query: Option<&str>) -> Option<Scope> {
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
pub(crate) struct KeyLookup {
    pub(crate) mapped: Option<AccountId>,
    pub(crate) sts_endpoint: Option<String>,
    pub(crate) default: AccountId,
}

/// (STS endpoint, access key).
type KeyAt = (String, String);

/// Resolves access keys to accounts, asking STS at most once per key.
#[derive(Debug)]
pub(crate) struct Resolver {
    /// The account of each key once STS answered (`None`: STS does not know it).
    resolved: Mutex<HashMap<KeyAt, Arc<OnceCell<Option<AccountId>>>>>,
    /// One connection pool for every STS endpoint.
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Default for Resolver {
    fn default() -> Self {
        Self {
            resolved: Mutex::default(),
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }
}

impl Resolver {
    pub(crate) async fn account(&self, access_key: &str, lookup: KeyLookup) -> AccountId {
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
        let result = cell
            .get_or_try_init(|| async {
                let asked = ask_sts(&self.client, &endpoint, access_key);
                match tokio::time::timeout(STS_TIMEOUT, asked).await {
                    Ok(answer) => answer,
                    Err(_) => Err(StsError::Timeout(STS_TIMEOUT)),
                }
            })
            .await;
        match result {
            Ok(account) => account.unwrap_or(lookup.default),
            Err(error) => {
                let source = error.source().map(tracing::field::display);
                warn!(%endpoint, access_key, error = %error, source, "STS did not name the caller's account; using the default");
                lookup.default
            }
        }
    }
}

/// Why STS could not name an account.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StsError {
    #[error("the STS endpoint is not an http:// URL")]
    NotHttp,
    #[error("the STS endpoint is not a valid URL")]
    Endpoint(#[source] http::uri::InvalidUri),
    #[error("GetCallerIdentity could not be written for this access key")]
    Request(#[source] http::Error),
    #[error("GetCallerIdentity failed")]
    Call(#[source] hyper_util::client::legacy::Error),
    #[error("GetCallerIdentity answered {0}")]
    Status(StatusCode),
    #[error("GetCallerIdentity's answer could not be read")]
    Body(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("GetCallerIdentity's answer is not XML")]
    Xml(#[source] quick_xml::Error),
    #[error("GetCallerIdentity timed out after {0:?}")]
    Timeout(Duration),
    #[error("GetCallerIdentity named no valid account: {0:?}")]
    NoAccount(Option<String>),
}

/// The query-protocol body of `GetCallerIdentity`.
const GET_CALLER_IDENTITY: &str = "Action=GetCallerIdentity&Version=2011-06-15";
/// The largest STS answer read.
const MAX_ANSWER: usize = 64 << 10;

/// The account STS names for `access_key`, or `None` for moto's placeholder
/// identity of a key it never issued.
///
/// A plain HTTP request, not a SigV4 crate: the key's secret is unknown, so nothing can be signed for real.
/// moto reads only the access key of the `Authorization` header's credential
/// scope, which also routes the request to its STS.
async fn ask_sts(
    client: &Client<HttpConnector, Full<Bytes>>,
    endpoint: &str,
    access_key: &str,
) -> Result<Option<AccountId>, StsError> {
    if !endpoint.starts_with("http://") {
        return Err(StsError::NotHttp);
    }
    let uri: Uri = format!("{}/", endpoint.trim_end_matches('/'))
        .parse()
        .map_err(StsError::Endpoint)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let amz_date = SimTime::at(now, 0).amz();
    let day = &amz_date[..8];
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential={access_key}/{day}/us-east-1/sts/aws4_request, \
         SignedHeaders=host;x-amz-date, Signature={}",
        "0".repeat(64)
    );
    let request = http::Request::post(uri)
        .header(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .header("x-amz-date", &amz_date)
        .header(header::AUTHORIZATION, authorization)
        .body(Full::new(Bytes::from_static(
            GET_CALLER_IDENTITY.as_bytes(),
        )))
        .map_err(StsError::Request)?;
    let response = client.request(request).await.map_err(StsError::Call)?;
    let status = response.status();
    if !status.is_success() {
        return Err(StsError::Status(status));
    }
    let body = Limited::new(response.into_body(), MAX_ANSWER)
        .collect()
        .await
        .map_err(StsError::Body)?
        .to_bytes();
    let identity = Identity::parse(&String::from_utf8_lossy(&body)).map_err(StsError::Xml)?;
    if identity
        .arn
        .as_deref()
        .is_some_and(|arn| arn.ends_with(":user/moto"))
    {
        debug!(access_key, "STS does not know the key");
        return Ok(None);
    }
    let id = identity
        .account
        .as_deref()
        .and_then(|a| AccountId::parse(a).ok())
        .ok_or(StsError::NoAccount(identity.account))?;
    debug!(access_key, account = %id, "STS named the caller's account");
    Ok(Some(id))
}

/// The caller STS names in a `GetCallerIdentityResponse`.
#[derive(Debug, Default, PartialEq, Eq)]
struct Identity {
    arn: Option<String>,
    account: Option<String>,
}

impl Identity {
    /// The `Arn` and `Account` of
    /// `<GetCallerIdentityResponse><GetCallerIdentityResult>`, whatever the
    /// namespace.
    fn parse(xml: &str) -> Result<Self, quick_xml::Error> {
        let mut reader = Reader::from_str(xml);
        let mut path: Vec<String> = Vec::new();
        let mut identity = Self::default();
        loop {
            match reader.read_event()? {
                Event::Start(start) => path.push(start.local_name().as_ref().to_owned()),
                Event::End(_) => {
                    path.pop();
                }
                Event::Text(text) => {
                    let field = match path.as_slice() {
                        [response, result, field]
                            if response == "GetCallerIdentityResponse"
                                && result == "GetCallerIdentityResult" =>
                        {
                            field.as_str()
                        }
                        _ => continue,
                    };
                    let slot = match field {
                        "Arn" => &mut identity.arn,
                        "Account" => &mut identity.account,
                        _ => continue,
                    };
                    slot.get_or_insert_default()
                        .push_str(text.xml10_content().trim());
                }
                Event::Eof => return Ok(identity),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use http::HeaderValue;
    use hyper::{body::Incoming, server::conn::http1, service::service_fn};
    use hyper_util::rt::TokioIo;
    use tokio::net::TcpListener;

    use super::*;

    /// What a fake STS was asked: each request's headers and body.
    type Asked = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

    /// A fake STS on a free loopback port that answers every request with
    /// `status` and `body`; its endpoint, and what it was asked.
    async fn fake_sts(status: StatusCode, body: &'static str) -> (String, Asked) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let asked = Asked::default();
        let log = asked.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let log = log.clone();
                let service = service_fn(move |request: http::Request<Incoming>| {
                    let log = log.clone();
                    async move {
                        let (parts, incoming) = request.into_parts();
                        let bytes = incoming.collect().await.unwrap().to_bytes();
                        log.lock().unwrap().push((parts.headers, bytes));
                        let mut response = http::Response::new(Full::new(Bytes::from(body)));
                        *response.status_mut() = status;
                        Ok::<_, Infallible>(response)
                    }
                });
                tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
            }
        });
        (endpoint, asked)
    }

    fn lookup(endpoint: &str) -> KeyLookup {
        KeyLookup {
            mapped: None,
            sts_endpoint: Some(endpoint.to_owned()),
            default: AccountId::parse("999999999999").unwrap(),
        }
    }

    const ASSUMED: &str = r#"<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult>
    <Arn>arn:aws:sts::333344445555:assumed-role/drs-cache-reader/session</Arn>
    <UserId>AROA01234567890EXAMPLE:session</UserId>
    <Account>333344445555</Account>
  </GetCallerIdentityResult>
  <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>
</GetCallerIdentityResponse>"#;

    const PLACEHOLDER: &str = "<GetCallerIdentityResponse><GetCallerIdentityResult>\
        <Arn>arn:aws:sts::123456789012:user/moto</Arn><UserId>AKIAIOSFODNN7EXAMPLE</UserId>\
        <Account>123456789012</Account></GetCallerIdentityResult></GetCallerIdentityResponse>";

    #[tokio::test]
    async fn sts_is_asked_once_per_key_with_the_key_in_the_credential_scope() {
        // GIVEN an STS that names an assumed role's account
        let (endpoint, asked) = fake_sts(StatusCode::OK, ASSUMED).await;
        let resolver = Resolver::default();
        // WHEN the same key calls twice
        for _ in 0..2 {
            let account = resolver
                .account("ASIAEXAMPLEKEY000001", lookup(&endpoint))
                .await;
            // THEN both calls are placed in that account
            assert_eq!(account.as_str(), "333344445555");
        }
        // AND STS was asked once, with the key in a us-east-1 STS scope
        let asked = asked.lock().unwrap();
        assert_eq!(asked.len(), 1);
        let (headers, body) = &asked[0];
        assert_eq!(body.as_ref(), GET_CALLER_IDENTITY.as_bytes());
        let date = headers["x-amz-date"].to_str().unwrap();
        assert_eq!(date.len(), 16, "{date}");
        let authorization = headers[header::AUTHORIZATION].to_str().unwrap();
        assert!(
            authorization.starts_with(&format!(
                "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLEKEY000001/{}/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date, Signature=",
                &date[..8]
            )),
            "{authorization}"
        );
        assert_eq!(
            headers[header::CONTENT_TYPE],
            "application/x-www-form-urlencoded; charset=utf-8"
        );
        assert!(headers.contains_key(header::HOST));
    }

    #[tokio::test]
    async fn unknown_keys_and_failures_get_the_default_account() {
        let resolver = Resolver::default();
        let default = lookup("http://unused").default;
        let (placeholder, _) = fake_sts(StatusCode::OK, PLACEHOLDER).await;
        let (failing, asked) = fake_sts(StatusCode::FORBIDDEN, "<ErrorResponse/>").await;
        let (garbled, _) = fake_sts(StatusCode::OK, "<GetCallerIdentityResponse><Account>").await;
        let closed = {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            format!("http://{}", listener.local_addr().unwrap())
        };
        for endpoint in [
            placeholder.as_str(),
            failing.as_str(),
            garbled.as_str(),
            closed.as_str(),
            "https://sts.example",
        ] {
            let account = resolver
                .account("AKIANEVERISSUED00000", lookup(endpoint))
                .await;
            assert_eq!(account, default, "{endpoint}");
        }
        // A failure is not remembered: the next request asks again.
        resolver
            .account("AKIANEVERISSUED00000", lookup(&failing))
            .await;
        assert_eq!(asked.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn mapped_keys_and_no_endpoint_never_reach_sts() {
        let resolver = Resolver::default();
        let mapped = AccountId::parse("111122223333").unwrap();
        let (endpoint, asked) = fake_sts(StatusCode::OK, ASSUMED).await;
        let account = resolver
            .account(
                "AKIAMAPPED0000000000",
                KeyLookup {
                    mapped: Some(mapped),
                    ..lookup(&endpoint)
                },
            )
            .await;
        assert_eq!(account, mapped);
        let no_sts = KeyLookup {
            sts_endpoint: None,
            ..lookup(&endpoint)
        };
        let default = no_sts.default;
        assert_eq!(
            resolver.account("AKIAOTHER00000000000", no_sts).await,
            default
        );
        assert!(asked.lock().unwrap().is_empty());
    }

    #[test]
    fn reads_the_identity_whatever_the_namespace_and_layout() {
        assert_eq!(
            Identity::parse(ASSUMED).unwrap(),
            Identity {
                arn: Some("arn:aws:sts::333344445555:assumed-role/drs-cache-reader/session".into()),
                account: Some("333344445555".into()),
            }
        );
        assert_eq!(
            Identity::parse("<ErrorResponse><Error><Account>1</Account></Error></ErrorResponse>")
                .unwrap(),
            Identity::default()
        );
        assert!(Identity::parse("<a></b>").is_err());
    }

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
