//! IAM instance profiles of one account (IAM is global: the same in every
//! region), each rendered once as its `<member>` of the IAM query protocol.

use crate::{
    clock::SimTime,
    ids::AccountId,
    rng::{Rng, Seed},
    xml::{self, text},
};

const FIXED: [(&str, &str); 3] = [
    (
        "AWSElasticDisasterRecoveryRecoveryInstanceRole",
        "/service-role/",
    ),
    ("AmazonSSMRoleForInstancesQuickSetup", "/"),
    (
        "AWSElasticDisasterRecoveryReplicationServerRole",
        "/service-role/",
    ),
];
const APPS: [&str; 10] = [
    "payments",
    "orders",
    "crm",
    "billing",
    "inventory",
    "hr",
    "analytics",
    "portal",
    "search",
    "reporting",
];
const ENVS: [&str; 4] = ["prod", "staging", "dev", "qa"];
const UPPER_ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
/// The trust policy of every role (EC2 may assume it), URL-encoded as IAM returns it.
const ASSUME_ROLE_POLICY: &str = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Principal%22%3A%7B%22Service%22%3A%22ec2.amazonaws.com%22%7D%2C%22Action%22%3A%22sts%3AAssumeRole%22%7D%5D%7D";

/// One instance profile: its path (for `PathPrefix`) and its `<member>`.
#[derive(Debug)]
pub(crate) struct Profile {
    /// Its `InstanceProfileName`.
    pub(crate) name: String,
    /// Its position in generation order: the newest has the highest.
    pub(crate) index: u64,
    pub(crate) path: String,
    pub(crate) xml: String,
}

/// The instance profiles of `account`, sorted by name as IAM lists them.
pub(crate) fn generate(seed: u64, account: &AccountId, count: u32) -> Vec<Profile> {
    let seed = Seed::new(seed).with_str("iam").with_str(account.as_str());
    let mut profiles: Vec<(String, String, u64)> = (0..u64::from(count))
        .map(|i| {
            let (name, path) = match FIXED.get(i as usize) {
                Some((name, path)) => ((*name).to_owned(), (*path).to_owned()),
                None => {
                    let mut rng = seed.with_str("name").with(i).rng();
                    let path = if rng.chance(0.2) { "/app/" } else { "/" };
                    let name = format!("{}-{}-ec2-{:03}", rng.pick(&APPS), rng.pick(&ENVS), i);
                    (name, path.to_owned())
                }
            };
            (name, path, i)
        })
        .collect();
    profiles.sort();
    profiles
        .into_iter()
        .map(|(name, path, i)| render(account, seed, &name, &path, i))
        .collect()
}

fn render(account: &AccountId, seed: Seed, name: &str, path: &str, i: u64) -> Profile {
    let mut rng = seed.with_str("profile").with(i).rng();
    let created = SimTime::generation(0).minus(rng.range(86_400, 1_500 * 86_400) as i64);
    let profile_id = unique_id("AIPA", &mut rng);
    let role_id = unique_id("AROA", &mut rng);
    let role_created = created.minus(rng.range(0, 600) as i64);
    let partition = "aws";
    let xml = xml::render(|w| {
        w.create_element("member").write_inner_content(|w| {
            text(w, "Path", path)?;
            text(w, "InstanceProfileName", name)?;
            text(w, "InstanceProfileId", &profile_id)?;
            text(
                w,
                "Arn",
                format!("arn:{partition}:iam::{account}:instance-profile{path}{name}"),
            )?;
            text(w, "CreateDate", created.iam())?;
            w.create_element("Roles").write_inner_content(|w| {
                w.create_element("member").write_inner_content(|w| {
                    text(w, "Path", path)?;
                    text(w, "RoleName", name)?;
                    text(w, "RoleId", &role_id)?;
                    text(
                        w,
                        "Arn",
                        format!("arn:{partition}:iam::{account}:role{path}{name}"),
                    )?;
                    text(w, "CreateDate", role_created.iam())?;
                    text(w, "AssumeRolePolicyDocument", ASSUME_ROLE_POLICY)?;
                    text(w, "MaxSessionDuration", 3_600)
                })?;
                Ok(())
            })?;
            Ok(())
        })?;
        Ok(())
    });
    Profile {
        name: name.to_owned(),
        index: i,
        path: path.to_owned(),
        xml,
    }
}

/// An IAM unique ID: a four-letter prefix and 17 characters.
fn unique_id(prefix: &str, rng: &mut Rng) -> String {
    format!("{prefix}{}", rng.chars_from(UPPER_ALNUM, 17))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_are_sorted_deterministic_and_name_the_account() {
        let account = AccountId::parse("444455556666").unwrap();
        let a = generate(1, &account, 25);
        let b = generate(1, &account, 25);
        assert_eq!(a.len(), 25);
        let name = |p: &Profile| {
            let start = p.xml.find("<InstanceProfileName>").unwrap();
            p.xml[start..].split('<').nth(1).unwrap().to_owned()
        };
        assert!(a.windows(2).all(|w| name(&w[0]) < name(&w[1])));
        assert_eq!(
            a.iter().map(|p| &p.xml).collect::<Vec<_>>(),
            b.iter().map(|p| &p.xml).collect::<Vec<_>>()
        );
        assert!(
            a[0].xml
                .contains("arn:aws:iam::444455556666:instance-profile/")
        );
    }
}
