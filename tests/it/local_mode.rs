//! `drs-cache local` driven as a user drives it: started as a process, read
//! over HTTP, watched while its simulated fleet changes, restarted, and its
//! status page loaded in a headless browser.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{
    browser,
    local::{Answer, Local, cli, every_endpoint},
    moto,
};

/// Keys of the demo fleet: 3 accounts × 2 regions × 6 per-account types,
/// plus instance types in each region.
const DEMO_KEYS: usize = 3 * 2 * 9 + 2;

#[test]
fn every_data_type_is_served_within_thirty_seconds_of_start() {
    let dir = tempfile::tempdir().unwrap();
    let local = Local::start(dir.path(), &[]);
    let deadline = local.started + Duration::from_secs(30);
    for path in every_endpoint() {
        loop {
            let answer = local.get(&path);
            if answer.status == 200 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{path} still {} 30 s after start: {}",
                answer.status,
                answer.body
            );
            // Polling interval of the check.
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let served_after = local.started.elapsed();
    assert!(local.printed().join("\n").contains("curl -s '"));
    // The start-up refresh reports its end within the same 30 s.
    local.wait_printed("start-up refresh done", deadline - Instant::now());
    let status = local.status();
    assert_eq!(status["totals"]["keys"], DEMO_KEYS, "{status:#}");
    assert_eq!(status["totals"]["missing"], 0, "{status:#}");
    eprintln!("all ten data types served {served_after:?} after start");
}

#[test]
fn a_simulated_stall_refreshes_its_keys_and_the_change_is_served_within_five_seconds() {
    let dir = tempfile::tempdir().unwrap();
    // A change of the fleet every 250 ms.
    let local = Local::start(dir.path(), &["--change-every", "1", "--time-scale", "4"]);
    let stall = |s: &Value| -> Option<Value> {
        s["events"]["recent"]
            .as_array()?
            .iter()
            .find(|e| e["detailType"] == "DRS Source Server Data Replication Stalled Change")
            .cloned()
    };
    let status = local.wait_status(Duration::from_secs(120), |s| stall(s).is_some());
    let event = stall(&status).unwrap();
    let (account, region) = (
        event["account"].as_str().unwrap(),
        event["region"].as_str().unwrap(),
    );
    // Exactly the DRS keys of the event's account and region.
    let mut keys: Vec<&str> = event["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            format!("drs-quotas#{region}#{account}"),
            format!("drs-source-servers#{region}#{account}"),
        ],
        "{event:#}"
    );
    let to_cache = event["toCacheMs"]
        .as_u64()
        .expect("the change reached the cache");
    assert!(to_cache < 5_000, "{event:#}");
    // The stalled server is served as stalled, unless a later change of the
    // same fleet recovered it already.
    let server = event["summary"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let answer = local.get(&format!(
        "/drs/source-servers?region={region}&accountId={account}"
    ));
    assert_eq!(answer.status, 200);
    let body: Value = serde_json::from_str(&answer.body).unwrap();
    let served = body["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["sourceServerID"] == server.as_str())
        .unwrap_or_else(|| panic!("{server} not served"));
    let recovered_since = local.status()["events"]["recent"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| {
            e["detailType"] == event["detailType"]
                && e["summary"].as_str().unwrap_or("").contains(&server)
                && e["summary"].as_str().unwrap_or("").contains("recover")
        });
    if !recovered_since {
        assert_eq!(served["replicationState"], "STALLED", "{served:#}");
    }
    let lag = &local.status()["events"]["eventToCache"];
    assert!(lag["p99Ms"].as_u64().unwrap() < 5_000, "{lag}");
    eprintln!("event to cache: {lag}");
    // The refresh's change feed names the stalled server's transition, in the
    // status output as EventBridge would carry it in AWS.
    let transitions = local.status()["changes"]["recent"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["detailType"] == "Replication States Changed"
                && c["key"] == format!("drs-source-servers#{region}#{account}").as_str()
        })
        .flat_map(|c| {
            c["detail"]["transitions"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .collect::<Vec<_>>();
    assert!(
        transitions
            .iter()
            .any(|t| t["sourceServerID"] == server.as_str() && t["to"] == "STALLED"),
        "{transitions:#?}"
    );
}

#[test]
fn a_restart_serves_the_stored_data_at_once_marked_stale_where_due() {
    let dir = tempfile::tempdir().unwrap();
    // At 600× a source-server listing is fresh for one second.
    let first = Local::start(
        dir.path(),
        &["--time-scale", "600", "--change-every", "3600"],
    );
    // Every key cached (each fresh for a second only, so not all at once).
    first.wait_status(Duration::from_secs(30), |s| {
        s["totals"]["keys"] == DEMO_KEYS && s["totals"]["missing"] == 0
    });
    let path = "/drs/source-servers?region=us-east-1&accountId=333333333333";
    let before = first.get(path);
    assert_eq!(before.status, 200);
    first.stop();
    // Stopped, nothing refreshes it: wait until the store has it past its
    // freshness (a second at this scale).
    let key = "drs-source-servers#us-east-1#333333333333";
    let d = dir.path().to_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, out, _) = cli(&["status", "--data-dir", d, "--output", "json"], &[]);
        let report: Value = serde_json::from_str(&out).unwrap();
        let state = report["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["key"] == key)
            .map(|k| k["state"].clone());
        if state == Some(Value::from("stale")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{key} never went stale: {state:?}"
        );
        // Polling interval of the check.
        std::thread::sleep(Duration::from_millis(200));
    }

    // Upstream now answers after a minute: whatever is served at restart
    // comes from the store.
    let fleet = dir.path().join("slow-fleet.json");
    let mut config: Value = serde_json::from_str(drs_cache::config::DEMO_FLEET).unwrap();
    config["faults"] = serde_json::json!({"latency_ms": 60000});
    std::fs::write(&fleet, config.to_string()).unwrap();
    let restarted = Local::start(
        dir.path(),
        &[
            "--time-scale",
            "600",
            "--change-every",
            "3600",
            "--fleet",
            fleet.to_str().unwrap(),
        ],
    );
    let answer = restarted.get(path);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.header("etag"), before.header("etag"));
    assert_eq!(answer.header("x-cache-status"), Some("stale"));
    assert!(restarted.started.elapsed() < Duration::from_secs(10));
    // Stopping never waits for the refresh upstream is holding up.
    let stopping = Instant::now();
    restarted.stop();
    assert!(
        stopping.elapsed() < Duration::from_secs(10),
        "{:?}",
        stopping.elapsed()
    );
}

#[test]
fn the_status_page_lists_every_key_in_a_headless_browser() {
    let dir = tempfile::tempdir().unwrap();
    let local = Local::start(dir.path(), &["--change-every", "3600"]);
    local.wait_status(Duration::from_secs(30), |s| {
        s["totals"]["fresh"] == DEMO_KEYS
    });
    let dom = browser::dump_dom(&format!("{}/", local.url), Duration::from_secs(3))
        .unwrap_or_else(|e| panic!("{e}"));
    let rows = dom.matches("class=\"key-row\"").count();
    assert_eq!(rows, DEMO_KEYS, "{dom}");
    for key in [
        "drs-source-servers#us-east-1#111111111111",
        "ec2-instance-types#us-west-2#global",
    ] {
        assert!(dom.contains(&format!("data-key=\"{key}\"")), "{key}: {dom}");
    }
    assert!(dom.contains("data-state=\"fresh\""), "{dom}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_source_aws_the_same_loop_reads_the_caller_s_account_into_a_table() {
    // The caller's account: EC2, IAM and STS on moto, DRS at a simulator
    // (moto has none), the cache a table on moto.
    let endpoint = moto::endpoint();
    let sim = drs_sim::Simulator::start(
        "127.0.0.1:0".parse().unwrap(),
        drs_sim::SimConfig {
            sts_endpoint: Some(endpoint.to_owned()),
            ..drs_sim::SimConfig::default()
        },
    )
    .await
    .unwrap();
    let drs = sim.endpoint();
    let table = moto::unique_name("local-aws");
    let env: Vec<(String, String)> = moto::process_env(
        endpoint,
        &[
            ("AWS_ENDPOINT_URL_DRS", drs.as_str()),
            ("DEPLOYMENT_ACCOUNT_ID", "123456789012"),
            // moto renders its whole instance-type catalogue per page: left out.
            (
                "DATA_TYPES",
                "drs-source-servers,drs-quotas,ec2-subnets,ec2-security-groups",
            ),
        ],
    )
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let dir = tempfile::tempdir().unwrap();
    let dir_path = dir.path().to_owned();
    // Processes and blocking HTTP, off the runtime the simulator runs on.
    let status = tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let (code, _, err) = cli(&["create-table", "--table", &table], &env);
        assert_eq!(code, 0, "{err}");
        let local = Local::start_with(
            &dir_path,
            &["--source", "aws", "--store", "dynamodb", "--table", &table],
            &env,
        );
        let status = local.wait_status(Duration::from_secs(60), |s| {
            s["totals"]["keys"] == 4 && s["totals"]["fresh"] == 4
        });
        let subnets = local.get("/ec2/subnets?region=us-east-1");
        let servers = local.get("/drs/source-servers?region=us-east-1");
        (status, subnets, servers, local.printed())
    })
    .await
    .unwrap();
    let (status, subnets, servers, printed) = status;
    assert_eq!(subnets.status, 200, "{}", subnets.body);
    let subnets: Value = serde_json::from_str(&subnets.body).unwrap();
    assert!(
        subnets["count"].as_u64().unwrap() > 0,
        "moto's default subnets: {subnets}"
    );
    assert_eq!(servers.status, 200, "{}", servers.body);
    let servers: Value = serde_json::from_str(&servers.body).unwrap();
    assert_eq!(
        servers["serverCount"], 50,
        "the simulator's fleet: {servers}"
    );
    // No simulator of its own, so no living fleet.
    assert_eq!(status["events"]["handled"], 0, "{status:#}");
    assert!(
        !printed.join("\n").contains("fleet simulator"),
        "{printed:?}"
    );
}

#[test]
fn source_servers_are_served_as_full_records_and_filtered_by_what_a_wave_is_picked_by() {
    let dir = tempfile::tempdir().unwrap();
    let local = Local::start(dir.path(), &["--change-every", "3600"]);
    local.wait_status(Duration::from_secs(30), |s| {
        s["totals"]["fresh"] == DEMO_KEYS
    });
    let base = "/drs/source-servers?region=us-east-1&accountId=333333333333";
    let read = |query: &str| -> Vec<Value> {
        let answer = local.get(&format!("{base}{query}"));
        assert_eq!(answer.status, 200, "{query}: {}", answer.body);
        let body: Value = serde_json::from_str(&answer.body).unwrap();
        let servers = body["servers"].as_array().unwrap().clone();
        assert_eq!(body["serverCount"], servers.len(), "{query}");
        servers
    };
    let all = read("");
    assert_eq!(all.len(), 400);
    // What recovery planning needs, from the simulator's DescribeSourceServers.
    for server in &all {
        assert_eq!(server["accountID"], "333333333333", "{server}");
        for field in ["stagingAccountID", "isExtended", "replicatedStorageBytes"] {
            assert!(!server[field].is_null(), "{field}: {server}");
        }
        assert!(!server["disks"].as_array().unwrap().is_empty(), "{server}");
        assert!(
            !server["networkInterfaces"].as_array().unwrap().is_empty(),
            "{server}"
        );
        assert!(
            server["hardware"]["ramBytes"].as_u64().unwrap() > 0,
            "{server}"
        );
    }
    // Each filter keeps exactly the records it names.
    let count = |keep: &dyn Fn(&Value) -> bool| all.iter().filter(|s| keep(s)).count();
    let stalled_or_paused = read("&replicationState=STALLED&replicationState=PAUSED");
    assert_eq!(
        stalled_or_paused.len(),
        count(&|s| s["replicationState"] == "STALLED" || s["replicationState"] == "PAUSED")
    );
    let big = read("&minCores=8&minRamGiB=32");
    assert_eq!(
        big.len(),
        count(&|s| s["hardware"]["totalCores"].as_u64().unwrap() >= 8
            && s["hardware"]["ramGiB"].as_f64().unwrap() >= 32.0)
    );
    let first = &all[0];
    let staging = first["stagingAccountID"].as_str().unwrap();
    assert_eq!(
        read(&format!("&stagingAccountId={staging}")).len(),
        count(&|s| s["stagingAccountID"] == staging)
    );
    let (tag_key, tag_value) = first["tags"].as_object().unwrap().iter().next().unwrap();
    let tag_value = tag_value.as_str().unwrap();
    let tagged = read(&format!("&tag={tag_key}={tag_value}"));
    assert_eq!(tagged.len(), count(&|s| s["tags"][tag_key] == tag_value));
    assert!(!tagged.is_empty());
    let hostname = first["hostname"].as_str().unwrap();
    let prefix = &hostname[..hostname.len().min(4)];
    let by_host = read(&format!("&hostname={prefix}"));
    assert!(
        by_host
            .iter()
            .any(|s| s["sourceServerID"] == first["sourceServerID"])
    );
    assert!(by_host.iter().all(|s| {
        s["hostname"]
            .as_str()
            .unwrap()
            .to_ascii_lowercase()
            .starts_with(&prefix.to_ascii_lowercase())
    }));
    // A bad value is a 400 naming the parameter.
    let bad = local.get(&format!("{base}&minCores=many"));
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains("minCores"), "{}", bad.body);
}

#[test]
fn an_inventory_read_merges_the_snapshots_of_several_accounts_and_regions() {
    let dir = tempfile::tempdir().unwrap();
    let local = Local::start(dir.path(), &["--change-every", "3600"]);
    local.wait_status(Duration::from_secs(30), |s| {
        s["totals"]["fresh"] == DEMO_KEYS
    });
    let inventory = |query: &str| -> (Answer, Value) {
        let answer = local.get(&format!("/drs/inventory?{query}"));
        let body = serde_json::from_str(&answer.body).unwrap();
        (answer, body)
    };
    let (answer, all) =
        inventory("regions=us-east-1,us-west-2&accountIds=111111111111,222222222222");
    assert_eq!(answer.status, 200, "{all}");
    // 320 + 180 + 250 + 120 servers in the demo fleet's four snapshots.
    assert_eq!(all["serverCount"], 870, "{}", all["targets"]);
    assert_eq!(all["complete"], true);
    assert_eq!(answer.header("x-cache-status"), Some("fresh"));
    let targets = all["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 4);
    assert!(targets.iter().all(|t| t["state"] == "fresh"), "{targets:?}");
    let servers = all["servers"].as_array().unwrap();
    assert!(
        servers
            .iter()
            .all(|s| s["region"].is_string() && s["accountID"].is_string())
    );
    // Filters apply to every snapshot; a target the deployment does not keep
    // is reported, not fatal.
    let (answer, stalled) = inventory(
        "regions=us-east-1&accountIds=111111111111,444444444444&replicationState=STALLED",
    );
    assert_eq!(answer.status, 200);
    assert_eq!(stalled["complete"], false);
    assert_eq!(answer.header("x-cache-status"), Some("stale"));
    let states: Vec<&str> = stalled["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["fresh", "not_configured"]);
    assert!(
        stalled["servers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["replicationState"] == "STALLED")
    );
    // Bad input is a 400 naming the parameter; the bound is documented.
    let (answer, bad) = inventory("regions=us-east-1,atlantis-1");
    assert_eq!(answer.status, 400);
    assert_eq!(bad["details"]["field"], "regions", "{bad}");
}

#[test]
fn the_local_server_refuses_other_origins_and_hosts_before_reading_a_body() {
    let dir = tempfile::tempdir().unwrap();
    let local = Local::start(dir.path(), &["--change-every", "3600"]);
    let host = local.url.trim_start_matches("http://").to_owned();
    let own_origin = local.url.clone();
    let ask = |method: &str, path: &str, headers: &[(&str, &str)]| {
        crate::support::local::http_with(&local.url, method, path, headers, b"{}").status
    };
    // A page of another site posting to the local routes, or reading them
    // through a rebound DNS name, is refused.
    assert_eq!(
        ask(
            "POST",
            "/_local/import",
            &[("Host", &host), ("Origin", "http://evil.example")]
        ),
        403
    );
    assert_eq!(
        ask(
            "POST",
            "/_local/refresh?due",
            &[("Host", &host), ("Origin", "null")]
        ),
        403
    );
    assert_eq!(
        ask("GET", "/_local/export", &[("Host", "evil.example:8080")]),
        403
    );
    // This machine's own requests, and the status page's same-origin ones, are not.
    assert_eq!(ask("GET", "/_local/status", &[("Host", &host)]), 200);
    assert_eq!(
        ask(
            "GET",
            "/_local/status",
            &[("Host", &host), ("Origin", &own_origin)]
        ),
        200
    );
    assert_eq!(ask("GET", "/health", &[("Host", "localhost:8080")]), 200);
}

/// The fleet capacity, summed by the scheduled ticks from entry metadata,
/// agrees with what the quota, recovery-instance and job reads of each
/// account and region serve.
#[test]
fn the_fleet_capacity_agrees_with_each_account_region_s_own_reads() {
    let dir = tempfile::tempdir().unwrap();
    let local = Local::start_with(
        dir.path(),
        &["--change-every", "3600"],
        &[("SCHEDULE_INTERVAL_SECONDS", "1")],
    );
    local.wait_status(Duration::from_secs(30), |s| {
        s["totals"]["fresh"] == DEMO_KEYS
    });
    // The next tick after every input is cached sums them all.
    let deadline = Instant::now() + Duration::from_secs(10);
    let capacity = loop {
        let answer = local.get("/drs/capacity");
        if answer.status == 200 {
            let doc: Value = serde_json::from_str(&answer.body).unwrap();
            if doc["fleet"]["incompleteRows"] == 0 {
                assert!(answer.header("age").is_some());
                assert_eq!(answer.header("x-cache-status"), Some("fresh"));
                break doc;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{}: {}",
            answer.status,
            answer.body
        );
        // Polling interval of the check.
        std::thread::sleep(Duration::from_millis(100));
    };
    let rows = capacity["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 6, "3 accounts × 2 regions");
    let read = |path: &str, row: &Value| -> Value {
        let q = format!(
            "region={}&accountId={}",
            row["region"].as_str().unwrap(),
            row["accountId"].as_str().unwrap()
        );
        let answer = local.get(&format!("{path}?{q}"));
        assert_eq!(answer.status, 200, "{path}?{q}: {}", answer.body);
        serde_json::from_str(&answer.body).unwrap()
    };
    let mut replicating = 0;
    for row in rows {
        let quotas = read("/drs/quotas", row);
        assert_eq!(row["replicatingServers"], quotas["replicatingServers"]);
        assert_eq!(row["sourceServers"], quotas["totalSourceServers"]);
        assert_eq!(row["extendedServers"], quotas["extendedServers"]);
        let instances = read("/drs/recovery-instances", row);
        let list = instances["recoveryInstances"].as_array().unwrap();
        assert_eq!(row["recoveryInstances"], list.len());
        let drills = list.iter().filter(|i| i["isDrill"] == true).count();
        assert_eq!(row["drillInstances"], drills);
        let jobs = read("/drs/jobs", row);
        assert_eq!(row["activeJobs"], jobs["activeJobs"]);
        assert_eq!(row["serversInActiveJobs"], jobs["serversInActiveJobs"]);
        replicating += quotas["replicatingServers"].as_u64().unwrap();
    }
    assert_eq!(capacity["fleet"]["replicatingServers"], replicating);
    // One account, and one account in one region.
    let one: Value =
        serde_json::from_str(&local.get("/drs/capacity?accountId=111111111111").body).unwrap();
    assert_eq!(one["rowCount"], 2);
    assert_eq!(one["accounts"].as_array().unwrap().len(), 1);
    let cell = local.get("/drs/capacity?accountId=111111111111&region=us-west-2");
    assert_eq!(cell.status, 200);
    let cell: Value = serde_json::from_str(&cell.body).unwrap();
    assert_eq!(cell["rowCount"], 1);
    assert_eq!(cell["rows"][0]["region"], "us-west-2");
    let bad = local.get("/drs/capacity?region=us-west-2&colour=red");
    assert_eq!(bad.status, 400);
}

/// The local mode as one of two deployments (`DEPLOYMENT_REGION`): it
/// refreshes its own region of the demo fleet only, and answers for the other
/// region's keys, which no one here refreshes, naming their owner and asking
/// no refresh.
#[test]
fn as_one_regions_deployment_the_local_mode_refreshes_only_that_region() {
    let dir = tempfile::tempdir().unwrap();
    let local = Local::start_with(dir.path(), &[], &[("DEPLOYMENT_REGION", "us-west-2")]);
    local.wait_printed("start-up refresh done", Duration::from_secs(60));
    let own = local.get("/ec2/subnets?region=us-west-2&accountId=111111111111");
    assert_eq!(own.status, 200, "{}", own.body);
    let other = local.get("/ec2/subnets?region=us-east-1&accountId=111111111111");
    assert_eq!(other.status, 503, "{}", other.body);
    let body: Value = serde_json::from_str(&other.body).unwrap();
    assert_eq!(body["error"], "NOT_CACHED", "{body}");
    assert_eq!(body["details"]["ownerRegion"], "us-east-1", "{body}");
    assert_eq!(body["details"]["refreshRequested"], false, "{body}");
    let status = local.status();
    assert_eq!(status["totals"]["keys"], DEMO_KEYS / 2, "{status:#}");
    local.stop();
}

/// The `lastAttemptAt` of `key` in a status report.
fn last_attempt(status: &Value, key: &str) -> Option<String> {
    status["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key"] == key)
        .and_then(|k| k["lastAttemptAt"].as_str().map(str::to_owned))
}

/// A regional outage on one machine: the us-east-1 deployment fills the data
/// directory (standing in for the survivor's replica of the global table) and
/// stops; the us-west-2 deployment started on it serves us-east-1's data,
/// stale with its age and `OwnerUnavailable` once past freshness, and never
/// refreshes it while its own keys are refreshed; once `REGION_OWNERS` moves
/// us-east-1 to it, it refreshes us-east-1 too.
#[test]
fn with_its_owner_region_down_its_data_is_served_stale_and_refreshed_once_ownership_moves() {
    let dir = tempfile::tempdir().unwrap();
    // At 600× a source-server listing is fresh for a fifth of a second.
    let args = ["--time-scale", "600", "--change-every", "3600"];
    let east_key = "drs-source-servers#us-east-1#333333333333";
    let west_key = "drs-source-servers#us-west-2#333333333333";
    let path = "/drs/source-servers?region=us-east-1&accountId=333333333333";
    let region = |name: &'static str| [("REFRESH_AHEAD", "always"), ("DEPLOYMENT_REGION", name)];

    let east = Local::start_with(dir.path(), &args, &region("us-east-1"));
    let filled = east.wait_status(Duration::from_secs(30), |s| {
        s["totals"]["keys"] == DEMO_KEYS / 2 && s["totals"]["missing"] == 0
    });
    assert!(last_attempt(&filled, east_key).is_some(), "{filled:#}");
    let served_by_east = east.get(path);
    assert_eq!(served_by_east.status, 200, "{}", served_by_east.body);
    east.stop();

    let west = Local::start_with(dir.path(), &args, &region("us-west-2"));
    west.wait_printed("start-up refresh done", Duration::from_secs(60));
    let east_attempt = last_attempt(&west.status(), east_key);
    let deadline = Instant::now() + Duration::from_secs(30);
    let stale = loop {
        let answer = west.get(path);
        assert_eq!(answer.status, 200, "{}", answer.body);
        if answer.header("x-refresh-error") == Some("OwnerUnavailable") {
            break answer;
        }
        assert!(
            Instant::now() < deadline,
            "never marked: {:?}",
            answer.headers
        );
        // Polling interval of the check.
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(stale.header("x-cache-status"), Some("stale"));
    assert_eq!(stale.header("x-owner-region"), Some("us-east-1"));
    assert!(
        stale
            .header("age")
            .is_some_and(|a| a.parse::<u64>().is_ok())
    );
    assert_eq!(
        stale.header("etag"),
        served_by_east.header("etag"),
        "the last data east wrote"
    );
    // West keeps refreshing its own keys (two more attempts of one of them)
    // and, all the while, never east's.
    let mut seen = last_attempt(&west.status(), west_key);
    for _ in 0..2 {
        let previous = seen.clone();
        let status = west.wait_status(Duration::from_secs(30), |s| {
            last_attempt(s, west_key) != previous
        });
        seen = last_attempt(&status, west_key);
    }
    let status = west.status();
    assert_eq!(last_attempt(&status, east_key), east_attempt, "{status:#}");
    west.stop();

    // Ownership moves: the survivor owns us-east-1 as well, and refreshes it.
    let moved = [
        ("REFRESH_AHEAD", "always"),
        ("DEPLOYMENT_REGION", "us-west-2"),
        ("REGION_OWNERS", "us-east-1=us-west-2"),
    ];
    let survivor = Local::start_with(dir.path(), &args, &moved);
    let status = survivor.wait_status(Duration::from_secs(30), |s| {
        last_attempt(s, east_key) != east_attempt
    });
    let refreshed = status["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key"] == east_key)
        .unwrap();
    assert_eq!(refreshed["lastOutcome"], "ok", "{refreshed:#}");
    let answer = survivor.get(path);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_ne!(answer.header("x-refresh-error"), Some("OwnerUnavailable"));
    survivor.stop();
}
