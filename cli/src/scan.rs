//! `palisade scan`: the operator's scanner, for CI pipelines. Pull an image, inventory its
//! packages, match them against an OSV database, print the findings, and fail the build
//! when findings reach `--fail-on`. With `--sbom`, write the inventory as a CycloneDX or SPDX
//! document instead: no database is read for that.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use clap::ValueEnum;
use palisade_imageref::ImageRef;
use palisade_scanner::coverage::Coverage;
use palisade_scanner::layers::Limits;
use palisade_scanner::oci::{ClientConfig, Credentials, Platform, RegistryClient};
use palisade_scanner::report::Severity;
use palisade_scanner::sbom::{self, Subject};
use palisade_scanner::scan::{
    ImageInventory, InventoryCache, ScanReport, inventory_image_cached, report,
};

use crate::{Output, db};

/// The public OSV exports: `<base>/<ecosystem>/all.zip`.
pub const DEFAULT_DB: &str = "https://osv-vulnerabilities.storage.googleapis.com";

#[derive(clap::Args, Debug)]
pub struct ScanArgs {
    /// The image to scan (`nginx:1.25`, `ghcr.io/org/app@sha256:…`, `localhost:5000/app`).
    #[arg(value_name = "IMAGE")]
    pub image: String,

    /// Vulnerability database, in OSV's format: an http(s) base URL serving
    /// `<ecosystem>/all.zip` (OSV's export layout; a mirror for air-gapped sites), a directory
    /// with the same layout, one `all.zip` as downloaded from OSV, or a directory of OSV
    /// advisory `*.json` files (an unzipped export; subdirectories are read too). A single
    /// zip's or JSON directory's ecosystems are those its advisories name.
    #[arg(long, value_name = "PATH|URL", env = "PALISADE_DB", default_value = DEFAULT_DB)]
    pub db: String,

    /// An ecosystem read from a yum/dnf repository's updateinfo.xml instead of --db
    /// (repeatable; in the environment, comma-separated). The location is an http(s) URL or
    /// a path naming the document (.xml, .xml.gz, .xml.zst), a repository (its base, whose
    /// repodata/repomd.xml names the document) or a mirror.list (the first repository that
    /// works). Replaces the built-in source of that ecosystem: Amazon Linux 2 and 2023 read
    /// their x86_64 core repositories' mirror lists on cdn.amazonlinux.com.
    #[arg(
        long = "updateinfo",
        alias = "scan-updateinfo",
        value_name = "ECOSYSTEM=URL|PATH",
        env = "PALISADE_UPDATEINFO",
        value_delimiter = ',',
        value_parser = palisade_scanner::updateinfo::parse_source
    )]
    pub updateinfo: Vec<(String, String)>,

    /// Exit 1 when any finding is at least this severe, or when the image could not be fully
    /// judged. Any case is accepted (`high`, `High`, `HIGH`).
    #[arg(long, value_enum, ignore_case = true, value_name = "SEVERITY")]
    pub fail_on: Option<FailOn>,

    /// With --fail-on, count only findings that have a fixed version.
    #[arg(long, requires = "fail_on")]
    pub only_fixable: bool,

    /// The platform to scan in a multi-platform image.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]", default_value = "linux/amd64", value_parser = parse_platform)]
    pub platform: Platform,

    /// Where database exports and image inventories are cached.
    #[arg(long, value_name = "DIR", env = "PALISADE_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,

    /// A Docker config (`~/.docker/config.json` or a `.dockerconfigjson`) with registry
    /// logins. Credential helpers are not run.
    #[arg(long, value_name = "FILE")]
    pub docker_config: Option<PathBuf>,

    /// A registry host reached over plain HTTP (repeatable). Loopback hosts always are.
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure_registries: Vec<String>,

    /// Extra CA certificates (PEM) to trust for registries and the database.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,

    /// Output format of the vulnerability report.
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Text)]
    pub output: Output,

    /// Write the image's software bill of materials (every OS and language package, each with
    /// its package URL and the file it was read from) instead of the vulnerability report. No
    /// vulnerability database is read. The document's timestamp is now, or SOURCE_DATE_EPOCH
    /// when set (for reproducible output).
    #[arg(long, value_enum, value_name = "FORMAT", conflicts_with_all = ["fail_on", "output"])]
    pub sbom: Option<SbomFormat>,

    /// With --sbom, write the document to this file instead of standard output.
    #[arg(long, value_name = "FILE", requires = "sbom")]
    pub sbom_output: Option<PathBuf>,
}

/// An SBOM format for `--sbom`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SbomFormat {
    /// CycloneDX 1.5 JSON.
    #[value(name = "cyclonedx")]
    CycloneDx,
    /// SPDX 2.3 JSON.
    Spdx,
}

/// A `--fail-on` threshold, named as reports print severities.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailOn {
    #[value(name = "Critical")]
    Critical,
    #[value(name = "High")]
    High,
    #[value(name = "Medium")]
    Medium,
    #[value(name = "Low")]
    Low,
}

impl From<FailOn> for Severity {
    fn from(f: FailOn) -> Severity {
        match f {
            FailOn::Critical => Severity::Critical,
            FailOn::High => Severity::High,
            FailOn::Medium => Severity::Medium,
            FailOn::Low => Severity::Low,
        }
    }
}

fn parse_platform(s: &str) -> Result<Platform, String> {
    Platform::parse(s).ok_or_else(|| format!("{s:?} is not os/arch[/variant] (e.g. linux/arm64)"))
}

pub fn run(args: &ScanArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(format) = args.sbom {
        return match runtime.block_on(write_sbom(args, format)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
        };
    }
    match runtime.block_on(scan(args)) {
        Ok(report) => {
            match args.output {
                Output::Text => print!("{}", render_text(&report)),
                Output::Json => match serde_json::to_string_pretty(&report) {
                    Ok(j) => println!("{j}"),
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::from(2);
                    }
                },
            }
            let Some(fail_on) = args.fail_on else {
                return ExitCode::SUCCESS;
            };
            let failing = report.failing(fail_on.into(), args.only_fixable).count();
            if failing > 0 {
                eprintln!(
                    "{failing} finding(s) at or above {}{}: failing",
                    Severity::from(fail_on),
                    if args.only_fixable { " with a fix" } else { "" }
                );
                return ExitCode::from(1);
            }
            if report.coverage != Coverage::Full {
                // Unjudged is not clean: a gate must not pass an image it could not read.
                eprintln!(
                    "the image could not be fully judged (coverage {}): {}",
                    report.coverage,
                    gap_messages(&report)
                );
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn default_cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("palisade")
}

/// The registry client the flags describe.
fn registry_client(args: &ScanArgs) -> anyhow::Result<RegistryClient> {
    let mut credentials = Credentials::new();
    if let Some(path) = &args.docker_config {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        credentials
            .add_docker_config(&path.display().to_string(), &bytes)
            .map_err(anyhow::Error::msg)?;
    }
    let mut extra_ca_pem = Vec::new();
    if let Some(path) = &args.ca_file {
        extra_ca_pem
            .push(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?);
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(RegistryClient::new(ClientConfig {
        insecure_registries: args.insecure_registries.clone(),
        extra_ca_pem,
        credentials,
        ..ClientConfig::default()
    })?)
}

/// Pull and inventory the image (or take its inventory from the cache).
async fn inventory(
    args: &ScanArgs,
    image: &ImageRef<'_>,
    client: &RegistryClient,
    cache_dir: &std::path::Path,
) -> anyhow::Result<ImageInventory> {
    let cache = InventoryCache::new(cache_dir.join("inventories"));
    let (inv, _cached) = inventory_image_cached(
        client,
        image,
        &args.platform,
        Limits::default(),
        Some(&cache),
    )
    .await?;
    Ok(inv)
}

fn parse_image(args: &ScanArgs) -> anyhow::Result<ImageRef<'_>> {
    ImageRef::parse(&args.image).with_context(|| format!("image {:?}", args.image))
}

async fn scan(args: &ScanArgs) -> anyhow::Result<ScanReport> {
    let started = Instant::now();
    let image = parse_image(args)?;
    let client = registry_client(args)?;
    let cache_dir = args.cache_dir.clone().unwrap_or_else(default_cache_dir);
    // A bad --db is refused before the image is pulled.
    let source = db::classify(&args.db, db::look).map_err(anyhow::Error::msg)?;
    let inv = inventory(args, &image, &client, &cache_dir).await?;
    let ecosystems = palisade_scanner::osv::needed_ecosystems(&inv.inventory);
    let db = db::load(
        &source,
        &args.updateinfo,
        &ecosystems,
        &cache_dir.join("osv"),
        &client,
    )
    .await?;
    Ok(report(&inv, &db, started.elapsed()))
}

/// `--sbom`: the inventory as a document, on standard output or in `--sbom-output`.
async fn write_sbom(args: &ScanArgs, format: SbomFormat) -> anyhow::Result<()> {
    let image = parse_image(args)?;
    let client = registry_client(args)?;
    let cache_dir = args.cache_dir.clone().unwrap_or_else(default_cache_dir);
    let inv = inventory(args, &image, &client, &cache_dir).await?;
    let now = document_time(std::env::var("SOURCE_DATE_EPOCH").ok().as_deref())?;
    let subject = Subject::of(&inv);
    let format = match format {
        SbomFormat::CycloneDx => sbom::Format::CycloneDx,
        SbomFormat::Spdx => sbom::Format::Spdx,
    };
    let json = sbom::render(format, &subject, now).context("encoding the SBOM")?;
    match &args.sbom_output {
        Some(path) => {
            std::fs::write(path, &json).with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "wrote {} ({} packages)",
                path.display(),
                inv.inventory.package_count()
            );
        }
        None => {
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            out.write_all(&json)
                .and_then(|()| out.flush())
                .context("writing the SBOM to standard output")?;
        }
    }
    // Still written (what was read is true), but a reader must know it is not all.
    for u in &inv.inventory.unreadable {
        eprintln!("warning: the SBOM is incomplete: {}: {}", u.path, u.reason);
    }
    Ok(())
}

/// The SBOM's creation time: SOURCE_DATE_EPOCH (seconds since 1970, the reproducible-builds
/// convention) when set, else now.
fn document_time(source_date_epoch: Option<&str>) -> anyhow::Result<jiff::Timestamp> {
    match source_date_epoch.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(jiff::Timestamp::now()),
        Some(s) => s
            .parse::<i64>()
            .ok()
            .and_then(|secs| jiff::Timestamp::from_second(secs).ok())
            .with_context(|| {
                format!("SOURCE_DATE_EPOCH={s:?} is not a number of seconds since 1970")
            }),
    }
}

/// The gaps' messages on one line.
fn gap_messages(r: &ScanReport) -> String {
    r.gaps
        .iter()
        .map(|g| g.message.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

fn render_text(r: &ScanReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "Image:     {}", r.image);
    let _ = writeln!(out, "Digest:    {}", r.digest);
    if let Some(p) = &r.platform {
        let _ = writeln!(out, "Platform:  {p} ({})", r.manifest_digest);
    }
    let _ = writeln!(out, "OS:        {}", r.os.as_deref().unwrap_or("unknown"));
    if r.ecosystems.is_empty() {
        let _ = writeln!(out, "Packages:  {}", r.packages);
    } else {
        let _ = writeln!(
            out,
            "Packages:  {} ({})",
            r.packages,
            r.ecosystems.join(", ")
        );
    }
    let _ = writeln!(out, "Database:  {}", r.database_version);
    if r.gaps.is_empty() {
        let _ = writeln!(out, "Coverage:  {}", r.coverage);
    } else {
        let _ = writeln!(out, "Coverage:  {} ({})", r.coverage, gap_messages(r));
    }
    let s = &r.summary;
    let _ = writeln!(
        out,
        "Findings:  {} (Critical {}, High {}, Medium {}, Low {}, Unknown {}; {} fixable)",
        s.total(),
        s.critical,
        s.high,
        s.medium,
        s.low,
        s.unknown,
        r.fixable.total()
    );
    if !r.findings.is_empty() {
        // Language packages are named with their ecosystem, and the file they came from
        // gets a column when there are any.
        let with_files = r.findings.iter().any(|f| f.location.is_some());
        let rows: Vec<Vec<String>> = r
            .findings
            .iter()
            .map(|f| {
                let mut row = vec![
                    f.severity.to_string(),
                    f.id.clone(),
                    f.aliases.first().cloned().unwrap_or_default(),
                    match &f.ecosystem {
                        Some(e) => format!("{} ({e})", f.package),
                        None => f.package.clone(),
                    },
                    f.installed_version.clone(),
                    f.fixed_version.clone().unwrap_or_else(|| "(no fix)".into()),
                ];
                if with_files {
                    row.push(f.location.clone().unwrap_or_default());
                }
                row
            })
            .collect();
        let mut head = vec!["SEVERITY", "ID", "ALIAS", "PACKAGE", "INSTALLED", "FIXED"];
        if with_files {
            head.push("FILE");
        }
        let head: Vec<String> = head.into_iter().map(str::to_owned).collect();
        let mut widths: Vec<usize> = head.iter().map(String::len).collect();
        for row in &rows {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.len());
            }
        }
        out.push('\n');
        for row in std::iter::once(head).chain(rows) {
            let line: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            let _ = writeln!(out, "{}", line.join("  ").trim_end());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory as _, Parser as _};

    #[derive(clap::Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        scan: ScanArgs,
    }

    fn parse(args: &[&str]) -> Result<ScanArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("palisade-scan").chain(args.iter().copied()))
            .map(|c| c.scan)
    }

    #[test]
    fn severities_in_any_case() {
        let table: &[(&str, Option<FailOn>)] = &[
            ("Critical", Some(FailOn::Critical)),
            ("critical", Some(FailOn::Critical)),
            ("CRITICAL", Some(FailOn::Critical)),
            ("High", Some(FailOn::High)),
            ("high", Some(FailOn::High)),
            ("hIgH", Some(FailOn::High)),
            ("Medium", Some(FailOn::Medium)),
            ("medium", Some(FailOn::Medium)),
            ("MEDIUM", Some(FailOn::Medium)),
            ("Low", Some(FailOn::Low)),
            ("low", Some(FailOn::Low)),
            ("LOW", Some(FailOn::Low)),
            ("moderate", None),
            ("unknown", None),
            ("", None),
        ];
        for (spelling, want) in table {
            let got = parse(&["img", "--fail-on", spelling]).map(|a| a.fail_on);
            match want {
                Some(want) => assert_eq!(got.ok(), Some(Some(*want)), "{spelling:?}"),
                None => assert!(got.is_err(), "{spelling:?} must be refused"),
            }
        }
    }

    #[test]
    fn help_says_what_is_accepted() {
        let help = Cli::command().render_long_help().to_string();
        assert!(
            help.contains("[possible values: Critical, High, Medium, Low]"),
            "{help}"
        );
        // Every form --db accepts is named.
        let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
        for form in [
            "an http(s) base URL",
            "a directory with the same layout",
            "one `all.zip` as downloaded from OSV",
            "a directory of OSV advisory `*.json` files",
        ] {
            assert!(flat.contains(form), "{form} in:\n{help}");
        }
        let err = parse(&["img", "--fail-on", "severe"])
            .expect_err("not a severity")
            .to_string();
        assert!(
            err.contains("[possible values: Critical, High, Medium, Low]"),
            "{err}"
        );
    }

    #[test]
    fn sbom_flags() {
        let args = parse(&["img", "--sbom", "cyclonedx"]).expect("cyclonedx");
        assert_eq!(args.sbom, Some(SbomFormat::CycloneDx));
        assert_eq!(args.sbom_output, None);
        let args = parse(&["img", "--sbom", "spdx", "--sbom-output", "out.json"]).expect("spdx");
        assert_eq!(args.sbom, Some(SbomFormat::Spdx));
        assert_eq!(args.sbom_output, Some(PathBuf::from("out.json")));
        let refused: &[(&[&str], &str)] = &[
            (
                &["img", "--sbom", "swid"],
                "[possible values: cyclonedx, spdx]",
            ),
            (&["img", "--sbom-output", "out.json"], "--sbom <FORMAT>"),
            (
                &["img", "--sbom", "spdx", "--fail-on", "high"],
                "cannot be used with",
            ),
            (
                &["img", "--sbom", "spdx", "-o", "json"],
                "cannot be used with",
            ),
        ];
        for (argv, want) in refused {
            let err = parse(argv).expect_err("refused").to_string();
            assert!(err.contains(want), "{argv:?}: {err}");
        }
        let help = Cli::command().render_long_help().to_string();
        for text in [
            "--sbom <FORMAT>",
            "CycloneDX 1.5 JSON",
            "SPDX 2.3 JSON",
            "--sbom-output <FILE>",
        ] {
            assert!(help.contains(text), "{text} in:\n{help}");
        }
    }

    #[test]
    fn sbom_time() {
        assert_eq!(
            document_time(Some("1714564800"))
                .expect("epoch")
                .to_string(),
            "2024-05-01T12:00:00Z"
        );
        let err = document_time(Some("yesterday")).expect_err("not a number");
        assert!(
            err.to_string().contains("SOURCE_DATE_EPOCH=\"yesterday\""),
            "{err}"
        );
        assert!(document_time(None).is_ok());
        assert!(document_time(Some("")).is_ok(), "empty is unset");
    }
}
