//! EC2 over its query protocol: DescribeSubnets, DescribeSecurityGroups and
//! DescribeInstanceTypes, answered as `<{Action}Response>` XML with the items in
//! `<subnetSet>`/`<securityGroupInfo>`/`<instanceTypeSet>` and `<nextToken>`;
//! errors as `<Response><Errors><Error>`.

use std::str::FromStr;

use http::StatusCode;

use crate::{
    exchange::{Call, Reply},
    faults::Fault,
    page::page,
    query::{self, Params},
    xml::{self, declaration, rendered, text},
};

const NAMESPACE: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";
const CONTENT_TYPE: &str = "text/xml;charset=UTF-8";

/// The actions served, named as in the API and in the request counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumString, strum::IntoStaticStr)]
#[expect(
    clippy::enum_variant_names,
    reason = "the variants are EC2's action names"
)]
enum Action {
    DescribeSubnets,
    DescribeSecurityGroups,
    DescribeInstanceTypes,
}

/// One listing action: its item set, ID parameter and limits.
struct Listing {
    action: Action,
    set: &'static str,
    id_param: &'static str,
    max_results: i64,
    not_found: fn(&str) -> Ec2Error,
}

const SUBNETS: Listing = Listing {
    action: Action::DescribeSubnets,
    set: "subnetSet",
    id_param: "SubnetId",
    max_results: 1_000,
    not_found: |id| {
        Ec2Error::client(
            "InvalidSubnetID.NotFound",
            format!("The subnet ID '{id}' does not exist"),
        )
    },
};
const SECURITY_GROUPS: Listing = Listing {
    action: Action::DescribeSecurityGroups,
    set: "securityGroupInfo",
    id_param: "GroupId",
    max_results: 1_000,
    not_found: |id| {
        Ec2Error::client(
            "InvalidGroup.NotFound",
            format!("The security group '{id}' does not exist"),
        )
    },
};
const INSTANCE_TYPES: Listing = Listing {
    action: Action::DescribeInstanceTypes,
    set: "instanceTypeSet",
    id_param: "InstanceType",
    max_results: 100,
    not_found: |id| {
        Ec2Error::client(
            "InvalidInstanceType",
            format!("The following supplied instance types do not exist: [{id}]"),
        )
    },
};

/// Answers `action`.
pub(crate) fn answer(call: &Call<'_>, action: &str, params: &Params) -> Reply {
    let result = match Action::from_str(action) {
        Ok(Action::DescribeSubnets) => {
            let network = call
                .data
                .network(call.seed, call.account, call.region, call.params);
            let items: Vec<(&str, &str)> = network
                .subnets
                .iter()
                .map(|i| (i.id.as_str(), i.xml.as_str()))
                .collect();
            list(call, &SUBNETS, params, &items)
        }
        Ok(Action::DescribeSecurityGroups) => {
            let network = call
                .data
                .network(call.seed, call.account, call.region, call.params);
            let items: Vec<(&str, &str)> = network
                .security_groups
                .iter()
                .map(|i| (i.id.as_str(), i.xml.as_str()))
                .collect();
            list(call, &SECURITY_GROUPS, params, &items)
        }
        Ok(Action::DescribeInstanceTypes) => {
            let catalog = call.data.catalog(call.region);
            let items: Vec<(&str, &str)> = catalog
                .iter()
                .map(|t| (t.name.as_str(), t.xml.as_str()))
                .collect();
            list(call, &INSTANCE_TYPES, params, &items)
        }
        Err(_) => Err(Ec2Error::client(
            "InvalidAction",
            format!("The action {action} is not valid for this web service."),
        )),
    };
    match result {
        Ok(body) => Reply::new(StatusCode::OK, CONTENT_TYPE, body, &call.request_id),
        Err(error) => error.reply(&call.request_id),
    }
}

/// The answer of `fault` to `action`.
pub(crate) fn fault(call: &Call<'_>, fault: Fault, action: &str) -> Reply {
    let error = match fault {
        Fault::Throttle => Ec2Error::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "RequestLimitExceeded",
            "Request limit exceeded.",
        ),
        Fault::ServerError => Ec2Error::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "An internal error has occurred",
        ),
        Fault::DisabledRegion => Ec2Error::new(
            StatusCode::UNAUTHORIZED,
            "OptInRequired",
            "You are not subscribed to this service. Please go to http://aws.amazon.com to subscribe.",
        ),
        Fault::AccessDenied => Ec2Error::new(
            StatusCode::FORBIDDEN,
            "UnauthorizedOperation",
            format!(
                "You are not authorized to perform this operation. User: arn:aws:sts::{}:assumed-role/caller/session is not authorized to perform: ec2:{action} because no identity-based policy allows the ec2:{action} action",
                call.account
            ),
        ),
        // DRS only; never decided for EC2.
        Fault::NotInitialized => Ec2Error::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "An internal error has occurred",
        ),
    };
    error.reply(&call.request_id)
}

/// An EC2 error answer.
#[derive(Debug)]
pub(crate) struct Ec2Error {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl Ec2Error {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    fn client(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub(crate) fn reply(&self, request_id: &str) -> Reply {
        let body = xml::render(|w| {
            declaration(w)?;
            w.create_element("Response").write_inner_content(|w| {
                w.create_element("Errors").write_inner_content(|w| {
                    w.create_element("Error").write_inner_content(|w| {
                        text(w, "Code", self.code)?;
                        text(w, "Message", &self.message)
                    })?;
                    Ok(())
                })?;
                text(w, "RequestID", request_id)
            })?;
            Ok(())
        });
        Reply::new(self.status, CONTENT_TYPE, body, request_id)
    }
}

fn list(
    call: &Call<'_>,
    listing: &Listing,
    params: &Params,
    items: &[(&str, &str)],
) -> Result<String, Ec2Error> {
    if params.has("Filter") {
        return Err(Ec2Error::client(
            "InvalidParameterValue",
            "The simulator does not support the Filter parameter; list everything or name IDs",
        ));
    }
    let default = listing.max_results as usize;
    let limit = query::page_size(params, "MaxResults", 5, listing.max_results, default)
        .map_err(|m| Ec2Error::client("InvalidParameterValue", m))?;
    let wanted = params.list(listing.id_param);
    let selected: Vec<&str> = if wanted.is_empty() {
        items.iter().map(|(_, xml)| *xml).collect()
    } else {
        let mut selected = Vec::with_capacity(wanted.len());
        for id in &wanted {
            let (_, xml) = items
                .iter()
                .find(|(have, _)| have == id)
                .ok_or_else(|| (listing.not_found)(id))?;
            selected.push(*xml);
        }
        selected
    };
    let action: &str = listing.action.into();
    let pager = call.pager(action, &wanted.join(","));
    let offset = query::offset(&pager, params.get("NextToken")).ok_or_else(|| {
        Ec2Error::client(
            "InvalidPaginationToken",
            "The specified pagination token is not valid or is expired.",
        )
    })?;
    let (range, next) = page(selected.len(), offset, limit.min(call.max_page));

    Ok(xml::render(|w| {
        declaration(w)?;
        w.create_element(format!("{action}Response"))
            .with_attribute(("xmlns", NAMESPACE))
            .write_inner_content(|w| {
                text(w, "requestId", &call.request_id)?;
                w.create_element(listing.set).write_inner_content(|w| {
                    for item in &selected[range] {
                        rendered(w, item);
                    }
                    Ok(())
                })?;
                next.map_or(Ok(()), |next| text(w, "nextToken", pager.token(next)))
            })?;
        Ok(())
    }))
}
