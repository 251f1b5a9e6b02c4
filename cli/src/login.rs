//! `gpki login sign`: an official's side of certificate login at a system that
//! runs the standard API. The text signed is built here from the challenge and
//! the audience this client logs in to, never taken from the server, so a hostile
//! login page cannot have an official sign a revocation, an approval or anything
//! else (issue 28, point 4).

use std::path::PathBuf;

use base64::Engine;
use clap::{Args, Subcommand};
use gpki_kmi::keyfile::Pair;
use gpki_pki::{Error, Result, Signer, SoftwareKey};
use serde_json::{json, Value};

use crate::cms::KeySource;
use crate::{emit, read_file, write_file, Global};

#[derive(Subcommand)]
pub enum LoginCmd {
    /// Sign a login challenge; writes the body of POST /v1/login
    Sign(SignArgs),
}

pub fn run(g: &Global, cmd: LoginCmd) -> Result<()> {
    match cmd {
        LoginCmd::Sign(a) => sign(g, a),
    }
}

/// The arguments of `gpki login sign`.
#[derive(Args)]
pub struct SignArgs {
    /// The challenge reply of POST /v1/login/challenge (JSON); its `message`, if
    /// any, must be the text built here, or nothing is signed
    #[arg(
        long,
        conflicts_with = "challenge",
        required_unless_present = "challenge"
    )]
    challenge_file: Option<PathBuf>,
    /// The challenge itself (v1.…)
    #[arg(long)]
    challenge: Option<String>,
    /// The URL of the system you log in to, as you know it (not as it says)
    #[arg(long)]
    audience: String,
    #[command(flatten)]
    key: KeySource,
    /// Write the login body here (else standard output)
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Sign a login challenge; writes the body of POST /v1/login
fn sign(g: &Global, args: SignArgs) -> Result<()> {
    let SignArgs {
        challenge_file,
        challenge,
        audience,
        key,
        out,
    } = args;
    let (challenge, offered) = match (challenge_file, challenge) {
        (Some(f), _) => {
            let v: Value = serde_json::from_slice(&read_file(&f, "challenge")?)
                .map_err(|e| Error::malformed(format!("{}: {e}", f.display())))?;
            if let Some(theirs) = v["audience"].as_str() {
                if theirs != audience {
                    return Err(Error::policy(format!(
                        "the challenge is for audience `{theirs}`, not `{audience}`: nothing signed"
                    )));
                }
            }
            let c = v["challenge"]
                .as_str()
                .ok_or_else(|| Error::malformed("the challenge reply has no challenge"))?
                .to_string();
            (c, v["message"].as_str().map(str::to_string))
        }
        (None, Some(c)) => (c, None),
        (None, None) => return Err(Error::malformed("give --challenge-file or --challenge")),
    };
    let message = gpki_api::login::client_message(&audience, &challenge)?;
    if offered.as_ref().is_some_and(|m| *m != message) {
        return Err(Error::policy(
            "the server's message is not the login text for this challenge and audience: nothing signed",
        ));
    }
    let pair = key.load(Pair::Sign)?;
    let signer = SoftwareKey::from_pkey(pair.key)?;
    let signature = signer.sign(message.as_bytes())?;
    let body = json!({
        "challenge": challenge,
        "certificate": gpki_pki::pem::encode("CERTIFICATE", &pair.cert_der),
        "signature": base64::engine::general_purpose::STANDARD.encode(signature),
    });
    let text = serde_json::to_string_pretty(&body).expect("JSON");
    match &out {
        Some(p) => {
            write_file(p, text.as_bytes())?;
            emit(
                g.output,
                json!({ "written": p.display().to_string(), "audience": audience }),
                || {
                    format!(
                        "login for {audience} signed; body written to {}",
                        p.display()
                    )
                },
            );
        }
        None => println!("{text}"),
    }
    Ok(())
}
