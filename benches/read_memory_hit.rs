//! The reader's hot path: a memory-tier hit of a ~130 KB `ec2-instance-types`
//! body, from a parsed `ApiRequest` to the `http::Response<Bytes>` that
//! `Router::handle` returns, EMF metric line formatting included.
//!
//! Seven cases on one warmed router:
//! - `unfiltered`: the whole snapshot body (target p50 ≤ 20 µs);
//! - `filtered_instance_family_m5`: `instanceFamily=m5`, the cached view;
//! - `not_modified`: `If-None-Match` with the current ETag, answered 304;
//! - `compressed_br`, `compressed_gzip`: the unfiltered read with
//!   `Accept-Encoding: br` / `gzip`, the variant compressed once per version
//!   and served from beside the snapshot (no compression in the timed loop);
//! - `paged_limit_100`: `limit=100`, the cached view of the first page;
//! - `paged_next_page`: `limit=100` with the first page's `nextToken`, the
//!   cached view of the second page;
//! - `unfiltered_demand_noted`: `unfiltered` on a router that notes reads for
//!   demand-aware refresh (`REFRESH_AHEAD=demand`): the key was noted within
//!   its interval, so a read costs one lookup more and writes nothing.
//!
//! Run with `cargo bench --bench read_memory_hit`.

mod common;

use common::cache_tier;
use std::{
    hint::black_box,
    io::Read,
    sync::Arc,
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use drs_cache::{
    adapters::{embedded::EmbeddedStore, local_queue::LocalRefreshQueue},
    app,
    domain::{
        CacheEntry, CacheKey, DataType, DemandPolicy, Region, SystemClock, Timestamp, TtlPolicy,
        Version,
    },
    ports::{CacheWrites, PutOutcome},
    read::{
        ApiRequest, ApiResponse, ReaderSettings, Router,
        metrics::{MetricsSink, ReadOutcome, emf_line},
    },
};
use http::{StatusCode, header};
use serde::Serialize;
use tokio::runtime::Runtime;

const REGION: &str = "us-east-1";
const PATH: &str = "/ec2/instance-types";
/// The body is grown to at least this many bytes (about 1,100 types).
const TARGET_BODY_BYTES: usize = 130 * 1024;

/// Formats the EMF line of every read, as the Lambda sink does, and drops it,
/// so that the formatting is part of the measured cost but no I/O is.
struct DiscardedEmf;

impl MetricsSink for DiscardedEmf {
    fn record(&self, outcome: &ReadOutcome) {
        black_box(emf_line(outcome, SystemTime::now()));
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InstanceType {
    instance_type: String,
    vcpus: u32,
    #[serde(rename = "memoryMiB")]
    memory_mib: u64,
    instance_family: String,
    network_performance: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InstanceTypes {
    instance_types: Vec<InstanceType>,
    count: usize,
}

/// Instance families in the order they are emitted, with GiB of memory per vCPU.
const FAMILIES: &[(&str, u64)] = &[
    // General purpose.
    ("m5", 4),
    ("m5a", 4),
    ("m5ad", 4),
    ("m5d", 4),
    ("m5dn", 4),
    ("m5n", 4),
    ("m5zn", 4),
    ("m6a", 4),
    ("m6g", 4),
    ("m6gd", 4),
    ("m6i", 4),
    ("m6id", 4),
    ("m6idn", 4),
    ("m6in", 4),
    ("m7a", 4),
    ("m7g", 4),
    ("m7gd", 4),
    ("m7i", 4),
    ("m7i-flex", 4),
    ("m8g", 4),
    ("t3", 4),
    ("t3a", 4),
    ("t4g", 4),
    // Compute optimized.
    ("c5", 2),
    ("c5a", 2),
    ("c5ad", 2),
    ("c5d", 2),
    ("c5n", 2),
    ("c6a", 2),
    ("c6g", 2),
    ("c6gd", 2),
    ("c6gn", 2),
    ("c6i", 2),
    ("c6id", 2),
    ("c6in", 2),
    ("c7a", 2),
    ("c7g", 2),
    ("c7gd", 2),
    ("c7gn", 2),
    ("c7i", 2),
    ("c7i-flex", 2),
    ("c8g", 2),
    // Memory optimized.
    ("r5", 8),
    ("r5a", 8),
    ("r5ad", 8),
    ("r5b", 8),
    ("r5d", 8),
    ("r5dn", 8),
    ("r5n", 8),
    ("r6a", 8),
    ("r6g", 8),
    ("r6gd", 8),
    ("r6i", 8),
    ("r6id", 8),
    ("r6idn", 8),
    ("r6in", 8),
    ("r7a", 8),
    ("r7g", 8),
    ("r7gd", 8),
    ("r7i", 8),
    ("r7iz", 8),
    ("r8g", 8),
    ("x2gd", 16),
    ("x2idn", 16),
    ("x2iedn", 32),
    ("x2iezn", 32),
    ("z1d", 8),
    // Storage optimized and accelerated.
    ("i3", 8),
    ("i3en", 8),
    ("i4g", 8),
    ("i4i", 8),
    ("im4gn", 4),
    ("is4gen", 6),
    ("d3", 8),
    ("d3en", 4),
    ("g4dn", 4),
    ("g5", 4),
    ("g6", 4),
    ("inf2", 4),
    ("p4d", 12),
    ("p5", 10),
    ("trn1", 4),
];

/// Sizes with their vCPUs; burstable families get the small ones too.
const SIZES: &[(&str, u32)] = &[
    ("large", 2),
    ("xlarge", 4),
    ("2xlarge", 8),
    ("4xlarge", 16),
    ("8xlarge", 32),
    ("12xlarge", 48),
    ("16xlarge", 64),
    ("24xlarge", 96),
    ("32xlarge", 128),
    ("48xlarge", 192),
    ("metal", 96),
];
const BURSTABLE_SIZES: &[(&str, u32, u64)] = &[
    ("nano", 2, 512),
    ("micro", 2, 1024),
    ("small", 2, 2048),
    ("medium", 2, 4096),
];

fn network(family: &str, vcpus: u32) -> &'static str {
    let enhanced = family.contains('n') && !family.starts_with("inf");
    match (vcpus, enhanced) {
        (0..=16, false) => "Up to 12.5 Gigabit",
        (0..=16, true) => "Up to 25 Gigabit",
        (17..=32, false) => "12.5 Gigabit",
        (17..=48, _) => "25 Gigabit",
        (49..=64, false) => "25 Gigabit",
        (49..=96, _) => "50 Gigabit",
        (_, false) => "50 Gigabit",
        (_, true) => "100 Gigabit",
    }
}

/// A deterministic `instanceTypes` document of at least `min_bytes`, as the
/// refresher stores it: realistic families and sizes, in a stable order.
fn instance_types_body(min_bytes: usize) -> (Bytes, usize) {
    let mut types = Vec::new();
    let mut approx = 0usize;
    'families: for &(family, gib_per_vcpu) in FAMILIES.iter().cycle() {
        let burstable = family.starts_with('t');
        let small = BURSTABLE_SIZES
            .iter()
            .filter(|_| burstable)
            .map(|&(size, vcpus, mib)| (size, vcpus, mib));
        let large = SIZES
            .iter()
            .filter(|&&(size, vcpus)| !(burstable && (vcpus > 8 || size == "metal")))
            .map(|&(size, vcpus)| (size, vcpus, u64::from(vcpus) * gib_per_vcpu * 1024));
        for (size, vcpus, memory_mib) in small.chain(large) {
            let t = InstanceType {
                instance_type: format!("{family}.{size}"),
                vcpus,
                memory_mib,
                instance_family: family.to_owned(),
                network_performance: network(family, vcpus),
            };
            approx += serde_json::to_vec(&t).map_or(0, |v| v.len() + 1);
            types.push(t);
            if approx >= min_bytes {
                break 'families;
            }
        }
    }
    let count = types.len();
    let doc = InstanceTypes {
        instance_types: types,
        count,
    };
    let body = serde_json::to_vec(&doc).expect("the document serializes");
    (Bytes::from(body), count)
}

/// A router over an embedded store holding one fresh `ec2-instance-types`
/// entry, warmed so that the next read is a memory hit.
struct Fixture {
    rt: Runtime,
    router: Router,
    /// The same store and settings, noting reads for demand-aware refresh.
    noted: Router,
    _noted_queue: drs_cache::adapters::local_queue::LocalRefreshReceiver,
    body_len: usize,
    type_count: usize,
    etag: String,
    // Kept alive: the store file and the refresh queue's receiving end.
    _dir: tempfile::TempDir,
    _queue: drs_cache::adapters::local_queue::LocalRefreshReceiver,
}

fn fixture() -> Fixture {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let store = EmbeddedStore::open(dir.path().join("bench.redb")).expect("embedded store");

    let (body, type_count) = instance_types_body(TARGET_BODY_BYTES);
    let body_len = body.len();
    let key = CacheKey::global(
        DataType::Ec2InstanceTypes,
        Region::parse(REGION).expect("region"),
    )
    .expect("instance types are keyed globally");
    let policy = TtlPolicy {
        freshness: Duration::from_secs(24 * 60 * 60),
        stale_window: TtlPolicy::DEFAULT_STALE_WINDOW,
    };
    let entry = CacheEntry::fetched(
        key,
        Version::at_fetch_start(&SystemClock),
        body,
        type_count as u64,
        Timestamp::now(),
        policy,
    );
    let put = rt.block_on(store.put(&entry)).expect("store put");
    assert_eq!(put, PutOutcome::Written);

    let (queue, receiver) = LocalRefreshQueue::new(16);
    let settings = ReaderSettings {
        memory_ttl: Duration::from_secs(60 * 60),
        ..ReaderSettings::default()
    };
    let store = Arc::new(store);
    let router = app::reader_router(
        store.clone(),
        Arc::new(queue),
        settings.clone(),
        Arc::new(DiscardedEmf),
        None,
    );
    let (queue, noted_receiver) = LocalRefreshQueue::new(16);
    let noted = app::reader_router(
        store.clone(),
        Arc::new(queue),
        ReaderSettings {
            demand: Some(DemandPolicy::default()),
            ..settings
        },
        Arc::new(DiscardedEmf),
        Some(store),
    );

    let first = rt.block_on(router.handle(&unfiltered()));
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(cache_tier(&first), "store", "the first read is a store hit");
    let etag = first
        .headers()
        .get(header::ETAG)
        .and_then(|v| v.to_str().ok())
        .expect("an ETag")
        .to_owned();

    Fixture {
        rt,
        router,
        noted,
        _noted_queue: noted_receiver,
        body_len,
        type_count,
        etag,
        _dir: dir,
        _queue: receiver,
    }
}

fn unfiltered() -> ApiRequest {
    ApiRequest::get(PATH, &[("region", REGION)])
}

fn filtered() -> ApiRequest {
    ApiRequest::get(PATH, &[("region", REGION), ("instanceFamily", "m5")])
}

fn conditional(etag: &str) -> ApiRequest {
    ApiRequest {
        if_none_match: Some(etag.to_owned()),
        ..unfiltered()
    }
}

fn encoded(coding: &str) -> ApiRequest {
    ApiRequest {
        accept_encoding: Some(coding.to_owned()),
        ..unfiltered()
    }
}

const PAGE: usize = 100;

fn paged(next_token: Option<&str>) -> ApiRequest {
    let limit = PAGE.to_string();
    let mut query = vec![("region", REGION), ("limit", limit.as_str())];
    query.extend(next_token.map(|token| ("nextToken", token)));
    ApiRequest::get(PATH, &query)
}

/// The body of `response` decoded from its `Content-Encoding`.
fn decoded(response: &ApiResponse) -> Vec<u8> {
    let body: &[u8] = response.body();
    let mut out = Vec::new();
    match response
        .headers()
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
    {
        None => out.extend_from_slice(body),
        Some("br") => {
            brotli::Decompressor::new(body, 4096)
                .read_to_end(&mut out)
                .expect("a brotli body");
        }
        Some("gzip") => {
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut out)
                .expect("a gzip body");
        }
        Some(other) => panic!("unexpected content-encoding {other}"),
    }
    out
}

/// Checks that `coding` is served as a memory hit of one compressed variant,
/// made once, and returns its size.
fn check_compressed(handle: impl Fn(&ApiRequest) -> ApiResponse, coding: &str) -> usize {
    let first = handle(&encoded(coding));
    assert_eq!(first.status(), StatusCode::OK, "{coding}");
    assert_eq!(cache_tier(&first), "memory", "{coding}");
    assert_eq!(
        first
            .headers()
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok()),
        Some(coding),
    );
    // The same bytes on the next read: compressed once, not per request.
    let second = handle(&encoded(coding));
    assert_eq!(
        second.body().as_ptr(),
        first.body().as_ptr(),
        "{coding} is compressed again"
    );
    assert_eq!(
        decoded(&first),
        handle(&unfiltered()).body().as_ref(),
        "{coding} decodes to the identity body"
    );
    first.body().len()
}

/// The records of a page, and its `nextToken`.
fn page_of(response: &ApiResponse) -> (Vec<serde_json::Value>, Option<String>) {
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(cache_tier(response), "memory");
    let mut doc: serde_json::Value = serde_json::from_slice(response.body()).expect("a JSON page");
    let records = match doc["instanceTypes"].take() {
        serde_json::Value::Array(records) => records,
        other => panic!("instanceTypes is {other}"),
    };
    let next = doc["nextToken"].as_str().map(str::to_owned);
    (records, next)
}

fn read_memory_hit(c: &mut Criterion) {
    let f = fixture();
    let handle = |req: &ApiRequest| f.rt.block_on(f.router.handle(req));

    // Checked once, outside the timed loops: each case is the memory hit it
    // claims to be.
    let whole = handle(&unfiltered());
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(cache_tier(&whole), "memory");
    assert_eq!(whole.body().len(), f.body_len);
    assert!(
        (120 * 1024..=140 * 1024).contains(&whole.body().len()),
        "body is {} bytes, not about 130 KB",
        whole.body().len()
    );

    let m5 = handle(&filtered());
    assert_eq!(m5.status(), StatusCode::OK);
    assert_eq!(cache_tier(&m5), "memory");
    let view: serde_json::Value = serde_json::from_slice(m5.body()).expect("a JSON view");
    let kept = view["count"].as_u64().expect("a count");
    assert!(kept > 0 && kept < f.type_count as u64, "m5 kept {kept}");
    // The view is derived on the first filtered read; the benched ones reuse it.
    assert_eq!(handle(&filtered()).body(), m5.body());

    let not_modified = handle(&conditional(&f.etag));
    assert_eq!(not_modified.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(cache_tier(&not_modified), "memory");
    assert!(not_modified.body().is_empty());

    let br_len = check_compressed(handle, "br");
    let gzip_len = check_compressed(handle, "gzip");

    let first = handle(&paged(None));
    let (records, next_token) = page_of(&first);
    assert_eq!(records.len(), PAGE);
    let next_token = next_token.expect("a nextToken after the first page");
    // The page view is derived on the first paged read; the benched ones reuse it.
    assert_eq!(handle(&paged(None)).body(), first.body());

    let second = handle(&paged(Some(&next_token)));
    let (next_records, _) = page_of(&second);
    assert_eq!(next_records.len(), PAGE);
    assert_ne!(next_records[0], records[0], "the second page starts later");
    let whole_doc: serde_json::Value =
        serde_json::from_slice(whole.body()).expect("a JSON snapshot");
    assert_eq!(whole_doc["instanceTypes"][PAGE], next_records[0]);
    assert_eq!(handle(&paged(Some(&next_token))).body(), second.body());

    eprintln!(
        "read_memory_hit: body {} bytes, {} instance types, m5 view {} bytes ({kept} types)",
        f.body_len,
        f.type_count,
        m5.body().len(),
    );
    eprintln!(
        "read_memory_hit: identity {} bytes, br {br_len} bytes, gzip {gzip_len} bytes",
        f.body_len,
    );
    eprintln!(
        "read_memory_hit: page 1 {} bytes, page 2 {} bytes ({PAGE} types each)",
        first.body().len(),
        second.body().len(),
    );

    let mut group = c.benchmark_group("read_memory_hit");
    let req = unfiltered();
    group.bench_function("unfiltered", |b| b.iter(|| black_box(handle(&req))));

    let req = filtered();
    group.bench_function("filtered_instance_family_m5", |b| {
        b.iter(|| black_box(handle(&req)))
    });

    let req = conditional(&f.etag);
    group.bench_function("not_modified", |b| b.iter(|| black_box(handle(&req))));

    let req = encoded("br");
    group.bench_function("compressed_br", |b| b.iter(|| black_box(handle(&req))));

    let req = encoded("gzip");
    group.bench_function("compressed_gzip", |b| b.iter(|| black_box(handle(&req))));

    let req = paged(None);
    group.bench_function("paged_limit_100", |b| b.iter(|| black_box(handle(&req))));

    let req = paged(Some(&next_token));
    group.bench_function("paged_next_page", |b| b.iter(|| black_box(handle(&req))));

    let noted = |req: &ApiRequest| f.rt.block_on(f.noted.handle(req));
    let req = unfiltered();
    noted(&req);
    let recorder = f.noted.demand().expect("the noting router notes reads");
    assert_eq!(recorder.pending(), 1, "the first read is noted");
    assert_eq!(f.rt.block_on(recorder.flush()), 1);
    assert_eq!(cache_tier(&noted(&req)), "memory");
    assert_eq!(recorder.pending(), 0, "noted within its interval: no note");
    group.bench_function("unfiltered_demand_noted", |b| {
        b.iter(|| black_box(noted(&req)))
    });
    assert_eq!(
        recorder.pending(),
        0,
        "the timed reads wrote and queued nothing"
    );
    group.finish();
}

criterion_group!(benches, read_memory_hit);
criterion_main!(benches);
