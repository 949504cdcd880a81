//! The query protocol EC2 and IAM share: form-urlencoded parameters (body and
//! URL), `Action=`, numbered lists (`SubnetId.1`, `SubnetId.2`), and the page
//! parameters both use.

use crate::page::Pager;

/// The parameters of a query-protocol request.
#[derive(Debug, Default)]
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    /// The parameters of the URL query and the form body, in that order.
    pub(crate) fn parse(query: Option<&str>, body: &[u8]) -> Self {
        let mut pairs: Vec<(String, String)> =
            form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                .into_owned()
                .collect();
        pairs.extend(form_urlencoded::parse(body).into_owned());
        Self(pairs)
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn action(&self) -> Option<&str> {
        self.get("Action").filter(|a| !a.is_empty())
    }

    /// The members of list `name` (`name.1`, `name.2`, ...), in index order.
    pub(crate) fn list(&self, name: &str) -> Vec<&str> {
        let mut members: Vec<(u64, &str)> = self
            .0
            .iter()
            .filter_map(|(k, v)| {
                let index = k.strip_prefix(name)?.strip_prefix('.')?.parse().ok()?;
                Some((index, v.as_str()))
            })
            .collect();
        members.sort_by_key(|(i, _)| *i);
        members.into_iter().map(|(_, v)| v).collect()
    }

    /// Whether any parameter is `name` or starts with `name.`.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.0
            .iter()
            .any(|(k, _)| k == name || k.strip_prefix(name).is_some_and(|r| r.starts_with('.')))
    }

    /// A whole-number parameter.
    pub(crate) fn number(&self, name: &str) -> Result<Option<i64>, String> {
        self.get(name)
            .map(|v| {
                v.parse()
                    .map_err(|_| format!("Invalid value '{v}' for {name}: must be a whole number"))
            })
            .transpose()
    }
}

/// The page size a request asks for: `name` when given (within `min..=max`),
/// else `default`.
pub(crate) fn page_size(
    params: &Params,
    name: &str,
    min: i64,
    max: i64,
    default: usize,
) -> Result<usize, String> {
    match params.number(name)? {
        None => Ok(default),
        Some(n) if (min..=max).contains(&n) => Ok(n as usize),
        Some(n) => Err(format!(
            "Value ( {n} ) for parameter {name} is invalid. Parameter must be between {min} and {max}."
        )),
    }
}

/// The offset a page token names; absent or empty means the first page.
pub(crate) fn offset(pager: &Pager, token: Option<&str>) -> Option<usize> {
    match token {
        None | Some("") => Some(0),
        Some(token) => pager.offset(token),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_actions_lists_and_numbers() {
        let params = Params::parse(
            Some("Version=2016-11-15"),
            b"Action=DescribeSubnets&SubnetId.2=subnet-b&SubnetId.1=subnet-a&MaxResults=5&Filter.1.Name=vpc-id",
        );
        assert_eq!(params.action(), Some("DescribeSubnets"));
        assert_eq!(params.list("SubnetId"), ["subnet-a", "subnet-b"]);
        assert_eq!(params.number("MaxResults"), Ok(Some(5)));
        assert!(params.has("Filter"));
        assert!(!params.has("Filt"));
        assert!(
            Params::parse(None, b"MaxResults=x")
                .number("MaxResults")
                .is_err()
        );
        assert_eq!(Params::parse(None, b"").action(), None);
    }
}
