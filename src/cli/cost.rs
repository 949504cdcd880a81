//! `drs-cache cost`: the monthly estimate of a fleet and read rate, per line
//! item, and with `--simulate` the demand simulation of every strategy.

use std::process::ExitCode;

use serde_json::{Value, json};

use crate::{
    config::{LocalArgs, RefreshRunConfig, StoreKind},
    cost::{
        BatchExecution, CostEstimate, CostInputs, Strategy, model, price,
        simulate::{self, REGIONS, SimSettings},
    },
    domain::{DemandPolicy, RefreshAhead},
};

use super::output::{self, Output};

/// Most accounts an estimate takes.
const MAX_ACCOUNTS: u32 = 10_000;
/// Most keys a simulation holds (every key's metadata is kept in memory).
const MAX_SIMULATED_KEYS: f64 = 300_000.0;
/// Most days a simulation runs.
const MAX_DAYS: u32 = 60;

/// `--strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StrategyName {
    AlwaysRefresh,
    DemandAware,
    ReadThrough,
}

#[derive(Debug, clap::Args)]
pub struct CostArgs {
    /// Accounts in the fleet [default: the configured fleet, as `drs-cache
    /// plan` reads it: ACCOUNT_IDS, else the demo fleet's 3 accounts].
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = parse_accounts)]
    accounts: Option<u32>,
    /// Regions of each account, 1 to 28 [default: the configured fleet:
    /// REGIONS, else the demo fleet's 2].
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = parse_regions)]
    regions: Option<u32>,
    /// Reads a minute, averaged over the week.
    #[arg(
        long,
        value_name = "R",
        default_value = "1000",
        allow_negative_numbers = true,
        value_parser = parse_reads
    )]
    reads_per_minute: f64,
    /// The strategy estimated [default: the configured REFRESH_AHEAD:
    /// demand-aware, or always-refresh with REFRESH_AHEAD=always].
    #[arg(long, value_enum)]
    strategy: Option<StrategyName>,
    /// Also simulate a synthetic read trace (Zipf over keys, business-hours
    /// shape) through the planner's due rule for all three strategies.
    #[arg(long)]
    simulate: bool,
    /// The Map's child executions, as the stack's `BatchExecutionType`.
    #[arg(long, value_enum, value_name = "TYPE", default_value_t = BatchExecution::Express)]
    batch_execution_type: BatchExecution,
    /// Days the simulation measures, after a day of warm-up.
    #[arg(
        long,
        value_name = "D",
        default_value_t = 7,
        allow_negative_numbers = true,
        value_parser = parse_days,
    )]
    days: u32,
    /// Seed of the simulation's read trace.
    #[arg(
        long,
        value_name = "S",
        default_value_t = 1,
        allow_negative_numbers = true,
        value_parser = parse_seed,
    )]
    seed: u64,
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
}

/// A whole number from `min` to `max` of `what`, or why not.
fn whole_number(raw: &str, min: u64, max: u64, what: &str) -> Result<u64, String> {
    match raw.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "must be a whole number of {what} from {min} to {max}, not '{raw}'"
        )),
    }
}

fn parse_accounts(raw: &str) -> Result<u32, String> {
    whole_number(raw, 1, u64::from(MAX_ACCOUNTS), "accounts").map(|n| n as u32)
}

fn parse_regions(raw: &str) -> Result<u32, String> {
    whole_number(
        raw,
        1,
        REGIONS.len() as u64,
        "regions (the commercial regions the simulation names)",
    )
    .map(|n| n as u32)
}

fn parse_reads(raw: &str) -> Result<f64, String> {
    match raw.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && (0.0..=1_000_000.0).contains(&r) => Ok(r),
        _ => Err(format!(
            "must be a number of reads a minute from 0 to 1000000, not '{raw}'"
        )),
    }
}

fn parse_days(raw: &str) -> Result<u32, String> {
    whole_number(raw, 1, u64::from(MAX_DAYS), "days").map(|n| n as u32)
}

fn parse_seed(raw: &str) -> Result<u64, String> {
    raw.trim()
        .parse::<u64>()
        .map_err(|_| format!("must be a whole number from 0 to {}, not '{raw}'", u64::MAX))
}

/// Runs `drs-cache cost`.
pub fn run(args: CostArgs) -> anyhow::Result<ExitCode> {
    let config = RefreshRunConfig::from_env(&LocalArgs {
        store: Some(StoreKind::Embedded),
        demo_fleet: true,
        ..LocalArgs::default()
    })?;
    let plan = &config.refresh.plan;
    let accounts = match args.accounts {
        Some(n) => n,
        None => u32::try_from(plan.accounts.len()).unwrap_or(u32::MAX),
    };
    let regions = match args.regions {
        Some(n) => n,
        None => u32::try_from(plan.regions.len()).unwrap_or(u32::MAX),
    };
    if regions as usize > REGIONS.len() {
        anyhow::bail!(
            "REGIONS names {regions} regions; the estimate takes at most {} (or pass --regions)",
            REGIONS.len()
        );
    }
    let policy = match &plan.refresh_ahead {
        RefreshAhead::OnDemand(policy) => policy.clone(),
        RefreshAhead::Always => DemandPolicy::default(),
    };
    let strategy = match args.strategy {
        Some(StrategyName::AlwaysRefresh) => Strategy::AlwaysRefresh,
        Some(StrategyName::DemandAware) => Strategy::DemandAware(policy.clone()),
        Some(StrategyName::ReadThrough) => Strategy::ReadThrough,
        None => match &plan.refresh_ahead {
            RefreshAhead::Always => Strategy::AlwaysRefresh,
            RefreshAhead::OnDemand(p) => Strategy::DemandAware(p.clone()),
        },
    };
    let inputs = CostInputs {
        data_types: plan.data_types.clone(),
        ttl: config.refresh.settings.ttl.clone(),
        schedule_interval: plan.schedule_interval,
        refresh_ahead_margin: plan.refresh_ahead_margin,
        batch_size: u32::try_from(plan.batch_size).unwrap_or(u32::MAX),
        batch_execution: args.batch_execution_type,
        ..CostInputs::new(accounts, regions, args.reads_per_minute, strategy)
    };
    let estimate = model::estimate(&inputs);
    let simulated = if args.simulate {
        if inputs.keys() > MAX_SIMULATED_KEYS {
            anyhow::bail!(
                "--simulate holds every key in memory: {} keys is more than {MAX_SIMULATED_KEYS}; \
                 pass fewer --accounts or --regions",
                inputs.keys()
            );
        }
        let settings = SimSettings {
            data_types: inputs.data_types.clone(),
            days: args.days,
            seed: args.seed,
            ttl: inputs.ttl.clone(),
            schedule_interval: plan.schedule_interval,
            refresh_ahead_margin: plan.refresh_ahead_margin,
            failure_backoff: plan.failure_backoff,
            batch_size: inputs.batch_size,
            max_targets_per_run: plan.max_targets_per_run,
            ..SimSettings::new(accounts, regions, args.reads_per_minute)
        };
        if args.output == Output::Table {
            eprintln!(
                "simulating {} days of reads of {} keys for three strategies...",
                args.days + settings.warmup_days,
                group(inputs.keys())
            );
        }
        let reports = simulate::simulate(&settings, &simulate::strategies(&policy));
        reports
            .into_iter()
            .map(|report| {
                let strategy = match report.strategy {
                    "always-refresh" => Strategy::AlwaysRefresh,
                    "demand-aware" => Strategy::DemandAware(policy.clone()),
                    _ => Strategy::ReadThrough,
                };
                let priced = price(
                    &CostInputs {
                        strategy,
                        ..inputs.clone()
                    },
                    &report.workload,
                );
                (report, priced)
            })
            .collect()
    } else {
        Vec::new()
    };
    match args.output {
        Output::Json => {
            let simulation: Vec<Value> = simulated
                .iter()
                .map(|(report, priced)| json!({"report": report, "estimate": priced}))
                .collect();
            let mut doc = json!({ "estimate": estimate });
            if args.simulate {
                doc["simulation"] = json!({
                    "days": args.days,
                    "seed": args.seed,
                    "strategies": simulation,
                });
            }
            println!("{}", output::json(&doc));
        }
        Output::Table => {
            print_estimate(&estimate);
            if args.simulate {
                println!();
                println!(
                    "simulated: {} keys, {} days after a day of warm-up, seed {}, {} reads a minute on average (weekdays 08:00-18:00 UTC busy)",
                    group(estimate.keys),
                    args.days,
                    args.seed,
                    group(args.reads_per_minute)
                );
                print_simulation(&simulated);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `1234567.8` as `1,234,568`.
pub fn group(n: f64) -> String {
    let whole = n.round().abs() as u64;
    let digits = whole.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0.0 && whole > 0 {
        out.insert(0, '-');
    }
    out
}

fn dollars(usd: f64) -> String {
    if usd < 10.0 {
        format!("${usd:.2}")
    } else {
        format!("${}", group(usd))
    }
}

fn quantity(q: f64) -> String {
    if q > 0.0 && q < 10.0 {
        format!("{q:.2}")
    } else {
        group(q)
    }
}

fn print_estimate(e: &CostEstimate) {
    let rows: Vec<Value> = e
        .lines
        .iter()
        .map(|l| {
            json!({
                "service": l.service,
                "item": l.item,
                "a month": format!("{} {}", quantity(l.quantity), l.unit),
                "USD a month": dollars(l.usd),
            })
        })
        .collect();
    println!(
        "{}",
        output::table(&["service", "item", "a month", "USD a month"], &rows)
    );
    println!(
        "{} × {} ({} keys), {} reads a minute, {}: {} a month (formula estimate, us-east-1 list prices as published in 2026, no free tier); upstream calls {} a day",
        e.accounts,
        e.regions,
        group(e.keys),
        group(e.reads_per_minute),
        e.strategy,
        dollars(e.total_usd),
        group(e.upstream_calls_per_day),
    );
}

fn print_simulation(simulated: &[(simulate::SimReport, CostEstimate)]) {
    let rows: Vec<Value> = simulated
        .iter()
        .map(|(r, e)| {
            let days = f64::from(r.days.max(1));
            json!({
                "strategy": r.strategy,
                "upstream calls/day": group(r.upstream_calls_per_day),
                "store writes/day": group(r.store_writes_per_day),
                "fresh-hit ratio": format!("{:.4}", r.fresh_hit_ratio),
                "stale serves/day": group(r.stale_serves as f64 / days),
                "misses/day": group(r.misses as f64 / days),
                "p99 served age": age(r.p99_age_seconds),
                "USD a month": dollars(e.total_usd),
            })
        })
        .collect();
    println!(
        "{}",
        output::table(
            &[
                "strategy",
                "upstream calls/day",
                "store writes/day",
                "fresh-hit ratio",
                "stale serves/day",
                "misses/day",
                "p99 served age",
                "USD a month",
            ],
            &rows
        )
    );
}

/// Seconds as `59 s`, `14 min` or `5.8 h`.
fn age(seconds: u64) -> String {
    match seconds {
        s if s < 120 => format!("{s} s"),
        s if s < 7_200 => format!("{} min", s / 60),
        s => format!("{:.1} h", s as f64 / 3_600.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_out_of_bounds_are_refused_with_what_they_take() {
        assert!(
            parse_accounts("0")
                .unwrap_err()
                .contains("from 1 to 10000,")
        );
        assert!(parse_accounts("-3").unwrap_err().contains("whole number"));
        assert!(parse_regions("29").unwrap_err().contains("from 1 to 28"));
        assert_eq!(parse_regions("28"), Ok(28));
        assert!(parse_reads("-1").is_err());
        assert!(parse_reads("NaN").is_err());
        assert_eq!(parse_reads("12.5"), Ok(12.5));
        assert!(parse_days("0").is_err());
    }

    #[test]
    fn numbers_print_grouped_in_thousands() {
        assert_eq!(group(1_234_567.8), "1,234,568");
        assert_eq!(group(999.0), "999");
        assert_eq!(group(0.2), "0");
        assert_eq!(dollars(3.456), "$3.46");
        assert_eq!(dollars(1_234.4), "$1,234");
        assert_eq!(age(59), "59 s");
        assert_eq!(age(900), "15 min");
    }
}
