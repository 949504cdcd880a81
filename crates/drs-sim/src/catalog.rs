//! The EC2 instance type catalogue of a region: real families crossed with their
//! sizes, less a region-specific few that the region does not offer. It depends
//! on the region only (never on the account or the seed), like the real one.

use crate::{
    ids::Region,
    rng::Seed,
    xml::{self, items, text},
};

/// One instance type: its name and its rendered `<item>`.
#[derive(Debug)]
pub(crate) struct InstanceType {
    pub(crate) name: String,
    pub(crate) xml: String,
}

#[derive(Clone, Copy, PartialEq)]
enum Cpu {
    Intel,
    Amd,
    Graviton,
}

#[derive(Clone, Copy, PartialEq)]
enum Net {
    /// Fifth generation and older.
    Base,
    /// Sixth generation and newer.
    Modern,
    /// Network-optimised (`n` in the name).
    Fast,
}

use Cpu::{Amd as A, Graviton as G, Intel as I};
use Net::{Base as B, Fast as F, Modern as M};

/// Size names and their vCPUs, smallest first.
const SIZES: [(&str, u32); 11] = [
    ("medium", 1),
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
];

/// (family, processor, GiB per vCPU, smallest and largest size index, a metal
/// size, network class, local NVMe GB per vCPU, current generation)
type Family = (&'static str, Cpu, f64, usize, usize, bool, Net, u32, bool);

#[rustfmt::skip]
const FAMILIES: &[Family] = &[
    // General purpose
    ("m4", I, 4.0, 1, 7, false, B, 0, false), ("m5", I, 4.0, 1, 8, true, B, 0, true),
    ("m5a", A, 4.0, 1, 8, false, B, 0, true), ("m5ad", A, 4.0, 1, 8, false, B, 37, true),
    ("m5d", I, 4.0, 1, 8, true, B, 37, true), ("m5dn", I, 4.0, 1, 8, true, F, 37, true),
    ("m5n", I, 4.0, 1, 8, true, F, 0, true), ("m5zn", I, 4.0, 1, 6, true, F, 0, true),
    ("m6a", A, 4.0, 1, 10, true, M, 0, true), ("m6g", G, 4.0, 0, 7, true, M, 0, true),
    ("m6gd", G, 4.0, 0, 7, true, M, 59, true), ("m6i", I, 4.0, 1, 9, true, M, 0, true),
    ("m6id", I, 4.0, 1, 9, true, M, 59, true), ("m6idn", I, 4.0, 1, 9, true, F, 59, true),
    ("m6in", I, 4.0, 1, 9, true, F, 0, true), ("m7a", A, 4.0, 0, 10, true, M, 0, true),
    ("m7g", G, 4.0, 0, 7, true, M, 0, true), ("m7gd", G, 4.0, 0, 7, true, M, 59, true),
    ("m7i", I, 4.0, 1, 10, true, M, 0, true), ("m7i-flex", I, 4.0, 1, 5, false, M, 0, true),
    ("m8g", G, 4.0, 0, 10, true, M, 0, true), ("m8gd", G, 4.0, 0, 10, true, M, 59, true),
    // Compute optimised
    ("c4", I, 1.875, 1, 5, false, B, 0, false), ("c5", I, 2.0, 1, 8, true, B, 0, true),
    ("c5a", A, 2.0, 1, 8, false, B, 0, true), ("c5ad", A, 2.0, 1, 8, false, B, 37, true),
    ("c5d", I, 2.0, 1, 8, true, B, 25, true), ("c5n", I, 2.625, 1, 7, true, F, 0, true),
    ("c6a", A, 2.0, 1, 10, true, M, 0, true), ("c6g", G, 2.0, 0, 7, true, M, 0, true),
    ("c6gd", G, 2.0, 0, 7, true, M, 59, true), ("c6gn", G, 2.0, 0, 7, false, F, 0, true),
    ("c6i", I, 2.0, 1, 9, true, M, 0, true), ("c6id", I, 2.0, 1, 9, true, M, 59, true),
    ("c6in", I, 2.0, 1, 9, true, F, 0, true), ("c7a", A, 2.0, 0, 10, true, M, 0, true),
    ("c7g", G, 2.0, 0, 7, true, M, 0, true), ("c7gd", G, 2.0, 0, 7, true, M, 59, true),
    ("c7gn", G, 2.0, 0, 7, true, F, 0, true), ("c7i", I, 2.0, 1, 10, true, M, 0, true),
    ("c7i-flex", I, 2.0, 1, 5, false, M, 0, true), ("c8g", G, 2.0, 0, 10, true, M, 0, true),
    ("c8gd", G, 2.0, 0, 10, true, M, 59, true), ("hpc6a", A, 4.0, 10, 10, false, F, 0, true),
    ("hpc7g", G, 2.0, 4, 7, false, F, 0, true),
    // Memory optimised
    ("r4", I, 7.625, 1, 7, false, B, 0, false), ("r5", I, 8.0, 1, 8, true, B, 0, true),
    ("r5a", A, 8.0, 1, 8, false, B, 0, true), ("r5ad", A, 8.0, 1, 8, false, B, 37, true),
    ("r5b", I, 8.0, 1, 8, true, B, 0, true), ("r5d", I, 8.0, 1, 8, true, B, 37, true),
    ("r5dn", I, 8.0, 1, 8, true, F, 37, true), ("r5n", I, 8.0, 1, 8, true, F, 0, true),
    ("r6a", A, 8.0, 1, 10, true, M, 0, true), ("r6g", G, 8.0, 0, 7, true, M, 0, true),
    ("r6gd", G, 8.0, 0, 7, true, M, 59, true), ("r6i", I, 8.0, 1, 9, true, M, 0, true),
    ("r6id", I, 8.0, 1, 9, true, M, 59, true), ("r6idn", I, 8.0, 1, 9, true, F, 59, true),
    ("r6in", I, 8.0, 1, 9, true, F, 0, true), ("r7a", A, 8.0, 0, 10, true, M, 0, true),
    ("r7g", G, 8.0, 0, 7, true, M, 0, true), ("r7gd", G, 8.0, 0, 7, true, M, 59, true),
    ("r7i", I, 8.0, 1, 10, true, M, 0, true), ("r7iz", I, 8.0, 1, 9, true, M, 0, true),
    ("r8g", G, 8.0, 0, 10, true, M, 0, true), ("r8gd", G, 8.0, 0, 10, true, M, 59, true),
    ("x1", I, 15.25, 7, 9, false, B, 30, false), ("x1e", I, 30.5, 2, 9, false, B, 30, false),
    ("x2gd", G, 16.0, 0, 7, true, M, 59, true), ("x2idn", I, 16.0, 7, 9, true, F, 30, true),
    ("x2iedn", I, 32.0, 2, 9, true, F, 30, true), ("x2iezn", I, 32.0, 3, 6, true, F, 0, true),
    ("x8g", G, 16.0, 0, 10, true, M, 0, true), ("z1d", I, 8.0, 1, 6, true, B, 37, true),
    // Storage optimised
    ("d2", I, 7.625, 2, 5, false, B, 1_500, false), ("d3", I, 8.0, 2, 5, false, M, 1_500, true),
    ("d3en", I, 4.0, 2, 6, false, F, 3_500, true), ("h1", I, 4.0, 3, 7, false, B, 250, true),
    ("i3", I, 7.625, 1, 7, true, B, 237, true), ("i3en", I, 8.0, 1, 8, true, F, 625, true),
    ("i4g", G, 8.0, 1, 7, false, M, 234, true), ("i4i", I, 8.0, 1, 9, true, M, 234, true),
    ("i7ie", I, 8.0, 1, 10, true, M, 625, true), ("im4gn", G, 4.0, 1, 7, false, F, 234, true),
    ("is4gen", G, 6.0, 0, 5, false, F, 468, true),
    // Accelerated computing
    ("p3", I, 7.625, 3, 7, false, B, 0, true), ("p3dn", I, 8.0, 8, 8, false, F, 19, true),
    ("p4d", I, 12.0, 8, 8, false, F, 83, true), ("p5", A, 10.7, 10, 10, false, F, 156, true),
    ("g4ad", A, 4.0, 2, 7, false, M, 37, true), ("g4dn", I, 4.0, 2, 7, true, F, 56, true),
    ("g5", A, 4.0, 2, 10, false, M, 59, true), ("g5g", G, 2.0, 2, 7, true, M, 0, true),
    ("g6", A, 4.0, 2, 10, false, M, 59, true), ("g6e", A, 8.0, 2, 10, false, M, 59, true),
    ("gr6", A, 8.0, 4, 5, false, M, 59, true), ("inf1", I, 2.0, 2, 8, false, F, 0, true),
    ("inf2", A, 4.0, 2, 10, false, F, 0, true), ("trn1", I, 4.0, 3, 9, false, F, 59, true),
    ("trn1n", I, 4.0, 9, 9, false, F, 59, true), ("dl1", I, 8.0, 8, 8, false, F, 42, true),
    ("f1", I, 15.25, 3, 7, false, B, 59, true), ("vt1", I, 4.0, 3, 8, false, F, 0, true),
];

/// Burstable families: (family, processor, vCPUs and GiB per size
/// nano, micro, small, medium, large, xlarge, 2xlarge).
const BURSTABLE: [(&str, Cpu, [u32; 7]); 4] = [
    ("t2", I, [1, 1, 1, 2, 2, 4, 8]),
    ("t3", I, [2, 2, 2, 2, 2, 4, 8]),
    ("t3a", A, [2, 2, 2, 2, 2, 4, 8]),
    ("t4g", G, [2, 2, 2, 2, 2, 4, 8]),
];
const BURSTABLE_SIZES: [(&str, u32); 7] = [
    ("nano", 512),
    ("micro", 1_024),
    ("small", 2_048),
    ("medium", 4_096),
    ("large", 8_192),
    ("xlarge", 16_384),
    ("2xlarge", 32_768),
];

/// High-memory types: (name, vCPUs, GiB).
const HIGH_MEMORY: [(&str, u32, u32); 9] = [
    ("u-3tb1.56xlarge", 224, 3_072),
    ("u-6tb1.56xlarge", 224, 6_144),
    ("u-6tb1.112xlarge", 448, 6_144),
    ("u-6tb1.metal", 448, 6_144),
    ("u-9tb1.112xlarge", 448, 9_216),
    ("u-12tb1.112xlarge", 448, 12_288),
    ("u-18tb1.112xlarge", 448, 18_432),
    ("u-24tb1.112xlarge", 448, 24_576),
    ("u7i-12tb.224xlarge", 896, 12_288),
];

/// The share of types a region does not offer.
const MISSING_SHARE: f64 = 0.06;

struct Spec {
    name: String,
    cpu: Cpu,
    vcpus: u32,
    mib: u64,
    net: Net,
    storage_gb: u32,
    current: bool,
    metal: bool,
    burstable: bool,
}

/// The catalogue of `region`, sorted by name.
pub(crate) fn generate(region: &Region) -> Vec<InstanceType> {
    let region_seed = Seed::new(0)
        .with_str("instance-types")
        .with_str(region.as_str());
    let mut specs = all_specs();
    specs.retain(|s| region_seed.with_str(&s.name).unit() >= MISSING_SHARE);
    specs.sort_by(|a, b| a.name.cmp(&b.name));
    specs.iter().map(render).collect()
}

fn all_specs() -> Vec<Spec> {
    let mut specs = Vec::new();
    for &(family, cpu, gib_per_vcpu, low, high, metal, net, gb_per_vcpu, current) in FAMILIES {
        let mut push = |size: &str, vcpus: u32, is_metal: bool| {
            specs.push(Spec {
                name: format!("{family}.{size}"),
                cpu,
                vcpus,
                mib: (f64::from(vcpus) * gib_per_vcpu * 1024.0) as u64,
                net,
                storage_gb: gb_per_vcpu * vcpus,
                current,
                metal: is_metal,
                burstable: false,
            });
        };
        for &(size, vcpus) in &SIZES[low..=high.min(SIZES.len() - 1)] {
            // A medium has one vCPU only on Graviton.
            if size == "medium" && cpu != G {
                continue;
            }
            push(size, vcpus, false);
        }
        if metal {
            push("metal", SIZES[high.min(SIZES.len() - 1)].1, true);
        }
    }
    for (family, cpu, vcpus) in BURSTABLE {
        for ((size, mib), vcpus) in BURSTABLE_SIZES.iter().zip(vcpus) {
            specs.push(Spec {
                name: format!("{family}.{size}"),
                cpu,
                vcpus,
                mib: u64::from(*mib),
                net: B,
                storage_gb: 0,
                current: family != "t2",
                metal: false,
                burstable: true,
            });
        }
    }
    for (name, vcpus, gib) in HIGH_MEMORY {
        specs.push(Spec {
            name: name.to_owned(),
            cpu: I,
            vcpus,
            mib: u64::from(gib) * 1024,
            net: F,
            storage_gb: 0,
            current: true,
            metal: name.ends_with(".metal"),
            burstable: false,
        });
    }
    specs
}

fn network_performance(spec: &Spec) -> &'static str {
    let v = spec.vcpus;
    if spec.burstable {
        return if v <= 1 {
            "Low to Moderate"
        } else {
            "Up to 5 Gigabit"
        };
    }
    match spec.net {
        B => match v {
            0..=16 => "Up to 10 Gigabit",
            17..=32 => "10 Gigabit",
            33..=48 => "12 Gigabit",
            49..=64 => "20 Gigabit",
            _ => "25 Gigabit",
        },
        M => match v {
            0..=16 => "Up to 12.5 Gigabit",
            17..=32 => "12.5 Gigabit",
            33..=48 => "18.75 Gigabit",
            49..=64 => "25 Gigabit",
            65..=96 => "37.5 Gigabit",
            _ => "50 Gigabit",
        },
        F => match v {
            0..=16 => "Up to 25 Gigabit",
            17..=32 => "25 Gigabit",
            33..=48 => "50 Gigabit",
            49..=64 => "75 Gigabit",
            65..=128 => "100 Gigabit",
            _ => "200 Gigabit",
        },
    }
}

fn render(spec: &Spec) -> InstanceType {
    let (arch, manufacturer, clock, threads) = match spec.cpu {
        I => ("x86_64", "Intel", "3.1", 2),
        A => ("x86_64", "AMD", "3.3", 2),
        G => ("arm64", "AWS", "2.6", 1),
    };
    let threads = if spec.vcpus == 1 { 1 } else { threads };
    // Older generations and t2 run on Xen; everything else on Nitro.
    let nitro = spec.current && !spec.name.starts_with("t2.");
    let required = if nitro { "required" } else { "unsupported" };
    let enis = match spec.vcpus {
        0..=2 => 3,
        3..=8 => 4,
        9..=32 => 8,
        _ => 15,
    };
    let addresses = if enis > 8 { 50 } else { 15 };
    let xml = xml::render(|w| {
        w.create_element("item").write_inner_content(|w| {
            text(w, "instanceType", &spec.name)?;
            text(w, "currentGeneration", spec.current)?;
            text(
                w,
                "freeTierEligible",
                spec.name == "t2.micro" || spec.name == "t3.micro",
            )?;
            items(w, "supportedUsageClasses", ["on-demand", "spot"])?;
            let instance_store = (spec.storage_gb > 0 && !nitro).then_some("instance-store");
            items(
                w,
                "supportedRootDeviceTypes",
                ["ebs"].into_iter().chain(instance_store),
            )?;
            items(w, "supportedVirtualizationTypes", ["hvm"])?;
            text(w, "bareMetal", spec.metal)?;
            if !spec.metal {
                text(w, "hypervisor", if nitro { "nitro" } else { "xen" })?;
            }
            w.create_element("processorInfo").write_inner_content(|w| {
                items(w, "supportedArchitectures", [arch])?;
                text(w, "sustainedClockSpeedInGhz", clock)?;
                text(w, "manufacturer", manufacturer)
            })?;
            w.create_element("vCpuInfo").write_inner_content(|w| {
                text(w, "defaultVCpus", spec.vcpus)?;
                text(w, "defaultCores", spec.vcpus / threads)?;
                text(w, "defaultThreadsPerCore", threads)
            })?;
            w.create_element("memoryInfo")
                .write_inner_content(|w| text(w, "sizeInMiB", spec.mib))?;
            text(w, "instanceStorageSupported", spec.storage_gb > 0)?;
            if spec.storage_gb > 0 {
                let disks = (spec.vcpus / 16).clamp(1, 8);
                let kind = if spec.storage_gb / disks > 4_000 {
                    "hdd"
                } else {
                    "ssd"
                };
                w.create_element("instanceStorageInfo")
                    .write_inner_content(|w| {
                        text(w, "totalSizeInGB", spec.storage_gb)?;
                        w.create_element("disks").write_inner_content(|w| {
                            w.create_element("item").write_inner_content(|w| {
                                text(w, "sizeInGB", spec.storage_gb / disks)?;
                                text(w, "count", disks)?;
                                text(w, "type", kind)
                            })?;
                            Ok(())
                        })?;
                        text(w, "nvmeSupport", required)?;
                        text(w, "encryptionSupport", required)
                    })?;
            }
            w.create_element("ebsInfo").write_inner_content(|w| {
                text(
                    w,
                    "ebsOptimizedSupport",
                    if nitro { "default" } else { "supported" },
                )?;
                text(w, "encryptionSupport", "supported")?;
                text(w, "nvmeSupport", required)
            })?;
            w.create_element("networkInfo").write_inner_content(|w| {
                text(w, "networkPerformance", network_performance(spec))?;
                text(w, "maximumNetworkInterfaces", enis)?;
                text(w, "maximumNetworkCards", 1)?;
                text(w, "defaultNetworkCardIndex", 0)?;
                text(w, "ipv4AddressesPerInterface", addresses)?;
                text(w, "ipv6AddressesPerInterface", addresses)?;
                text(w, "ipv6Supported", true)?;
                text(
                    w,
                    "enaSupport",
                    if nitro { "required" } else { "supported" },
                )?;
                text(w, "efaSupported", spec.net == F && spec.vcpus >= 32)?;
                text(w, "encryptionInTransitSupported", nitro && spec.net != B)?;
                text(w, "enaSrdSupported", false)
            })?;
            w.create_element("placementGroupInfo")
                .write_inner_content(|w| {
                    items(w, "supportedStrategies", ["cluster", "partition", "spread"])
                })?;
            text(
                w,
                "hibernationSupported",
                !spec.metal && spec.mib <= 153_600,
            )?;
            text(w, "burstablePerformanceSupported", spec.burstable)?;
            text(w, "dedicatedHostsSupported", !spec.burstable)?;
            text(w, "autoRecoverySupported", spec.storage_gb == 0)?;
            // Graviton boots UEFI only.
            let legacy = (spec.cpu != G).then_some("legacy-bios");
            items(w, "supportedBootModes", legacy.into_iter().chain(["uefi"]))
        })?;
        Ok(())
    });
    InstanceType {
        name: spec.name.clone(),
        xml,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn regions_get_a_realistic_deterministic_catalogue() {
        for name in ["us-east-1", "eu-west-1", "ap-southeast-2", "us-gov-west-1"] {
            let region = Region::parse(name).unwrap();
            let a = generate(&region);
            assert!((800..=1_400).contains(&a.len()), "{name}: {}", a.len());
            let names: HashSet<&str> = a.iter().map(|t| t.name.as_str()).collect();
            assert_eq!(names.len(), a.len(), "names are unique");
            let b = generate(&region);
            assert!(a.iter().zip(&b).all(|(x, y)| x.xml == y.xml));
        }
        let east = generate(&Region::parse("us-east-1").unwrap());
        let west = generate(&Region::parse("eu-west-1").unwrap());
        let differs =
            east.len() != west.len() || east.iter().zip(&west).any(|(x, y)| x.name != y.name);
        assert!(differs, "regions offer different types");
    }

    #[test]
    fn families_the_brief_names_are_present() {
        let all: HashSet<String> = all_specs().into_iter().map(|s| s.name).collect();
        for t in [
            "m5.large",
            "m6i.32xlarge",
            "c6gn.16xlarge",
            "r7g.medium",
            "t3.nano",
            "x2iedn.metal",
            "u-6tb1.112xlarge",
        ] {
            assert!(all.contains(t), "{t}");
        }
    }
}
