//! `kycdesk bench`: bulk-loads processes and measures desk page latency.

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Number of processes to load.
    #[arg(long, default_value_t = 100_000)]
    pub n: usize,
}

pub async fn run(_a: BenchArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("bench is not implemented yet")
}
