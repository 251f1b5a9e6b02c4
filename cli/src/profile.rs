//! `gpki profile`: list and show certificate profiles.

use clap::Subcommand;
use gpki_pki::Result;
use serde_json::{json, Value};

use crate::{emit, Global};

#[derive(Subcommand)]
pub enum ProfileCmd {
    /// List profiles
    List,
    /// Show one profile
    Show { name: String },
}

pub fn run(g: &Global, cmd: ProfileCmd) -> Result<()> {
    let out = g.output;
    match cmd {
        ProfileCmd::List => {
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
        }
        ProfileCmd::Show { name } => {
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
        }
    }
    Ok(())
}
