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
    let out = g.output;
    match cmd {
        StoreCmd::Migrate => {
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
        }
        StoreCmd::Stats => {
            let store = g.store().await?;
            let c = store.counts().await?;
            emit(out, serde_json::to_value(c).expect("JSON"), || {
                format!(
                    "authorities {}\ncertificates {}\ncrls {}\naudit records {}",
                    c.authorities, c.certificates, c.crls, c.audit
                )
            });
        }
    }
    Ok(())
}
