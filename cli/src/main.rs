//! `palisade`: judge manifests with the same engine the admission webhook runs, and print
//! Palisade's CRDs.

mod check;
mod db;
mod input;
mod scan;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "palisade",
    version,
    about = "Palisade: Kubernetes admission security, from the command line"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Judge manifests (or AdmissionReview documents) against SecurityPolicies and print
    /// what the webhook would answer. Exit 0 when all are admitted, 1 when any is denied,
    /// 2 on bad input or usage.
    Check(CheckArgs),
    /// Scan an image for known vulnerabilities, as the operator does: pull it from its
    /// registry, inventory its OS packages, match them against an OSV database. Exit 1 when
    /// findings reach --fail-on (or the image could not be fully judged), 2 on errors. With
    /// --sbom, write the image's inventory as a CycloneDX or SPDX SBOM instead.
    Scan(scan::ScanArgs),
    /// Print the CustomResourceDefinitions as YAML (or write one file per CRD).
    Crds {
        /// Write `<crd name>.yaml` files into this directory instead of printing.
        #[arg(long, value_name = "DIR")]
        output_dir: Option<PathBuf>,
    },
}

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Manifests to judge: a file, a directory (its *.yaml, *.yml and *.json files), or `-`
    /// for standard input. Multi-document YAML, JSON, `kind: List` and AdmissionReview
    /// documents are understood. SecurityPolicies found here are used as policies too.
    #[arg(short = 'f', long = "filename", value_name = "PATH", required = true)]
    pub files: Vec<PathBuf>,

    /// SecurityPolicy files or directories.
    #[arg(short = 'p', long = "policy", value_name = "PATH")]
    pub policies: Vec<PathBuf>,

    /// Read directories given to -f and --policy recursively.
    #[arg(short = 'R', long)]
    pub recursive: bool,

    /// Namespace of manifests that name none.
    #[arg(short = 'n', long, default_value = "default", value_name = "NAME")]
    pub namespace: String,

    /// Labels of namespaces that no Namespace object among the inputs describes, as the
    /// policies' namespaceSelectors see them (`env=prod,team=payments`).
    /// `kubernetes.io/metadata.name` is always set.
    #[arg(long, value_name = "K=V,...", value_parser = check::parse_labels)]
    pub namespace_labels: Option<std::collections::BTreeMap<String, String>>,

    /// Judge exception expiry as of this instant (RFC 3339) instead of now.
    #[arg(long, value_name = "TIME")]
    pub at: Option<k8s_openapi::jiff::Timestamp>,

    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// What kubectl would print.
    Text,
    /// One JSON document with every decision and violation.
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Scan(args) => scan::run(&args),
        Command::Crds { output_dir } => match crds(output_dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
        },
    }
}

fn crds(output_dir: Option<PathBuf>) -> anyhow::Result<()> {
    use anyhow::Context as _;
    match output_dir {
        None => print!("{}", palisade_crds::rendered_stream()?),
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            for (name, text) in palisade_crds::rendered()? {
                let path = dir.join(name);
                std::fs::write(&path, text)
                    .with_context(|| format!("writing {}", path.display()))?;
                eprintln!("wrote {}", path.display());
            }
        }
    }
    Ok(())
}
