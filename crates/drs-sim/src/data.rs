//! Generated data, kept while its inputs stay the same: one fleet and network per
//! (account, region), one set of profiles per account, one catalogue per region.
//! A page of a large fleet is then a slice of pre-rendered items.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::{Arc, Mutex, PoisonError},
};

use crate::{
    catalog::{self, InstanceType},
    config::{FleetParams, ServerSet, SourceNetworkSet},
    fleet::{self, Fleet},
    ids::{AccountId, Region},
    network::{self, Network},
    profiles::{self, Profile},
    source_networks::{self, SourceNetwork},
};

/// The latest value per key, with the inputs it was generated from.
#[derive(Debug)]
struct Memo<K, P, V> {
    entries: Mutex<HashMap<K, (P, Arc<V>)>>,
}

impl<K: Eq + Hash, P: PartialEq, V> Memo<K, P, V> {
    fn get_or(&self, key: K, inputs: P, make: impl FnOnce() -> V) -> Arc<V> {
        {
            let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((have, value)) = entries.get(&key)
                && *have == inputs
            {
                return value.clone();
            }
        }
        // Generated outside the lock; two concurrent misses may both generate.
        let value = Arc::new(make());
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.insert(key, (inputs, value.clone()));
        value
    }
}

impl<K, P, V> Default for Memo<K, P, V> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

/// What a fleet is generated from: the seed, its shape and live changes.
type FleetInputs = (u64, FleetParams, Vec<ServerSet>);
/// What the source networks are generated from: the seed and live changes.
type SourceNetworkInputs = (u64, Vec<SourceNetworkSet>);

/// Every generated dataset the simulator serves.
#[derive(Debug, Default)]
pub(crate) struct Datasets {
    fleets: Memo<(AccountId, Region), FleetInputs, Fleet>,
    networks: Memo<(AccountId, Region), (u64, FleetParams), Network>,
    profiles: Memo<AccountId, (u64, u32), Vec<Profile>>,
    catalogs: Memo<Region, (), Vec<InstanceType>>,
    source_networks: Memo<(AccountId, Region), SourceNetworkInputs, Vec<SourceNetwork>>,
}

impl Datasets {
    pub(crate) fn fleet(
        &self,
        seed: u64,
        account: &AccountId,
        region: &Region,
        params: FleetParams,
        set: &[ServerSet],
    ) -> Arc<Fleet> {
        // Only the server count, generation and live changes shape a fleet.
        let params = FleetParams {
            subnets: 0,
            security_groups: 0,
            ..params
        };
        self.fleets.get_or(
            (*account, region.clone()),
            (seed, params, set.to_vec()),
            || fleet::generate(seed, account, region, params, set),
        )
    }

    pub(crate) fn network(
        &self,
        seed: u64,
        account: &AccountId,
        region: &Region,
        params: FleetParams,
    ) -> Arc<Network> {
        let params = FleetParams {
            servers: 0,
            ..params
        };
        self.networks
            .get_or((*account, region.clone()), (seed, params), || {
                network::generate(seed, account, region, params)
            })
    }

    pub(crate) fn profiles(&self, seed: u64, account: &AccountId, count: u32) -> Arc<Vec<Profile>> {
        self.profiles.get_or(*account, (seed, count), || {
            profiles::generate(seed, account, count)
        })
    }

    pub(crate) fn source_networks(
        &self,
        seed: u64,
        account: &AccountId,
        region: &Region,
        set: &[SourceNetworkSet],
    ) -> Arc<Vec<SourceNetwork>> {
        self.source_networks
            .get_or((*account, region.clone()), (seed, set.to_vec()), || {
                source_networks::generate(seed, account, region, set)
            })
    }

    pub(crate) fn catalog(&self, region: &Region) -> Arc<Vec<InstanceType>> {
        self.catalogs
            .get_or(region.clone(), (), || catalog::generate(region))
    }
}
