//! IAM over its query protocol: ListInstanceProfiles, answered as
//! `<ListInstanceProfilesResponse><ListInstanceProfilesResult>` with
//! `IsTruncated`, `Marker` and `<InstanceProfiles><member>`; errors as
//! `<ErrorResponse><Error><Type>`.

use std::str::FromStr;

use http::StatusCode;

use crate::{
    exchange::{Call, Reply},
    faults::Fault,
    page::page,
    query::{self, Params},
    xml::{self, rendered, text},
};

const NAMESPACE: &str = "https://iam.amazonaws.com/doc/2010-05-08/";
const CONTENT_TYPE: &str = "text/xml";

/// The actions served, named as in the API and in the request counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumString, strum::IntoStaticStr)]
enum Action {
    ListInstanceProfiles,
}

/// Answers `action`.
pub(crate) fn answer(call: &Call<'_>, action: &str, params: &Params) -> Reply {
    let result = match Action::from_str(action) {
        Ok(Action::ListInstanceProfiles) => list_instance_profiles(call, params),
        Err(_) => Err(IamError::sender(
            StatusCode::BAD_REQUEST,
            "InvalidAction",
            format!("Could not find operation {action} for version 2010-05-08"),
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
        Fault::Throttle => IamError::sender(StatusCode::BAD_REQUEST, "Throttling", "Rate exceeded"),
        Fault::AccessDenied => IamError::sender(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            format!(
                "User: arn:aws:sts::{0}:assumed-role/caller/session is not authorized to perform: iam:{action} on resource: arn:aws:iam::{0}:instance-profile/",
                call.account
            ),
        ),
        // Server errors, and the faults IAM never gets (it is global and not DRS).
        Fault::ServerError | Fault::DisabledRegion | Fault::NotInitialized => IamError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            kind: "Receiver",
            code: "ServiceFailure",
            message: "The request processing has failed because of an unknown error, exception or failure.".into(),
        },
    };
    error.reply(&call.request_id)
}

/// An IAM error answer.
#[derive(Debug)]
pub(crate) struct IamError {
    status: StatusCode,
    kind: &'static str,
    code: &'static str,
    message: String,
}

impl IamError {
    /// An error the caller caused (`<Type>Sender</Type>`).
    pub(crate) fn sender(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            kind: "Sender",
            code,
            message: message.into(),
        }
    }

    pub(crate) fn reply(&self, request_id: &str) -> Reply {
        let body = xml::render(|w| {
            w.create_element("ErrorResponse")
                .with_attribute(("xmlns", NAMESPACE))
                .write_inner_content(|w| {
                    w.create_element("Error").write_inner_content(|w| {
                        text(w, "Type", self.kind)?;
                        text(w, "Code", self.code)?;
                        text(w, "Message", &self.message)
                    })?;
                    text(w, "RequestId", request_id)
                })?;
            Ok(())
        });
        Reply::new(self.status, CONTENT_TYPE, body, request_id)
    }
}

fn list_instance_profiles(call: &Call<'_>, params: &Params) -> Result<String, IamError> {
    let invalid = |m: String| IamError::sender(StatusCode::BAD_REQUEST, "ValidationError", m);
    let limit = query::page_size(params, "MaxItems", 1, 1_000, 100).map_err(invalid)?;
    let prefix = params.get("PathPrefix").unwrap_or("/");
    if !prefix.starts_with('/') || prefix.len() > 512 {
        return Err(invalid(format!(
            "1 validation error detected: Value '{prefix}' at 'pathPrefix' failed to satisfy constraint: must start with /"
        )));
    }
    let profiles = call
        .data
        .profiles(call.seed, call.account, call.instance_profiles);
    let selected: Vec<&str> = profiles
        .iter()
        .filter(|p| p.path.starts_with(prefix))
        .map(|p| p.xml.as_str())
        .collect();
    let pager = call.pager(Action::ListInstanceProfiles.into(), prefix);
    let offset = query::offset(&pager, params.get("Marker"))
        .ok_or_else(|| invalid("Invalid Marker".to_owned()))?;
    let (range, next) = page(selected.len(), offset, limit.min(call.max_page));

    Ok(xml::render(|w| {
        w.create_element("ListInstanceProfilesResponse")
            .with_attribute(("xmlns", NAMESPACE))
            .write_inner_content(|w| {
                w.create_element("ListInstanceProfilesResult")
                    .write_inner_content(|w| {
                        text(w, "IsTruncated", next.is_some())?;
                        if let Some(next) = next {
                            text(w, "Marker", pager.token(next))?;
                        }
                        w.create_element("InstanceProfiles")
                            .write_inner_content(|w| {
                                for member in &selected[range] {
                                    rendered(w, member);
                                }
                                Ok(())
                            })?;
                        Ok(())
                    })?;
                w.create_element("ResponseMetadata")
                    .write_inner_content(|w| text(w, "RequestId", &call.request_id))?;
                Ok(())
            })?;
        Ok(())
    }))
}
