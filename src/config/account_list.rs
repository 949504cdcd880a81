//! The accounts kept, from an S3 object (`ACCOUNT_LIST_URI`) when a fleet is
//! too large for `ACCOUNT_IDS`: a Lambda's environment holds 4 KB in all and a
//! CloudFormation parameter 4,096 bytes, about 300 accounts, and fleets run
//! to thousands. The object is read once at start-up; its accounts take the
//! place of `ACCOUNT_IDS` for the rest of the configuration.

use std::fmt;

use crate::domain::AccountId;

use super::{Env, EnvError};

/// The variable naming the object.
pub const ACCOUNT_LIST_URI: &str = "ACCOUNT_LIST_URI";
/// The most bytes an account list may hold: 70,000 accounts.
pub const MAX_ACCOUNT_LIST_BYTES: usize = 1 << 20;

/// `s3://bucket/key`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountListUri {
    pub bucket: String,
    pub key: String,
}

impl AccountListUri {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let rest = raw
            .strip_prefix("s3://")
            .ok_or("must be an S3 URI, s3://bucket/key")?;
        let (bucket, key) = rest
            .split_once('/')
            .filter(|(b, k)| !b.is_empty() && !k.is_empty())
            .ok_or("must name a bucket and a key, s3://bucket/key")?;
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        if !bucket_ok {
            return Err(format!("names {bucket:?}, which is not an S3 bucket name"));
        }
        Ok(Self {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        })
    }
}

impl fmt::Display for AccountListUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// The accounts of an account list: 12-digit IDs separated by new lines,
/// commas or spaces; blank lines and `#` comments ignored. A repeated ID is
/// refused, as `scripts/deploy` refuses it (a list kept by hand that names an
/// account twice has likely lost another). The reason names the line at
/// fault.
pub fn parse_account_list(text: &str) -> Result<Vec<AccountId>, String> {
    if text.len() > MAX_ACCOUNT_LIST_BYTES {
        return Err(format!(
            "holds {} bytes, more than {MAX_ACCOUNT_LIST_BYTES}",
            text.len()
        ));
    }
    let mut first_line = std::collections::HashMap::new();
    let mut accounts = Vec::new();
    for (n, line) in (1..).zip(text.lines()) {
        let line = line.split('#').next().unwrap_or_default();
        for item in line.split([',', ' ', '\t']).filter(|i| !i.is_empty()) {
            let account =
                AccountId::parse(item).map_err(|e| format!("line {n}: {item:?} {}", e.reason))?;
            if let Some(first) = first_line.insert(account, n) {
                return Err(format!("line {n}: account {item} repeats line {first}"));
            }
            accounts.push(account);
        }
    }
    if accounts.is_empty() {
        return Err("names no account".into());
    }
    Ok(accounts)
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// The account list object, when `ACCOUNT_LIST_URI` names one; naming
    /// both it and `ACCOUNT_IDS` is refused.
    pub fn account_list_uri(&self) -> Result<Option<AccountListUri>, EnvError> {
        let Some(raw) = self.optional(ACCOUNT_LIST_URI) else {
            return Ok(None);
        };
        if self.optional("ACCOUNT_IDS").is_some() {
            return Err(EnvError::new(
                ACCOUNT_LIST_URI,
                "and ACCOUNT_IDS are both set: name the accounts in one of them",
            ));
        }
        AccountListUri::parse(raw.trim())
            .map(Some)
            .map_err(|reason| EnvError::new(ACCOUNT_LIST_URI, reason))
    }

    /// This environment with `accounts` (read from the account list object)
    /// as `ACCOUNT_IDS` and the object's variable answered; unchanged with
    /// `None`.
    pub fn with_accounts(
        self,
        accounts: Option<&[AccountId]>,
    ) -> Env<impl Fn(&str) -> Option<String> + use<F>> {
        let listed = accounts.map(|accounts| {
            accounts
                .iter()
                .map(AccountId::as_str)
                .collect::<Vec<_>>()
                .join(",")
        });
        let inner = self.0;
        Env(move |name: &str| match (name, &listed) {
            ("ACCOUNT_IDS", Some(listed)) => Some(listed.clone()),
            (ACCOUNT_LIST_URI, Some(_)) => None,
            _ => inner(name),
        })
    }
}

/// The accounts of the account list object `env` names, read by `read` (the
/// object's text); `None` when it names none. Give them to
/// [`Env::with_accounts`].
pub async fn read_account_list<F, R, E>(
    env: &Env<F>,
    read: impl FnOnce(AccountListUri) -> R,
) -> Result<Option<Vec<AccountId>>, EnvError>
where
    F: Fn(&str) -> Option<String>,
    R: Future<Output = Result<String, E>>,
    E: fmt::Display,
{
    let Some(uri) = env.account_list_uri()? else {
        return Ok(None);
    };
    let shown = uri.to_string();
    let text = read(uri)
        .await
        .map_err(|e| EnvError::new(ACCOUNT_LIST_URI, format!("{shown} cannot be read: {e}")))?;
    parse_account_list(&text)
        .map(Some)
        .map_err(|reason| EnvError::new(ACCOUNT_LIST_URI, format!("{shown} {reason}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::env::tests::env;

    #[test]
    fn an_account_list_takes_lines_commas_and_comments_and_names_the_bad_line() {
        let text = "# prod\n111111111111\n222222222222, 333333333333 # dr\n\n";
        let accounts = parse_account_list(text).unwrap();
        let ids: Vec<&str> = accounts.iter().map(AccountId::as_str).collect();
        assert_eq!(ids, ["111111111111", "222222222222", "333333333333"]);
        let twice = parse_account_list(&format!("{text}111111111111\n")).unwrap_err();
        assert_eq!(twice, "line 5: account 111111111111 repeats line 2");
        let err = parse_account_list("111111111111\n12345\n").unwrap_err();
        assert!(err.starts_with("line 2: \"12345\""), "{err}");
        assert_eq!(
            parse_account_list("# none\n").unwrap_err(),
            "names no account"
        );
    }

    #[test]
    fn the_uri_names_a_bucket_and_a_key() {
        let uri =
            AccountListUri::parse("s3://code-bucket/prod/accounts/ab12-accounts.txt").unwrap();
        assert_eq!(uri.bucket, "code-bucket");
        assert_eq!(uri.key, "prod/accounts/ab12-accounts.txt");
        assert_eq!(
            uri.to_string(),
            "s3://code-bucket/prod/accounts/ab12-accounts.txt"
        );
        for bad in [
            "code-bucket/key",
            "s3://code-bucket",
            "s3://code-bucket/",
            "s3://Code_Bucket/k",
        ] {
            assert!(AccountListUri::parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn the_objects_accounts_become_the_targets_and_both_variables_are_refused() {
        let vars = env(&[
            (ACCOUNT_LIST_URI, "s3://b-1/accounts.txt"),
            ("REGIONS", "us-east-1"),
        ]);
        let accounts = read_account_list(&vars, |uri| async move {
            assert_eq!(uri.key, "accounts.txt");
            Ok::<_, String>("111111111111\n222222222222\n".to_owned())
        })
        .await
        .unwrap();
        let resolved = vars.with_accounts(accounts.as_deref());
        let targets = resolved.targets(None, None).unwrap();
        assert_eq!(targets.accounts.len(), 2);
        assert_eq!(resolved.optional(ACCOUNT_LIST_URI), None);

        let both = env(&[
            (ACCOUNT_LIST_URI, "s3://b-1/a"),
            ("ACCOUNT_IDS", "111111111111"),
        ]);
        let err = read_account_list(&both, |_| async { Ok::<_, String>(String::new()) })
            .await
            .err()
            .unwrap();
        assert_eq!(err.var, ACCOUNT_LIST_URI);

        let unreadable = env(&[(ACCOUNT_LIST_URI, "s3://b-1/a")]);
        let err = read_account_list(&unreadable, |_| async { Err("NoSuchKey") })
            .await
            .err()
            .unwrap();
        assert!(
            err.reason.contains("s3://b-1/a cannot be read: NoSuchKey"),
            "{err}"
        );

        let unchanged = env(&[("ACCOUNT_IDS", "111111111111"), ("REGIONS", "us-east-1")]);
        let none = read_account_list(&unchanged, |_| async { Err::<String, _>("not read") })
            .await
            .unwrap();
        assert_eq!(none, None);
        let unchanged = unchanged.with_accounts(None);
        assert_eq!(unchanged.targets(None, None).unwrap().accounts.len(), 1);
    }
}
