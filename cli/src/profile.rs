//! `gpki profile`: list and show certificate profiles.

use clap::{Args, Subcommand};
use gpki_pki::Result;
use serde_json::{json, Value};

use crate::{emit, Global};

#[derive(Subcommand)]
pub enum ProfileCmd {
    /// List profiles
    List,
    /// Show one profile
    Show(ShowArgs),
}

pub fn run(g: &Global, cmd: ProfileCmd) -> Result<()> {
    match cmd {
        ProfileCmd::List => list(g),
        ProfileCmd::Show(a) => show(g, a),
    }
}

/// List profiles
fn list(g: &Global) -> Result<()> {
    let out = g.output;
    let profiles = g.profiles()?;
    let list: Vec<Value> = profiles
        .iter()
        .map(|p| json!({ "name": p.name(), "kind": p.spec.kind, "validity_days": p.spec.validity_days, "description": p.spec.description, "source": p.source }))
        .collect();
    emit(out, json!(list), || {
        profiles
            .iter()
            .map(|p| {
                format!(
                    "{:<18} {:>5}d  {}",
                    p.name(),
                    p.spec.validity_days,
                    p.spec.description
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}

/// The arguments of `gpki profile show`.
#[derive(Args)]
pub struct ShowArgs {
    name: String,
}

/// Show one profile
fn show(g: &Global, args: ShowArgs) -> Result<()> {
    let ShowArgs { name } = args;
    let out = g.output;
    let profiles = g.profiles()?;
    let p = profiles.get(&name)?;
    emit(
        out,
        serde_json::to_value(&p.spec).expect("profile JSON"),
        || {
            format!(
                "# {}\n{}",
                p.source,
                toml::to_string_pretty(&p.spec).unwrap_or_default()
            )
        },
    );
    Ok(())
}
