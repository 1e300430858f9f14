//! The filters of the User Provisioning page and its API (SPEC §6): date range, sort,
//! configuration and statuses, read from query parameters with a clear error for each bad
//! value, and turned into time bounds for a given "now".
//!
//! A run's time, for ranges and sorting, is when it was queued; a run started at once (every
//! run but an SFTP upload waiting its turn) was queued when it started.

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, NaiveTime, TimeZone, Utc};

use crate::run::RunStatus;

/// The date range filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Range {
    All,
    Last7Days,
    Last30Days,
    /// Both ends inclusive; either may be open.
    Custom {
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Sort {
    #[default]
    NewestFirst,
    OldestFirst,
}

impl Sort {
    pub fn code(self) -> &'static str {
        match self {
            Sort::NewestFirst => "newest",
            Sort::OldestFirst => "oldest",
        }
    }
}

/// A validated set of filters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunFilter {
    pub range: Range,
    pub sort: Sort,
    /// A configuration id.
    pub configuration: Option<String>,
    /// A source connector's name, as runs record it (`SFTP Sync`, `Workday`, …).
    pub connector: Option<String>,
    /// Empty: every status.
    pub statuses: Vec<RunStatus>,
}

impl Default for RunFilter {
    fn default() -> RunFilter {
        RunFilter {
            range: Range::All,
            sort: Sort::NewestFirst,
            configuration: None,
            connector: None,
            statuses: Vec::new(),
        }
    }
}

/// The raw query parameters.
#[derive(Clone, Debug, Default)]
pub struct FilterParams<'a> {
    pub range: Option<&'a str>,
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    /// The viewer's UTC offset (`+01:00`, `-05:00`, `Z`), for dates without a time.
    pub tz: Option<&'a str>,
    pub sort: Option<&'a str>,
    pub configuration: Option<&'a str>,
    /// Comma-separated status codes.
    pub status: Option<&'a str>,
}

/// Time bounds of a range, inclusive, in milliseconds since the epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Bounds {
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
}

/// A UTC offset as the viewer's browser gives it (`+01:00`, `-05:30`, `Z`); none is UTC.
pub fn parse_offset(tz: Option<&str>) -> Result<FixedOffset, String> {
    let Some(tz) = tz.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(FixedOffset::east_opt(0).expect("zero offset"));
    };
    if tz == "Z" || tz.eq_ignore_ascii_case("utc") {
        return Ok(FixedOffset::east_opt(0).expect("zero offset"));
    }
    let bad = || format!("tz '{tz}' is not a UTC offset such as +01:00 or -05:30");
    let (sign, rest) = match tz.as_bytes().first() {
        Some(b'+') => (1, &tz[1..]),
        Some(b'-') => (-1, &tz[1..]),
        _ => return Err(bad()),
    };
    let (h, m) = rest.split_once(':').ok_or_else(bad)?;
    let (h, m): (i32, i32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if !(0..=14).contains(&h) || !(0..60).contains(&m) {
        return Err(bad());
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60)).ok_or_else(bad)
}

/// `2024-01-15` (the whole day in the viewer's offset) or an RFC 3339 date-time; an error
/// names the parameter as `what`.
pub fn instant(
    what: &str,
    value: &str,
    tz: FixedOffset,
    end_of_day: bool,
) -> Result<DateTime<Utc>, String> {
    let value = value.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.with_timezone(&Utc));
    }
    let date = NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| {
        format!("{what} '{value}' is not a date (2024-01-15) or a date-time (2024-01-15T10:30:00Z)")
    })?;
    let time = if end_of_day {
        NaiveTime::from_hms_milli_opt(23, 59, 59, 999).expect("valid time")
    } else {
        NaiveTime::MIN
    };
    tz.from_local_datetime(&date.and_time(time))
        .single()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| format!("{what} '{value}' does not exist in offset {tz}"))
}

fn nonempty(v: Option<&str>) -> Option<&str> {
    v.map(str::trim).filter(|v| !v.is_empty())
}

/// Comma-separated status codes, each once; an error names the parameter as `what`.
pub fn statuses(what: &str, codes: Option<&str>) -> Result<Vec<RunStatus>, String> {
    let mut statuses = Vec::new();
    for code in nonempty(codes)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        let status = RunStatus::from_code(code).ok_or_else(|| {
            let known: Vec<&str> = RunStatus::ALL.iter().map(|s| s.code()).collect();
            format!("{what} '{code}' is not one of {}", known.join(", "))
        })?;
        if !statuses.contains(&status) {
            statuses.push(status);
        }
    }
    Ok(statuses)
}

impl RunFilter {
    /// Read the filters; an error names the parameter and what it accepts.
    pub fn parse(params: &FilterParams<'_>) -> Result<RunFilter, String> {
        let tz = parse_offset(params.tz)?;
        let from = nonempty(params.from)
            .map(|v| instant("from", v, tz, false))
            .transpose()?;
        let to = nonempty(params.to)
            .map(|v| instant("to", v, tz, true))
            .transpose()?;
        let range = match nonempty(params.range) {
            None if from.is_some() || to.is_some() => Range::Custom { from, to },
            None | Some("all") => Range::All,
            Some("7d") => Range::Last7Days,
            Some("30d") => Range::Last30Days,
            Some("custom") => Range::Custom { from, to },
            Some(other) => {
                return Err(format!(
                    "range '{other}' is not one of all, 7d, 30d, custom"
                ));
            }
        };
        if !matches!(range, Range::Custom { .. }) && (from.is_some() || to.is_some()) {
            return Err("from and to go with range=custom".into());
        }
        if let (Some(f), Some(t)) = (from, to)
            && f > t
        {
            return Err("from is after to: swap them".into());
        }
        let sort = match nonempty(params.sort) {
            None | Some("newest") => Sort::NewestFirst,
            Some("oldest") => Sort::OldestFirst,
            Some(other) => return Err(format!("sort '{other}' is not newest or oldest")),
        };
        let statuses = statuses("status", params.status)?;
        Ok(RunFilter {
            range,
            sort,
            configuration: nonempty(params.configuration).map(str::to_owned),
            connector: None,
            statuses,
        })
    }

    /// The range's bounds at `now`.
    pub fn bounds(&self, now: DateTime<Utc>) -> Bounds {
        let since = |days: i64| Bounds {
            from_ms: Some((now - Duration::days(days)).timestamp_millis()),
            to_ms: Some(now.timestamp_millis()),
        };
        match self.range {
            Range::All => Bounds::default(),
            Range::Last7Days => since(7),
            Range::Last30Days => since(30),
            Range::Custom { from, to } => Bounds {
                from_ms: from.map(|t| t.timestamp_millis()),
                to_ms: to.map(|t| t.timestamp_millis()),
            },
        }
    }

    /// Whether any filter differs from the default view.
    pub fn is_default(&self) -> bool {
        *self == RunFilter::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<RunFilter, String> {
        let get = |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
        RunFilter::parse(&FilterParams {
            range: get("range"),
            from: get("from"),
            to: get("to"),
            tz: get("tz"),
            sort: get("sort"),
            configuration: get("configuration"),
            status: get("status"),
        })
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn no_parameters_is_everything_newest_first() {
        let f = parse(&[]).unwrap();
        assert!(f.is_default());
        assert_eq!(f.bounds(Utc::now()), Bounds::default());
    }

    #[test]
    fn last_7_and_30_days_end_now() {
        let now = at("2024-03-31T12:00:00Z");
        let b = parse(&[("range", "7d")]).unwrap().bounds(now);
        assert_eq!(
            b.from_ms,
            Some(at("2024-03-24T12:00:00Z").timestamp_millis())
        );
        assert_eq!(b.to_ms, Some(now.timestamp_millis()));
        let b = parse(&[("range", "30d")]).unwrap().bounds(now);
        assert_eq!(
            b.from_ms,
            Some(at("2024-03-01T12:00:00Z").timestamp_millis())
        );
    }

    #[test]
    fn custom_dates_cover_whole_days_in_the_viewers_offset() {
        let f = parse(&[
            ("range", "custom"),
            ("from", "2024-01-15"),
            ("to", "2024-01-16"),
            ("tz", "+01:00"),
        ])
        .unwrap();
        let b = f.bounds(Utc::now());
        assert_eq!(
            b.from_ms,
            Some(at("2024-01-14T23:00:00Z").timestamp_millis())
        );
        assert_eq!(
            b.to_ms,
            Some(at("2024-01-16T22:59:59.999Z").timestamp_millis())
        );
        // Date-times are taken as given; one end may stay open; from/to alone imply custom.
        let b = parse(&[("from", "2024-01-15T10:30:00Z")])
            .unwrap()
            .bounds(Utc::now());
        assert_eq!(
            b.from_ms,
            Some(at("2024-01-15T10:30:00Z").timestamp_millis())
        );
        assert_eq!(b.to_ms, None);
    }

    #[test]
    fn statuses_sort_and_configuration() {
        let f = parse(&[
            ("status", "success, needs_attention,success"),
            ("sort", "oldest"),
            ("configuration", "cfg-1"),
        ])
        .unwrap();
        assert_eq!(
            f.statuses,
            [RunStatus::Success, RunStatus::NeedsAttention],
            "deduplicated, in the order given"
        );
        assert_eq!(f.sort, Sort::OldestFirst);
        assert_eq!(f.configuration.as_deref(), Some("cfg-1"));
    }

    #[test]
    fn every_bad_value_is_named() {
        for (pairs, says) in [
            (vec![("range", "week")], "range 'week'"),
            (vec![("sort", "up")], "sort 'up'"),
            (vec![("status", "success,done")], "status 'done'"),
            (
                vec![("range", "custom"), ("from", "15/01/2024")],
                "from '15/01/2024'",
            ),
            (
                vec![("range", "7d"), ("from", "2024-01-01")],
                "range=custom",
            ),
            (
                vec![
                    ("range", "custom"),
                    ("from", "2024-02-01"),
                    ("to", "2024-01-01"),
                ],
                "after",
            ),
            (
                vec![("range", "custom"), ("from", "2024-01-01"), ("tz", "CET")],
                "tz 'CET'",
            ),
        ] {
            let e = parse(&pairs).unwrap_err();
            assert!(e.contains(says), "{pairs:?}: {e}");
        }
    }
}
