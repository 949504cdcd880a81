//! IAM over its query protocol: ListInstanceProfiles, answered as
//! `<ListInstanceProfilesResponse><ListInstanceProfilesResult>` with
//! `IsTruncated`, `Marker` and `<InstanceProfiles><member>`; errors as
//! `<ErrorResponse><Error><Type>`.

use http::StatusCode;

use super::{
    faults::Fault,
    page::page,
    query::{self, Params},
    server::{Call, Reply},
    xml::Xml,
};

const NAMESPACE: &str = "https://iam.amazonaws.com/doc/2010-05-08/";
const CONTENT_TYPE: &str = "text/xml";
const LIST_INSTANCE_PROFILES: &str = "ListInstanceProfiles";

/// Answers `action`.
pub fn answer(call: &Call<'_>, action: &str, params: &Params) -> Reply {
    let result = match action {
        LIST_INSTANCE_PROFILES => list_instance_profiles(call, params),
        other => Err(IamError::sender(
            StatusCode::BAD_REQUEST,
            "InvalidAction",
            format!("Could not find operation {other} for version 2010-05-08"),
        )),
    };
    match result {
        Ok(body) => Reply::new(StatusCode::OK, CONTENT_TYPE, body, &call.request_id),
        Err(error) => error.reply(&call.request_id),
    }
}

/// The answer of `fault` to `action`.
pub fn fault(call: &Call<'_>, fault: Fault, action: &str) -> Reply {
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
pub struct IamError {
    status: StatusCode,
    kind: &'static str,
    code: &'static str,
    message: String,
}

impl IamError {
    /// An error the caller caused (`<Type>Sender</Type>`).
    pub fn sender(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind: "Sender",
            code,
            message: message.into(),
        }
    }

    pub fn reply(&self, request_id: &str) -> Reply {
        let mut x = Xml::new();
        x.raw(&format!("<ErrorResponse xmlns=\"{NAMESPACE}\">"))
            .open("Error")
            .el("Type", self.kind)
            .el("Code", self.code)
            .el("Message", &self.message)
            .close("Error")
            .el("RequestId", request_id)
            .close("ErrorResponse");
        Reply::new(self.status, CONTENT_TYPE, x.finish(), request_id)
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
    let pager = call.pager(LIST_INSTANCE_PROFILES, prefix);
    let offset = query::offset(&pager, params.get("Marker"))
        .ok_or_else(|| invalid("Invalid Marker".to_owned()))?;
    let (range, next) = page(selected.len(), offset, limit.min(call.max_page));

    let mut x = Xml::new();
    x.raw(&format!(
        "<ListInstanceProfilesResponse xmlns=\"{NAMESPACE}\">"
    ))
    .open("ListInstanceProfilesResult")
    .el("IsTruncated", next.is_some());
    if let Some(next) = next {
        x.el("Marker", pager.token(next));
    }
    x.open("InstanceProfiles");
    for member in &selected[range] {
        x.raw(member);
    }
    x.close("InstanceProfiles")
        .close("ListInstanceProfilesResult")
        .open("ResponseMetadata")
        .el("RequestId", &call.request_id)
        .close("ResponseMetadata")
        .close("ListInstanceProfilesResponse");
    Ok(x.finish())
}
