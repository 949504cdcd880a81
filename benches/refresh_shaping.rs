//! The refresher's CPU work for one account with 4,000 DRS source servers, with
//! no network: converting the SDK's `SourceServer`s to domain records, building
//! and serializing the `drs-source-servers` and `drs-quotas` views, hashing
//! them into cache entries, and encoding the bodies for the store (zstd).
//! Target: ≤ 20 ms per iteration.
//!
//! Run with `cargo bench --bench refresh_shaping`.

use std::{collections::HashMap, hint::black_box, time::Duration};

use aws_sdk_drs::types::{
    Cpu, DataReplicationInfo, DataReplicationState, Disk, ExtensionStatus, IdentificationHints,
    LastLaunchResult, LifeCycle, NetworkInterface, Os, SourceProperties,
    SourceServer as SdkSourceServer, StagingArea,
};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use drs_cache::{
    domain::{
        AccountId, CacheEntry, CacheKey, DataType, EntryMeta, Region, SystemClock, Timestamp,
        TtlPolicy, Version, capacity::QuotaThresholds, inventory::SourceServer, payload,
    },
    refresh::views,
};

const SERVERS: usize = 4_000;
const STATES: [DataReplicationState; 8] = [
    DataReplicationState::Continuous,
    DataReplicationState::Continuous,
    DataReplicationState::Continuous,
    DataReplicationState::InitialSync,
    DataReplicationState::Backlog,
    DataReplicationState::Stalled,
    DataReplicationState::Paused,
    DataReplicationState::Disconnected,
];

/// A realistic server as DescribeSourceServers returns it.
fn sdk_server(i: usize) -> SdkSourceServer {
    let host = format!("app-{i:05}");
    let tags = HashMap::from([
        ("Name".to_owned(), host.clone()),
        ("Environment".to_owned(), "production".to_owned()),
        ("Application".to_owned(), format!("billing-{}", i % 40)),
        ("CostCenter".to_owned(), format!("cc-{}", i % 12)),
    ]);
    let disks = (0..1 + i % 3)
        .map(|d| {
            Disk::builder()
                .device_name(format!("/dev/xvd{}", char::from(b'a' + d as u8)))
                .bytes(100 * (1 << 30))
                .build()
        })
        .collect::<Vec<_>>();
    let extended = i.is_multiple_of(10);
    SdkSourceServer::builder()
        .source_server_id(format!("s-{i:017x}"))
        .arn(format!(
            "arn:aws:drs:us-east-1:111122223333:source-server/s-{i:017x}"
        ))
        .set_tags(Some(tags))
        .last_launch_result(LastLaunchResult::Succeeded)
        .data_replication_info(
            DataReplicationInfo::builder()
                .data_replication_state(STATES[i % STATES.len()].clone())
                .lag_duration("PT5S")
                .build(),
        )
        .life_cycle(
            LifeCycle::builder()
                .added_to_service_date_time("2026-01-05T10:00:00Z")
                .last_seen_by_service_date_time("2026-11-29T08:00:00Z")
                .build(),
        )
        .source_properties(
            SourceProperties::builder()
                .last_updated_date_time("2026-11-29T07:55:00Z")
                .recommended_instance_type("m5.xlarge")
                .identification_hints(
                    IdentificationHints::builder()
                        .hostname(host.clone())
                        .fqdn(format!("{host}.prod.example.internal"))
                        .aws_instance_id(format!("i-{i:017x}"))
                        .build(),
                )
                .network_interfaces(
                    NetworkInterface::builder()
                        .mac_address("0a:1b:2c:3d:4e:5f")
                        .ips(format!(
                            "10.{}.{}.{}",
                            i / 65536 % 256,
                            i / 256 % 256,
                            i % 256
                        ))
                        .is_primary(true)
                        .build(),
                )
                .set_disks(Some(disks))
                .cpus(
                    Cpu::builder()
                        .cores(4 + (i % 8) as i64)
                        .model_name("Intel(R) Xeon(R) Platinum 8259CL")
                        .build(),
                )
                .ram_bytes(16 * (1 << 30))
                .os(Os::builder()
                    .full_string("Red Hat Enterprise Linux 9.2")
                    .build())
                .build(),
        )
        .staging_area(
            StagingArea::builder()
                .status(if extended {
                    ExtensionStatus::Extended
                } else {
                    ExtensionStatus::NotExtended
                })
                .build(),
        )
        .build()
}

/// What the refresher does with one fetched page set, up to the store call.
fn shape(servers: Vec<SdkSourceServer>) -> [(EntryMeta, payload::EncodedPayload); 2] {
    let account = AccountId::parse("111122223333").unwrap();
    let region = Region::parse("us-east-1").unwrap();
    let records: Vec<SourceServer> = servers
        .into_iter()
        .map(|s| SourceServer::try_from(s).unwrap())
        .collect();
    let policy = TtlPolicy {
        freshness: Duration::from_secs(120),
        stale_window: Duration::from_secs(86_400),
    };
    let version = Version::at_fetch_start(&SystemClock);
    let now = Timestamp::now();
    let servers_view = views::list(DataType::DrsSourceServers, &region, &records);
    let quota_view = views::quotas(&account, &region, &records, &QuotaThresholds::default());
    [
        (DataType::DrsSourceServers, servers_view),
        (DataType::DrsQuotas, quota_view),
    ]
    .map(|(data_type, view)| {
        let key = CacheKey::new(data_type, region.clone(), account);
        let entry = CacheEntry::fetched(key, version, view.body, view.items, now, policy);
        (entry.meta, payload::encode(&entry.body))
    })
}

fn bench(c: &mut Criterion) {
    let fleet: Vec<SdkSourceServer> = (0..SERVERS).map(sdk_server).collect();
    let body_bytes = {
        let records: Vec<SourceServer> = fleet
            .iter()
            .cloned()
            .map(|s| SourceServer::try_from(s).unwrap())
            .collect();
        views::list(
            DataType::DrsSourceServers,
            &Region::parse("us-east-1").unwrap(),
            &records,
        )
        .body
        .len()
    };
    eprintln!("drs-source-servers body: {SERVERS} servers, {body_bytes} bytes of JSON");
    let mut group = c.benchmark_group("refresh_shaping");
    group.sample_size(30);
    group.bench_function("source_servers_4000", |b| {
        b.iter_batched(
            || fleet.clone(),
            |servers| black_box(shape(servers)),
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
