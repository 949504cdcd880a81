//! Which deployment refreshes each data region. Over a DynamoDB global table
//! every deployment reads every region's data from its own replica, but each
//! key has exactly one writer: the deployment that owns the key's data region.
//! Global tables settle concurrent writes by last writer wins, so one owner
//! per region, not conditional writes, keeps a key's versions in order.

use std::collections::BTreeMap;

use super::Region;

/// The owner of every data region, as this deployment sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Ownership {
    /// One deployment over a table of its own: it owns every region.
    #[default]
    Sole,
    /// One of several deployments over a global table.
    Shared {
        /// The region this deployment runs in.
        deployment: Region,
        /// Data regions assigned an owner; any other region is owned by the
        /// deployment in that region.
        assigned: BTreeMap<Region, Region>,
    },
}

/// Why an ownership map was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OwnershipError {
    #[error("{0} is not data-region=owner-region")]
    NotAPair(String),
    #[error("{region}: {reason}")]
    Region {
        region: String,
        reason: &'static str,
    },
    #[error("{0} is given more than one owner")]
    TwoOwners(Region),
}

impl Ownership {
    /// A deployment in `deployment` with `assigned` as `data=owner` pairs
    /// separated by commas (empty: each region owned by its own deployment).
    pub fn shared(deployment: Region, assigned: &str) -> Result<Self, OwnershipError> {
        let mut map = BTreeMap::new();
        for pair in assigned.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (data, owner) = pair
                .split_once('=')
                .ok_or_else(|| OwnershipError::NotAPair(pair.to_owned()))?;
            let parse = |raw: &str| {
                Region::parse(raw.trim()).map_err(|e| OwnershipError::Region {
                    region: raw.trim().to_owned(),
                    reason: e.reason,
                })
            };
            let (data, owner) = (parse(data)?, parse(owner)?);
            if map.insert(data.clone(), owner).is_some() {
                return Err(OwnershipError::TwoOwners(data));
            }
        }
        Ok(Self::Shared {
            deployment,
            assigned: map,
        })
    }

    /// The deployment region that refreshes `data_region`; `None` for a sole
    /// deployment, which refreshes everything.
    pub fn owner_of<'a>(&'a self, data_region: &'a Region) -> Option<&'a Region> {
        match self {
            Self::Sole => None,
            Self::Shared { assigned, .. } => Some(assigned.get(data_region).unwrap_or(data_region)),
        }
    }

    /// Whether this deployment refreshes `data_region`.
    pub fn owns(&self, data_region: &Region) -> bool {
        match self {
            Self::Sole => true,
            Self::Shared { deployment, .. } => self.owner_of(data_region) == Some(deployment),
        }
    }

    /// The owner of `data_region` when it is another deployment.
    pub fn other_owner<'a>(&'a self, data_region: &'a Region) -> Option<&'a Region> {
        self.owner_of(data_region)
            .filter(|_| !self.owns(data_region))
    }

    /// The region this deployment runs in, when it shares a global table.
    pub fn deployment(&self) -> Option<&Region> {
        match self {
            Self::Sole => None,
            Self::Shared { deployment, .. } => Some(deployment),
        }
    }

    /// Of `regions`, those this deployment refreshes, in their order.
    pub fn owned(&self, regions: &[Region]) -> Vec<Region> {
        regions.iter().filter(|r| self.owns(r)).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(raw: &str) -> Region {
        Region::parse(raw).unwrap()
    }

    #[test]
    fn each_region_is_owned_by_its_own_deployment_unless_assigned() {
        let east = Ownership::shared(r("us-east-1"), "eu-west-1=us-east-1").unwrap();
        let west = Ownership::shared(r("us-west-2"), "eu-west-1=us-east-1").unwrap();
        let all = [r("us-east-1"), r("us-west-2"), r("eu-west-1")];
        assert_eq!(east.owned(&all), [r("us-east-1"), r("eu-west-1")]);
        assert_eq!(west.owned(&all), [r("us-west-2")]);
        for region in &all {
            assert!(
                east.owns(region) != west.owns(region),
                "{region} has exactly one owner"
            );
        }
        assert_eq!(west.other_owner(&all[2]), Some(&r("us-east-1")));
        assert_eq!(west.other_owner(&all[1]), None);
    }

    #[test]
    fn an_assignment_moves_a_deployments_own_region_away() {
        // The failover of us-east-1 to us-west-2: one pair more.
        let west = Ownership::shared(r("us-west-2"), "us-east-1=us-west-2").unwrap();
        let east = Ownership::shared(r("us-east-1"), "us-east-1=us-west-2").unwrap();
        assert!(west.owns(&r("us-east-1")));
        assert!(!east.owns(&r("us-east-1")));
        assert_eq!(east.other_owner(&r("us-east-1")), Some(&r("us-west-2")));
    }

    #[test]
    fn a_sole_deployment_owns_everything() {
        assert!(Ownership::Sole.owns(&r("ap-south-1")));
        assert_eq!(Ownership::Sole.other_owner(&r("ap-south-1")), None);
    }

    #[test]
    fn a_bad_map_is_refused_naming_the_pair() {
        let home = r("us-east-1");
        assert_eq!(
            Ownership::shared(home.clone(), "eu-west-1"),
            Err(OwnershipError::NotAPair("eu-west-1".into()))
        );
        assert!(matches!(
            Ownership::shared(home.clone(), "eu-west-1=mars"),
            Err(OwnershipError::Region { region, .. }) if region == "mars"
        ));
        assert_eq!(
            Ownership::shared(home.clone(), "eu-west-1=us-east-1, eu-west-1=us-west-2"),
            Err(OwnershipError::TwoOwners(r("eu-west-1")))
        );
        assert_eq!(
            Ownership::shared(home.clone(), " "),
            Ok(Ownership::Shared {
                deployment: home,
                assigned: BTreeMap::new()
            })
        );
    }
}
