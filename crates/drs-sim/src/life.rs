//! A deterministic driver of live changes: which [`Change`] happens next, and
//! where. It keeps no clock; the caller decides how often to ask and applies
//! each change with [`crate::SimHandle::apply`].

use crate::{
    ids::{AccountId, Region},
    live::Change,
    rng::{Rng, Seed},
};

/// The mix of changes a live DR fleet sees: mostly replication moving on,
/// regularly a stall that the same server recovers from a few steps later,
/// sometimes a launch, a subnet, a security group, an instance profile, a
/// source network's protection status or a recovery instance's failback.
#[derive(Debug, Clone)]
pub struct Life {
    rng: Rng,
    /// Stalls not yet recovered: at most one per fleet.
    stalls: Vec<Stall>,
}

#[derive(Debug, Clone)]
struct Stall {
    account: AccountId,
    region: Region,
    pick: u64,
    /// Steps until its recovery.
    due: u32,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Progress,
    Stall,
    Launch,
    Subnet,
    SecurityGroup,
    InstanceProfile,
    SourceNetwork,
    Failback,
}

const MIX: [(Kind, u32); 8] = [
    (Kind::Progress, 70),
    (Kind::Stall, 8),
    (Kind::Launch, 6),
    (Kind::Subnet, 6),
    (Kind::SecurityGroup, 6),
    (Kind::InstanceProfile, 4),
    (Kind::SourceNetwork, 3),
    (Kind::Failback, 2),
];

/// Steps from a stall to its recovery.
const STALL_STEPS: (u64, u64) = (3, 12);

impl Life {
    /// A driver whose sequence is a function of `seed` (the configuration's
    /// seed, usually) and of the fleets it is offered.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: Seed::new(seed).with_str("life").rng(),
            stalls: Vec::new(),
        }
    }

    /// The next change and the (account, region) it happens in, or `None` when
    /// `fleets` is empty. A recovery names the same `pick` as its stall, so it
    /// recovers the same server while the fleet keeps its size; a stall whose
    /// fleet is no longer offered is forgotten.
    pub fn next(&mut self, fleets: &[(AccountId, Region)]) -> Option<(Change, AccountId, Region)> {
        if fleets.is_empty() {
            return None;
        }
        self.stalls.retain(|s| {
            fleets
                .iter()
                .any(|(a, r)| *a == s.account && *r == s.region)
        });
        for stall in &mut self.stalls {
            stall.due = stall.due.saturating_sub(1);
        }
        if let Some(i) = self.stalls.iter().position(|s| s.due == 0) {
            let stall = self.stalls.remove(i);
            let change = Change::ServerRecovers { pick: stall.pick };
            return Some((change, stall.account, stall.region));
        }
        let (account, region) = self.rng.pick(fleets).clone();
        let change = match *self.rng.weighted(&MIX) {
            Kind::Stall
                if !self
                    .stalls
                    .iter()
                    .any(|s| s.account == account && s.region == region) =>
            {
                let pick = self.rng.next_u64();
                let due = self.rng.range(STALL_STEPS.0, STALL_STEPS.1);
                self.stalls.push(Stall {
                    account,
                    region: region.clone(),
                    pick,
                    due: u32::try_from(due).unwrap_or(u32::MAX),
                });
                Change::ServerStalls { pick }
            }
            Kind::Progress | Kind::Stall => Change::ReplicationProgress,
            Kind::Launch => Change::Launch {
                pick: self.rng.next_u64(),
                drill: self.rng.chance(0.8),
                succeeded: self.rng.chance(0.9),
            },
            Kind::Subnet => Change::SubnetCreated,
            Kind::SecurityGroup => Change::SecurityGroupCreated,
            Kind::InstanceProfile => Change::InstanceProfileCreated,
            Kind::SourceNetwork => Change::SourceNetworkStatus {
                pick: self.rng.next_u64(),
            },
            Kind::Failback => Change::FailbackState {
                pick: self.rng.next_u64(),
            },
        };
        Some((change, account, region))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleets() -> Vec<(AccountId, Region)> {
        ["us-east-1", "eu-west-1", "ap-southeast-2"]
            .into_iter()
            .map(|r| {
                (
                    AccountId::parse("111122223333").unwrap(),
                    Region::parse(r).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_sequence() {
        let (mut a, mut b, mut c) = (Life::new(4), Life::new(4), Life::new(5));
        let fleets = fleets();
        let run = |life: &mut Life| (0..200).map(|_| life.next(&fleets)).collect::<Vec<_>>();
        let (x, y, z) = (run(&mut a), run(&mut b), run(&mut c));
        assert_eq!(x, y);
        assert_ne!(x, z);
    }

    #[test]
    fn the_mix_is_mostly_progress_and_every_stall_recovers_in_the_same_fleet() {
        let mut life = Life::new(1);
        let fleets = fleets();
        let mut progress = 0;
        let mut open: Vec<(u64, AccountId, Region)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1_000 {
            let (change, account, region) = life.next(&fleets).unwrap();
            seen.insert(std::mem::discriminant(&change));
            match change {
                Change::ReplicationProgress => progress += 1,
                Change::ServerStalls { pick } => {
                    assert!(!open.iter().any(|(_, a, r)| *a == account && *r == region));
                    open.push((pick, account, region));
                }
                Change::ServerRecovers { pick } => {
                    let i = open
                        .iter()
                        .position(|o| *o == (pick, account, region.clone()))
                        .expect("a recovery follows its stall");
                    open.remove(i);
                }
                _ => {}
            }
        }
        assert!((550..850).contains(&progress), "{progress} of 1000");
        assert_eq!(seen.len(), 9, "every kind of change happens");
        assert!(open.len() <= fleets.len());
    }

    #[test]
    fn no_fleets_no_change() {
        assert_eq!(Life::new(0).next(&[]), None);
    }
}
