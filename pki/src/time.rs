//! Conversions between Unix seconds (how the store keeps time) and X.509 `Time`.

use std::time::Duration;

use der::asn1::{GeneralizedTime, UtcTime};
use x509_cert::time::Time;

use crate::error::{Error, Result};

/// RFC 5280 §4.1.2.5: dates through 2049 as UTCTime, from 2050 as GeneralizedTime.
pub fn x509_time(unix_seconds: i64) -> Result<Time> {
    let secs = u64::try_from(unix_seconds)
        .map_err(|_| Error::malformed("time before 1970 cannot be encoded"))?;
    let d = Duration::from_secs(secs);
    const Y2050: u64 = 2_524_608_000;
    if secs < Y2050 {
        Ok(Time::UtcTime(UtcTime::from_unix_duration(d)?))
    } else {
        Ok(Time::GeneralTime(GeneralizedTime::from_unix_duration(d)?))
    }
}

pub fn generalized_time(unix_seconds: i64) -> Result<GeneralizedTime> {
    let secs = u64::try_from(unix_seconds)
        .map_err(|_| Error::malformed("time before 1970 cannot be encoded"))?;
    Ok(GeneralizedTime::from_unix_duration(Duration::from_secs(
        secs,
    ))?)
}

pub fn unix_seconds(t: &Time) -> i64 {
    t.to_unix_duration().as_secs() as i64
}

/// Now, in Unix seconds.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// RFC 3339 rendering for people and JSON.
pub fn rfc3339(unix_seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix_seconds)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix_seconds.to_string())
}

/// Parses RFC 3339 (`2026-11-23T10:00:00Z`) into Unix seconds.
pub fn parse_rfc3339(s: &str) -> Result<i64> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|e| Error::malformed(format!("`{s}` is not an RFC 3339 time: {e}")))
}

/// Appends a GeneralizedTime `YYYYMMDDHHMMSSZ` (RFC 5280 §4.1.2.5.2 form).
pub fn push_generalized_time(out: &mut Vec<u8>, unix_seconds: i64) -> Result<()> {
    let t = time::OffsetDateTime::from_unix_timestamp(unix_seconds)
        .map_err(|e| Error::internal(format!("time out of range: {e}")))?;
    if !(0..=9999).contains(&t.year()) {
        return Err(Error::internal("year out of range for GeneralizedTime"));
    }
    out.extend_from_slice(&[0x18, 0x0f]);
    let mut digits = |v: u32, n: usize| {
        let mut buf = [0u8; 4];
        let mut v = v;
        for i in (0..n).rev() {
            buf[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
        out.extend_from_slice(&buf[..n]);
    };
    digits(t.year() as u32, 4);
    digits(u8::from(t.month()) as u32, 2);
    digits(t.day() as u32, 2);
    digits(t.hour() as u32, 2);
    digits(t.minute() as u32, 2);
    digits(t.second() as u32, 2);
    out.push(b'Z');
    Ok(())
}
