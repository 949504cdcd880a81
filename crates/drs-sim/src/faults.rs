//! Which fault, if any, answers a request. Transient faults come first (the next
//! N, then the seeded per-request rates), then the standing ones: a disabled
//! region, a denied account, an account where DRS is not initialised.

use crate::{
    config::Faults,
    ids::{AccountId, Region},
    rng::Seed,
    service::Service,
};

/// A fault that replaces a request's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    Throttle,
    ServerError,
    DisabledRegion,
    AccessDenied,
    NotInitialized,
}

/// The request numbered `seq` (in arrival order) from `account` in `region`.
pub(crate) struct Arrival<'a> {
    pub(crate) seed: u64,
    pub(crate) seq: u64,
    pub(crate) service: Service,
    pub(crate) account: &'a AccountId,
    pub(crate) region: &'a Region,
}

/// Decides the fault of one request, counting down `throttle_next` and
/// `server_error_next`.
pub(crate) fn decide(faults: &mut Faults, arrival: &Arrival<'_>) -> Option<Fault> {
    if faults.throttle_next > 0 {
        faults.throttle_next -= 1;
        return Some(Fault::Throttle);
    }
    if faults.server_error_next > 0 {
        faults.server_error_next -= 1;
        return Some(Fault::ServerError);
    }
    let roll = |what: &str| {
        Seed::new(arrival.seed)
            .with_str(what)
            .with(arrival.seq)
            .unit()
    };
    if faults.throttle_rate > 0.0 && roll("throttle") < faults.throttle_rate {
        return Some(Fault::Throttle);
    }
    if faults.server_error_rate > 0.0 && roll("server-error") < faults.server_error_rate {
        return Some(Fault::ServerError);
    }
    // IAM is global: opt-in regions do not apply to it.
    if arrival.service != Service::Iam && faults.disabled_regions.contains(arrival.region) {
        return Some(Fault::DisabledRegion);
    }
    if faults.access_denied.contains(arrival.account) {
        return Some(Fault::AccessDenied);
    }
    if arrival.service == Service::Drs
        && faults
            .not_initialized
            .iter()
            .any(|s| &s.region == arrival.region && s.account.matches(arrival.account))
    {
        return Some(Fault::NotInitialized);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AccountMatch, RegionalSelector};

    fn arrival<'a>(
        seq: u64,
        service: Service,
        account: &'a AccountId,
        region: &'a Region,
    ) -> Arrival<'a> {
        Arrival {
            seed: 1,
            seq,
            service,
            account,
            region,
        }
    }

    #[test]
    fn the_next_n_are_throttled_then_server_errors_then_nothing() {
        let account = AccountId::parse("111111111111").unwrap();
        let region = Region::parse("us-east-1").unwrap();
        let mut faults = Faults {
            throttle_next: 2,
            server_error_next: 1,
            ..Faults::default()
        };
        let seen: Vec<_> = (0..4)
            .map(|seq| decide(&mut faults, &arrival(seq, Service::Ec2, &account, &region)))
            .collect();
        assert_eq!(
            seen,
            [
                Some(Fault::Throttle),
                Some(Fault::Throttle),
                Some(Fault::ServerError),
                None
            ]
        );
    }

    #[test]
    fn rates_are_seeded_and_roughly_right() {
        let account = AccountId::parse("111111111111").unwrap();
        let region = Region::parse("us-east-1").unwrap();
        let mut faults = Faults {
            throttle_rate: 0.25,
            ..Faults::default()
        };
        let run = |faults: &mut Faults| {
            (0..4_000)
                .map(|seq| decide(faults, &arrival(seq, Service::Drs, &account, &region)).is_some())
                .collect::<Vec<_>>()
        };
        let a = run(&mut faults);
        let b = run(&mut faults);
        assert_eq!(a, b);
        let throttled = a.iter().filter(|t| **t).count();
        assert!((800..1_200).contains(&throttled), "{throttled}");
    }

    #[test]
    fn standing_faults_apply_to_the_right_services() {
        let account = AccountId::parse("111111111111").unwrap();
        let region = Region::parse("eu-south-2").unwrap();
        let mut faults = Faults {
            not_initialized: vec![RegionalSelector {
                account: AccountMatch::Any,
                region: region.clone(),
            }],
            ..Faults::default()
        };
        assert_eq!(
            decide(&mut faults, &arrival(0, Service::Drs, &account, &region)),
            Some(Fault::NotInitialized)
        );
        assert_eq!(
            decide(&mut faults, &arrival(0, Service::Ec2, &account, &region)),
            None
        );
        faults.disabled_regions.push(region.clone());
        assert_eq!(
            decide(&mut faults, &arrival(0, Service::Ec2, &account, &region)),
            Some(Fault::DisabledRegion)
        );
        assert_eq!(
            decide(&mut faults, &arrival(0, Service::Iam, &account, &region)),
            None
        );
        faults.access_denied.push(account);
        assert_eq!(
            decide(&mut faults, &arrival(0, Service::Iam, &account, &region)),
            Some(Fault::AccessDenied)
        );
    }
}
