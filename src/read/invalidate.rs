//! `POST /cache/invalidate`: the body names what to refresh.

use serde_json::{Map, Value};

use crate::{
    domain::{AccountId, DataType, InvalidValue, Region},
    ports::Invalidation,
};

use super::ApiError;

/// Longest request body read (invalidations are the only requests with one).
pub const MAX_REQUEST_BODY_BYTES: usize = 4 * 1024;

/// The invalidation `body` asks for: a JSON object with optional `dataType`,
/// `region` and `accountId` strings; an empty body invalidates everything.
pub fn parse(body: &[u8]) -> Result<Invalidation, ApiError> {
    let invalid = ApiError::invalid;
    if body.len() > MAX_REQUEST_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge {
            limit: MAX_REQUEST_BODY_BYTES,
        });
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Invalidation::default());
    }
    let text = String::from_utf8_lossy(body);
    let fields: Map<String, Value> = serde_json::from_slice(body).map_err(|_| {
        invalid(
            "body",
            "must be a JSON object with optional dataType, region and accountId",
            &text,
        )
    })?;
    let mut inv = Invalidation::default();
    for (name, value) in &fields {
        let Value::String(raw) = value else {
            return Err(invalid(name, "must be a string", &value.to_string()));
        };
        let checked = |r: Result<(), InvalidValue>| r.map_err(|e| invalid(name, e.reason, raw));
        match name.as_str() {
            "dataType" => checked(DataType::parse(raw).map(|t| inv.data_type = Some(t)))?,
            "region" => checked(Region::parse(raw).map(|r| inv.region = Some(r)))?,
            "accountId" => checked(AccountId::parse(raw).map(|a| inv.account = Some(a)))?,
            _ => return Err(invalid(name, "is not a field of an invalidation", raw)),
        }
    }
    Ok(inv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_body_or_object_invalidates_everything() {
        assert_eq!(parse(b""), Ok(Invalidation::default()));
        assert_eq!(parse(b" {} "), Ok(Invalidation::default()));
    }

    #[test]
    fn fields_are_validated_and_named() {
        let inv = parse(br#"{"dataType":"drs-quotas","region":"us-east-1"}"#).unwrap();
        assert_eq!(inv.data_type, Some(DataType::DrsQuotas));
        assert_eq!(inv.region.unwrap().as_str(), "us-east-1");
        let field = |body: &[u8]| match parse(body) {
            Err(ApiError::InvalidParameter { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(br#"{"dataType":"quotas"}"#), "dataType");
        assert_eq!(field(br#"{"accountId":"12"}"#), "accountId");
        assert_eq!(field(br#"{"region":7}"#), "region");
        assert_eq!(field(br#"{"everything":"yes"}"#), "everything");
        assert_eq!(field(b"[1]"), "body");
        assert_eq!(field(b"not json"), "body");
        assert_eq!(
            parse(&[b' '; MAX_REQUEST_BODY_BYTES + 1]),
            Err(ApiError::PayloadTooLarge {
                limit: MAX_REQUEST_BODY_BYTES
            })
        );
    }
}
