//! The operator commands run as processes: against a running `drs-cache
//! local` (found through its data directory), against an embedded store no
//! process holds, and their errors for bad input.

use std::time::Duration;

use serde_json::Value;

use crate::support::{
    local::{Local, cli},
    moto,
};

const DEMO_KEYS: u64 = 56;

fn dir_arg(dir: &std::path::Path) -> String {
    dir.to_str().unwrap().to_owned()
}

#[test]
fn every_command_works_against_a_running_local_process() {
    let dir = tempfile::tempdir().unwrap();
    let local = Local::start(dir.path(), &["--change-every", "3600"]);
    local.wait_status(Duration::from_secs(30), |s| {
        s["totals"]["fresh"] == DEMO_KEYS
    });
    let d = dir_arg(dir.path());

    let (code, out, err) = cli(&["status", "--data-dir", &d], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("drs-source-servers") && out.contains("56 keys: 56 fresh"),
        "{out}"
    );
    let (code, out, _) = cli(
        &["status", "--data-dir", &d, "--output", "json", "--stale"],
        &[],
    );
    assert_eq!(code, 0);
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        report["keys"].as_array().unwrap().len(),
        0,
        "nothing is stale"
    );

    let (code, out, err) = cli(
        &[
            "get",
            "ec2-subnets",
            "--region",
            "us-east-1",
            "--account",
            "222222222222",
            "--data-dir",
            &d,
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("ec2-subnets: fresh"), "{err}");
    assert!(
        out.contains("subnetId") && out.contains("16 records"),
        "{out}"
    );
    let (code, out, _) = cli(
        &[
            "get",
            "drs-quotas",
            "--region",
            "us-west-2",
            "--account",
            "333333333333",
            "--output",
            "json",
            "--data-dir",
            &d,
        ],
        &[],
    );
    assert_eq!(code, 0);
    let quotas: Value = serde_json::from_str(&out).unwrap();
    assert!(quotas.is_object(), "{out}");

    let (code, out, err) = cli(&["plan", "--data-dir", &d, "--output", "json"], &[]);
    assert_eq!(code, 0, "{err}");
    let plan: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(plan["configured"], DEMO_KEYS);
    // Everything is cached: a tick would take only what expires before the
    // next one plus the margin (source servers, fresh for two minutes, soon).
    for target in plan["targets"].as_array().unwrap() {
        assert_eq!(target["why"]["reason"], "expiresSoon", "{plan}");
    }

    let (code, out, err) = cli(
        &[
            "refresh",
            "--type",
            "ec2-subnets",
            "--region",
            "us-west-2",
            "--data-dir",
            &d,
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let summary: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(summary["reason"], "manual", "{summary}");

    let (code, out, err) = cli(
        &["invalidate", "--account", "111111111111", "--data-dir", &d],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("accepted"), "{out}");

    // Export from the running process, import into a store nobody holds.
    let file = dir.path().join("snapshot.ndjson");
    let (code, _, err) = cli(&["export", file.to_str().unwrap(), "--data-dir", &d], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!("exported {DEMO_KEYS} entries")),
        "{err}"
    );
    let other = tempfile::tempdir().unwrap();
    let o = dir_arg(other.path());
    let (code, out, err) = cli(&["import", file.to_str().unwrap(), "--data-dir", &o], &[]);
    assert_eq!(code, 0, "{err}");
    let report: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        (report["imported"].as_u64(), report["keptNewer"].as_u64()),
        (Some(DEMO_KEYS), Some(0))
    );
    let (code, out, _) = cli(&["import", file.to_str().unwrap(), "--data-dir", &o], &[]);
    assert_eq!(code, 0);
    let again: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        (again["imported"].as_u64(), again["keptNewer"].as_u64()),
        (Some(0), Some(DEMO_KEYS))
    );
    let (code, out, _) = cli(&["status", "--data-dir", &o, "--output", "json"], &[]);
    assert_eq!(code, 0, "every imported key is servable: {out}");
}

#[test]
fn status_exits_non_zero_while_keys_are_missing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir_arg(dir.path());
    let (code, out, err) = cli(&["refresh", "--type", "ec2-subnets", "--data-dir", &d], &[]);
    assert_eq!(code, 0, "{err}");
    let summary: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(summary["refreshed"], 6, "3 accounts × 2 regions: {summary}");
    let (code, out, err) = cli(&["status", "--data-dir", &d], &[]);
    assert_eq!(code, 3, "{out}{err}");
    assert!(
        err.contains("50 keys are past their stale window, never cached or without data"),
        "{err}"
    );
    let (code, out, _) = cli(&["plan", "--data-dir", &d], &[]);
    assert_eq!(code, 0);
    assert!(
        out.contains("never cached") && out.contains("50 of 56"),
        "{out}"
    );
}

#[test]
fn bad_input_is_named_with_a_non_zero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir_arg(dir.path());
    let cases: [(&[&str], i32, &str); 5] = [
        (
            &["get", "drs-things", "--region", "us-east-1"],
            2,
            "must be one of drs-source-servers",
        ),
        (
            &["get", "ec2-subnets", "--region", "mars-1"],
            2,
            "must be an AWS region name",
        ),
        (&["refresh", "--account", "12ab"], 2, "--account"),
        (&["status", "--data-dir", &d], 1, "no cache at"),
        (
            &[
                "get",
                "ec2-subnets",
                "--region",
                "us-east-1",
                "--filter",
                "vpcId",
                "--data-dir",
                &d,
            ],
            2,
            "NAME=VALUE",
        ),
    ];
    for (args, expected, says) in cases {
        let (code, _, err) = cli(args, &[]);
        assert_eq!(code, expected, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    // A file that is not an export changes nothing.
    let bad = dir.path().join("not-an-export.json");
    std::fs::write(&bad, "{\"servers\": []}\n").unwrap();
    let (code, _, err) = cli(&["import", bad.to_str().unwrap(), "--data-dir", &d], &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("is not a drs-cache-export header") && err.contains("nothing was written"),
        "{err}"
    );
    let (code, _, err) = cli(&["import", "/nonexistent/file", "--data-dir", &d], &[]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot read /nonexistent/file"), "{err}");
}

#[test]
fn a_missing_table_is_named() {
    let endpoint = moto::endpoint();
    let table = moto::unique_name("absent");
    let (code, _, err) = cli(
        &["status", "--store", "dynamodb", "--table", &table],
        &moto::process_env(
            endpoint,
            &[
                ("DEPLOYMENT_ACCOUNT_ID", "111111111111"),
                ("REGIONS", "us-east-1"),
            ],
        ),
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("cannot use the cache table {table}")),
        "{err}"
    );
}

#[test]
fn status_and_get_read_a_deployment_s_table_for_its_configured_targets() {
    let endpoint = moto::endpoint();
    let table = moto::unique_name("deployed");
    let aws = moto::process_env(endpoint, &[]);
    let (code, _, err) = cli(&["create-table", "--table", &table], &aws);
    assert_eq!(code, 0, "{err}");
    // Simulated subnets written into the table on the emulator, as a refresher would.
    let (code, _, err) = cli(
        &[
            "refresh",
            "--type",
            "ec2-subnets",
            "--region",
            "us-east-1",
            "--store",
            "dynamodb",
            "--table",
            &table,
            "--source",
            "simulator",
        ],
        &aws,
    );
    assert_eq!(code, 0, "{err}");
    // The deployment's targets, as its functions read them.
    let deployment = moto::process_env(
        endpoint,
        &[
            ("DEPLOYMENT_ACCOUNT_ID", "111111111111"),
            ("REGIONS", "us-east-1"),
        ],
    );
    let (code, out, err) = cli(
        &[
            "status", "--store", "dynamodb", "--table", &table, "--output", "json",
        ],
        &deployment,
    );
    assert_eq!(code, 3, "six of its seven targets were never cached: {err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let state_of = |key: &str| {
        report["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["key"] == key)
            .map(|k| k["state"].as_str().unwrap().to_owned())
    };
    assert_eq!(
        state_of("ec2-subnets#us-east-1#111111111111").as_deref(),
        Some("fresh")
    );
    assert_eq!(
        state_of("drs-quotas#us-east-1#111111111111").as_deref(),
        Some("missing")
    );
    let (code, out, err) = cli(
        &[
            "get",
            "ec2-subnets",
            "--region",
            "us-east-1",
            "--store",
            "dynamodb",
            "--table",
            &table,
        ],
        &deployment,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("16 records"), "{out}");
    // Without the deployment's regions, the error names what is missing.
    let (code, _, err) = cli(&["status", "--store", "dynamodb", "--table", &table], &aws);
    assert_eq!(code, 1);
    assert!(err.contains("DEPLOYMENT_ACCOUNT_ID"), "{err}");
}
