//! `gpki store`: schema migrations and row counts.

use clap::Subcommand;
use gpki_pki::Result;
use gpki_store::Store;
use serde_json::json;

use crate::{emit, Global};

#[derive(Subcommand)]
pub enum StoreCmd {
    /// Run the embedded schema migrations
    Migrate,
    /// Row counts of the main tables
    Stats,
}

pub async fn run(g: &Global, cmd: StoreCmd) -> Result<()> {
    match cmd {
        StoreCmd::Migrate => migrate(g).await,
        StoreCmd::Stats => stats(g).await,
    }
}

/// Run the embedded schema migrations
async fn migrate(g: &Global) -> Result<()> {
    let out = g.output;
    let store = Store::connect(&g.store_url()).await?;
    let applied = store.migrate().await?;
    emit(
        out,
        json!({ "store": store.display_url(), "migrations": applied }),
        || {
            format!(
                "store {} is at the current schema ({} migrations)",
                store.display_url(),
                applied.len()
            )
        },
    );
    Ok(())
}

/// Row counts of the main tables
async fn stats(g: &Global) -> Result<()> {
    let out = g.output;
    let store = g.store().await?;
    let c = store.counts().await?;
    emit(out, serde_json::to_value(c).expect("JSON"), || {
        format!(
            "authorities {}\ncertificates {}\ncrls {}\naudit records {}",
            c.authorities, c.certificates, c.crls, c.audit
        )
    });
    Ok(())
}
