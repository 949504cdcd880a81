//! What the server hands a protocol module for one request ([`Call`]) and what
//! it gets back ([`Reply`]): the contract between `server` and `drs`, `ec2`,
//! `iam` and `admin`.

use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};
use http_body_util::Full;

use crate::{
    config::{FleetParams, ServerSet, SourceNetworkSet},
    data::Datasets,
    ids::{AccountId, Region},
    page::Pager,
    rng::Seed,
};

/// What one request needs to be answered.
pub(crate) struct Call<'a> {
    pub(crate) seed: u64,
    pub(crate) account: &'a AccountId,
    pub(crate) region: &'a Region,
    pub(crate) params: FleetParams,
    pub(crate) servers_set: Vec<ServerSet>,
    pub(crate) source_networks_set: Vec<SourceNetworkSet>,
    pub(crate) instance_profiles: u32,
    pub(crate) max_page: usize,
    pub(crate) retry_after: u64,
    pub(crate) request_id: String,
    pub(crate) data: &'a Datasets,
}

impl Call<'_> {
    /// The DRS fleet of this caller's account and region.
    pub(crate) fn fleet(&self) -> std::sync::Arc<crate::fleet::Fleet> {
        self.data.fleet(
            self.seed,
            self.account,
            self.region,
            self.params,
            &self.servers_set,
        )
    }

    /// The DRS source networks of this caller's account and region.
    pub(crate) fn source_networks(
        &self,
    ) -> std::sync::Arc<Vec<crate::source_networks::SourceNetwork>> {
        self.data.source_networks(
            self.seed,
            self.account,
            self.region,
            &self.source_networks_set,
        )
    }

    /// The pager of one listing by this caller, bound to its `filters`.
    pub(crate) fn pager(&self, operation: &str, filters: &str) -> Pager {
        Pager::new(
            Seed::new(self.seed)
                .with_str(operation)
                .with_str(self.account.as_str())
                .with_str(self.region.as_str())
                .with_str(filters),
        )
    }
}

/// An answer: status, headers and body.
#[derive(Debug)]
pub(crate) struct Reply {
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: String,
}

impl Reply {
    /// An answer of `content_type`; `x-amzn-RequestId` too unless `request_id`
    /// is empty.
    pub(crate) fn new(
        status: StatusCode,
        content_type: &str,
        body: String,
        request_id: &str,
    ) -> Self {
        let reply = Self {
            status,
            headers: Vec::new(),
            body,
        }
        .header("content-type", content_type);
        if request_id.is_empty() {
            reply
        } else {
            reply.header("x-amzn-RequestId", request_id)
        }
    }

    /// Adds a header (an invalid value is left out).
    #[must_use]
    pub(crate) fn header(mut self, name: &str, value: &str) -> Self {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            self.headers.push((name, value));
        }
        self
    }

    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    pub(crate) fn into_response(self) -> http::Response<Full<Bytes>> {
        let mut response = http::Response::new(Full::new(Bytes::from(self.body)));
        *response.status_mut() = self.status;
        response.headers_mut().extend(self.headers);
        response
    }
}
