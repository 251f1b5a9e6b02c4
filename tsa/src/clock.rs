//! The kernel's view of clock synchronisation (adjtimex(2)): a TSA must not sign
//! times it cannot vouch for.
#![allow(unsafe_code)]

/// What the kernel says about the system clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ClockState {
    /// False when the kernel flags the clock unsynchronised (TIME_ERROR / STA_UNSYNC).
    pub synchronised: bool,
    /// The kernel's maximum error estimate, microseconds.
    pub max_error_us: i64,
}

/// Reads the state without changing anything (modes = 0).
pub fn state() -> ClockState {
    // SAFETY: `timex` is plain data; zeroed it is a valid read-only request
    // (modes = 0), and ntp_adjtime only writes into the struct we own.
    let mut t: libc::timex = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::ntp_adjtime(&mut t) };
    let synchronised = rc >= 0 && rc != libc::TIME_ERROR && t.status & libc::STA_UNSYNC == 0;
    ClockState {
        synchronised,
        // A failed read, or an unsynchronised clock, vouches for nothing: its error
        // is unbounded (the kernel's maxerror stops growing at 16 s then).
        max_error_us: if synchronised { t.maxerror } else { i64::MAX },
    }
}
