//! `gpki ra create | update | list | client add | operator add`: an RA's set-up,
//! made on the store directly, as an administrator of the CA does.

use clap::Args;
use gpki_pki::{Error, ErrorKind, Result};
use gpki_store::{AuditEvent, NewRa, RaChange};
use serde_json::json;

use crate::{emit, Global};

/// The arguments of `gpki ra create`.
#[derive(Args)]
pub struct CreateArgs {
    #[arg(long)]
    name: String,
    /// The CA it asks for certificates
    #[arg(long)]
    ca: String,
    /// An RFC 4514 DN every subject must fall under (repeatable)
    #[arg(long = "subtree", required = true)]
    subtrees: Vec<String>,
    /// Profiles it may ask for, comma-separated
    #[arg(long, value_delimiter = ',', required = true)]
    profiles: Vec<String>,
    /// Profiles whose requests need a second operator's approval
    #[arg(long, value_delimiter = ',')]
    dual_control: Vec<String>,
    /// Renewal opens this many days before expiry
    #[arg(long, default_value_t = 30)]
    renew_window_days: i64,
    /// DNS domains its DNS and e-mail SANs must fall under, comma-separated
    /// (none: the RA asks for no such SANs)
    #[arg(long, value_delimiter = ',')]
    domains: Vec<String>,
    /// The RA service (its service-client name) that hosts it
    #[arg(long)]
    host: String,
}

/// Create an RA: its CA, the institutions it serves, the profiles it may ask for
pub(super) async fn create(g: &Global, args: CreateArgs) -> Result<()> {
    let CreateArgs {
        name,
        ca,
        subtrees,
        profiles,
        dual_control,
        renew_window_days,
        domains,
        host,
    } = args;
    let out = g.output;
    let store = g.store().await?;
    store.authority_by_name(&ca).await?;
    check_names(g, profiles.iter().chain(&dual_control), &subtrees)?;
    let ra = store
        .create_ra(
            &NewRa {
                name: name.clone(),
                ca_name: ca,
                subtrees,
                profiles,
                dual_control,
                renew_window_days,
                host,
                domains,
            },
            &AuditEvent::new(&g.actor(), "ra.create", format!("ra:{name}"), json!({})),
        )
        .await?;
    emit(out, json!({ "ra": ra }), || {
        format!("RA {} created (id {})", ra.name, ra.id)
    });
    Ok(())
}

/// The arguments of `gpki ra update`.
#[derive(Args)]
pub struct UpdateArgs {
    #[arg(long)]
    name: String,
    /// An RFC 4514 DN every subject must fall under (repeatable; replaces all)
    #[arg(long = "subtree")]
    subtrees: Option<Vec<String>>,
    /// Profiles it may ask for, comma-separated
    #[arg(long, value_delimiter = ',')]
    profiles: Option<Vec<String>>,
    /// Profiles whose requests need a second operator's approval
    #[arg(long, value_delimiter = ',', conflicts_with = "no_dual_control")]
    dual_control: Option<Vec<String>>,
    /// No profile under dual control any more (said in full, never by an
    /// empty --dual-control)
    #[arg(long)]
    no_dual_control: bool,
    /// Renewal opens this many days before expiry
    #[arg(long)]
    renew_window_days: Option<i64>,
    /// DNS domains its DNS and e-mail SANs must fall under, comma-separated
    /// (an empty value: none, so the RA asks for no such SANs)
    #[arg(long, value_delimiter = ',')]
    domains: Option<Vec<String>>,
    /// The RA service (its service-client name) that hosts it
    #[arg(long)]
    host: Option<String>,
    /// Refuse its requests from now on (its operators and records stay)
    #[arg(long, conflicts_with = "activate")]
    suspend: bool,
    /// Accept its requests again
    #[arg(long)]
    activate: bool,
}

/// Change an RA's scope or standing: each option given replaces what the RA
/// has; the services apply it within a second (their auth_cache_ms). Its
/// name and CA stay.
pub(super) async fn update(g: &Global, args: UpdateArgs) -> Result<()> {
    let UpdateArgs {
        name,
        subtrees,
        profiles,
        dual_control,
        no_dual_control,
        renew_window_days,
        domains,
        host,
        suspend,
        activate,
    } = args;
    let out = g.output;
    let store = g.store().await?;
    // `--domains ''` clears the domains; an empty profile name is an error
    // (dual control is lifted only by --no-dual-control).
    let domains = domains.map(|v| v.into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>());
    let dual_control = if no_dual_control {
        Some(Vec::new())
    } else {
        dual_control
    };
    check_names(
        g,
        profiles.iter().chain(&dual_control).flatten(),
        subtrees.as_deref().unwrap_or_default(),
    )?;
    let change = RaChange {
        subtrees,
        profiles,
        dual_control,
        renew_window_days,
        domains,
        host,
        status: match (suspend, activate) {
            (true, _) => Some("suspended".into()),
            (_, true) => Some("active".into()),
            _ => None,
        },
    };
    let ra = store
        .update_ra(
            &name,
            &change,
            &AuditEvent::new(&g.actor(), "ra.update", format!("ra:{name}"), json!({})),
        )
        .await?;
    emit(out, json!({ "ra": ra }), || {
        format!(
            "RA {} updated: {}, profiles {}, dual control {}, subtrees {}",
            ra.name,
            ra.status,
            ra.profiles.join(","),
            if ra.dual_control.is_empty() {
                "none".into()
            } else {
                ra.dual_control.join(",")
            },
            ra.subtrees.join(" | ")
        )
    });
    Ok(())
}

/// The RAs in the store
pub(super) async fn list(g: &Global) -> Result<()> {
    let out = g.output;
    let store = g.store().await?;
    let ras = store.ras().await?;
    emit(out, json!({ "ras": ras }), || {
        ras.iter()
            .map(|r| {
                format!(
                    "{}\t{}\tCA {}\thost {}\tprofiles {}\t{}",
                    r.name,
                    r.status,
                    r.ca_name,
                    r.host,
                    r.profiles.join(","),
                    r.subtrees.join(" | ")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}

/// The arguments of `gpki ra client add`.
#[derive(Args)]
pub struct ClientAddArgs {
    #[arg(long)]
    name: String,
    #[arg(long, value_parser = ["ra", "ocsp", "tsa"])]
    role: String,
    #[arg(long)]
    ca: String,
    #[arg(long)]
    serial: String,
}

/// Register certificate SERIAL of CA as a client of the CA service in ROLE
pub(super) async fn client_add(g: &Global, args: ClientAddArgs) -> Result<()> {
    let ClientAddArgs {
        name,
        role,
        ca,
        serial,
    } = args;
    let out = g.output;
    let store = g.store().await?;
    let cert = certificate(&store, &ca, &serial).await?;
    if cert.profile != "service-client" {
        return Err(Error::policy(format!(
            "certificate {} is of profile {}; CA service clients use service-client certificates",
            cert.serial, cert.profile
        )));
    }
    let client = store
        .add_service_client(
            &name,
            &role,
            cert.id,
            &AuditEvent::new(
                &g.actor(),
                "ca.client.add",
                format!("cert:{ca}/{}", cert.serial),
                json!({ "name": name, "role": role }),
            ),
        )
        .await?;
    emit(out, json!({ "client": client }), || {
        format!(
            "certificate {} registered as {role} client `{name}`",
            cert.serial
        )
    });
    Ok(())
}

/// The arguments of `gpki ra operator add`.
#[derive(Args)]
pub struct OperatorAddArgs {
    /// The RA's name
    #[arg(long)]
    ra: String,
    #[arg(long)]
    name: String,
    #[arg(long)]
    ca: String,
    #[arg(long)]
    serial: String,
    #[arg(long)]
    admin: bool,
}

/// Register an issued ra-operator certificate as an operator (store; bootstrap)
pub(super) async fn operator_add(g: &Global, args: OperatorAddArgs) -> Result<()> {
    let OperatorAddArgs {
        ra,
        name,
        ca,
        serial,
        admin,
    } = args;
    let out = g.output;
    let store = g.store().await?;
    let ra = store.ra_by_name(&ra).await?;
    let cert = certificate(&store, &ca, &serial).await?;
    if cert.profile != "ra-operator" {
        return Err(Error::policy(format!(
            "certificate {} is of profile {}; operators log in with ra-operator certificates",
            cert.serial, cert.profile
        )));
    }
    ra.check_scope("ra-operator", &cert.subject)?;
    let op = store
        .add_operator(
            ra.id,
            &name,
            cert.id,
            admin,
            &AuditEvent::new(
                &g.actor(),
                "ra.operator.enrol",
                format!("ra:{}", ra.name),
                json!({ "name": name, "cert_id": cert.id, "admin": admin }),
            ),
        )
        .await?;
    emit(out, json!({ "operator": op }), || {
        format!("operator {} of RA {} (id {})", op.name, ra.name, op.id)
    });
    Ok(())
}

async fn certificate(
    store: &gpki_store::Store,
    ca: &str,
    serial: &str,
) -> Result<gpki_store::CertificateRecord> {
    let serial = serial.parse::<gpki_pki::serial::SerialNumber>()?.to_hex();
    let authority = store.authority_by_name(ca).await?;
    store
        .certificate(authority.id, &serial)
        .await?
        .filter(|c| c.status == gpki_store::CertStatus::Issued)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!("no issued certificate {serial} from CA `{ca}`"),
            )
        })
}

/// What the store cannot check of an RA's scope: its profiles are known ones and
/// its subtrees are DNs. (The store checks the rest, for create and update alike.)
fn check_names<'a>(
    g: &Global,
    profiles: impl Iterator<Item = &'a String>,
    subtrees: &[String],
) -> Result<()> {
    let known = g.profiles()?;
    for p in profiles {
        known.get(p)?;
    }
    for s in subtrees {
        gpki_pki::name::parse(s)?;
    }
    Ok(())
}
