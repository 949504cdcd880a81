//! The state of every configured key, read from the store's metadata: what
//! `drs-cache status` prints and the local status page shows.

use serde::Serialize;

use crate::{
    domain::{CacheKey, DataType, Demand, EntryMeta, EntryState, Freshness, Timestamp, TtlTable},
    ports::{self, CacheStorage, StoreError},
};

use super::activity::ActivityReport;

/// Entries listed per store page.
const LIST_PAGE: u32 = 1_000;

/// Where a key stands against its freshness.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum KeyState {
    /// Served as fresh.
    Fresh,
    /// Past its freshness, within its stale window: served, marked stale.
    Stale,
    /// Past its stale window: no longer served.
    Expired,
    /// Configured, never cached.
    Missing,
    /// Only failed attempts recorded: no body.
    NoData,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Nothing servable, or nothing servable soon: what `status` exits
    /// non-zero for.
    pub const fn is_unservable(self) -> bool {
        matches!(self, Self::Expired | Self::Missing | Self::NoData)
    }
}

/// One key as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyStatus {
    pub key: String,
    pub data_type: &'static str,
    pub region: String,
    pub account: Option<String>,
    pub state: KeyState,
    pub age_seconds: Option<u64>,
    pub freshness_seconds: u64,
    pub stale_window_seconds: u64,
    pub items: u64,
    pub fetched_at: Option<String>,
    pub last_attempt_at: Option<String>,
    /// `ok`, `failed`, or `never` for a key never refreshed.
    pub last_outcome: &'static str,
    pub error_kind: Option<&'static str>,
    /// Seconds since a reader last noted a read of the key; `None`: none
    /// recorded (or readers note none, with `REFRESH_AHEAD=always`).
    pub last_read_seconds_ago: Option<u64>,
    /// When the warm mark of the key's account ends, if it has one.
    pub warm_until: Option<String>,
}

impl KeyStatus {
    fn of(
        key: &CacheKey,
        meta: Option<&EntryMeta>,
        demand: &Demand,
        ttl: &TtlTable,
        now: Timestamp,
    ) -> Self {
        let policy = ttl.policy(key.data_type());
        let state = match meta {
            None => KeyState::Missing,
            Some(m) if m.state == EntryState::NoData => KeyState::NoData,
            Some(m) => match m.freshness(now) {
                Freshness::Fresh { .. } => KeyState::Fresh,
                Freshness::Stale { .. } => KeyState::Stale,
                Freshness::Expired => KeyState::Expired,
            },
        };
        let has_body = meta.filter(|m| m.state != EntryState::NoData);
        let attempt = meta.and_then(|m| m.last_attempt.as_ref());
        let failure = attempt.and_then(|a| a.failure.as_ref());
        Self {
            key: key.to_string(),
            data_type: key.data_type().as_str(),
            region: key.region().as_str().to_owned(),
            account: key.scope().account().map(|a| a.as_str().to_owned()),
            state,
            age_seconds: has_body.map(|m| m.age(now)),
            freshness_seconds: policy.freshness.as_secs(),
            stale_window_seconds: policy.stale_window.as_secs(),
            items: has_body.map_or(0, |m| m.item_count),
            fetched_at: has_body.map(|m| m.fetched_at.rfc3339()),
            last_attempt_at: attempt
                .map(|a| a.at)
                .or(has_body.map(|m| m.fetched_at))
                .map(Timestamp::rfc3339),
            last_outcome: match (meta, failure) {
                (None, _) => "never",
                (Some(_), Some(_)) => "failed",
                (Some(_), None) => "ok",
            },
            error_kind: failure.map(|f| f.kind.as_str()),
            last_read_seconds_ago: demand.reads.get(key).map(|at| now.secs_since(*at)),
            warm_until: key
                .scope()
                .account()
                .and_then(|a| demand.warm.get(&a))
                .map(|until| until.rfc3339()),
        }
    }

    pub fn failed(&self) -> bool {
        self.last_outcome == "failed"
    }
}

/// Keys by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    pub keys: u64,
    pub fresh: u64,
    pub stale: u64,
    pub expired: u64,
    pub missing: u64,
    pub no_data: u64,
}

impl Totals {
    fn add(&mut self, state: KeyState) {
        self.keys += 1;
        *match state {
            KeyState::Fresh => &mut self.fresh,
            KeyState::Stale => &mut self.stale,
            KeyState::Expired => &mut self.expired,
            KeyState::Missing => &mut self.missing,
            KeyState::NoData => &mut self.no_data,
        } += 1;
    }
}

/// Every configured key with its state, and (in the local mode) what the
/// process did recently: the JSON of `GET /_local/status` and `status --output
/// json`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    pub generated_at: String,
    pub time_scale: u32,
    pub totals: Totals,
    pub keys: Vec<KeyStatus>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub activity: Option<ActivityReport>,
}

impl StatusReport {
    /// The state of each of `configured` (and of any other stored key of their
    /// data types) at `now`, from `store`'s metadata and demand records.
    pub async fn read(
        store: &dyn CacheStorage,
        configured: impl IntoIterator<Item = CacheKey>,
        ttl: &TtlTable,
        now: Timestamp,
    ) -> Result<Self, StoreError> {
        let configured: Vec<CacheKey> = configured.into_iter().collect();
        let mut types: Vec<DataType> = configured.iter().map(CacheKey::data_type).collect();
        types.sort();
        types.dedup();
        let stored = ports::list_all(store, &types, LIST_PAGE).await?;
        let demand = store.demand(&types, now).await?;
        let mut keys: Vec<KeyStatus> = configured
            .iter()
            .map(|k| KeyStatus::of(k, stored.get(k), &demand, ttl, now))
            .collect();
        let mut others: Vec<&EntryMeta> = stored
            .values()
            .filter(|m| !configured.contains(&m.key))
            .collect();
        others.sort_by_key(|m| m.key.to_string());
        keys.extend(
            others
                .into_iter()
                .map(|m| KeyStatus::of(&m.key, Some(m), &demand, ttl, now)),
        );
        let mut totals = Totals::default();
        for key in &keys {
            totals.add(key.state);
        }
        Ok(Self {
            generated_at: now.rfc3339(),
            time_scale: 1,
            totals,
            keys,
            activity: None,
        })
    }
}
