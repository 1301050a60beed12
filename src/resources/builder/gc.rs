//! The `gc` block of `nixbuild_builder`: the builder's disk policy. `min_free`
//! / `max_free` become Nix's own `min-free` / `max-free` (bytes) in the managed
//! config, so the daemon collects garbage during builds when the store's disk
//! runs low; `schedule` (with `delete_older_than`) adds a periodic collection,
//! the systemd timer `nixbuild-gc.timer` running `nix-collect-garbage`. Its
//! type (its schema), validation, plan-time systemd check, converge step,
//! drift check and removal; the builder calls these and holds nothing else of
//! it. The sizes reach the host through [`crate::nix::conf::ManagedConf`].

use tf_provider::value::Value;
use tf_provider::{AttributePath, Diagnostics};

use super::blocks::{only_at, Applying, Block, Checking, CleanPhase, Cleaning, Phase};
use super::config::BuilderState;
pub use super::config::GcBlock;
use crate::context::{Context, Outcome, Purpose, Target};
use crate::ssh::steps::Step;

pub struct Gc;

#[async_trait::async_trait]
impl Block for Gc {
    fn validate(&self, config: &BuilderState, diags: &mut Diagnostics) {
        validate(&config.gc, diags);
    }

    async fn check_at_plan(
        &self,
        configured: &Context,
        state: &BuilderState,
        target: &Target<'_>,
        diags: &mut Diagnostics,
    ) {
        check_at_plan(configured, &state.gc, target, diags).await;
    }

    /// Last: its first collection (at install) then sees the store and the
    /// daemon as they are after this apply.
    fn steps(&self, phase: Phase, apply: &Applying) -> Vec<Step> {
        only_at(phase, Phase::AfterRestart, || {
            vec![converge_step(&apply.state.gc)]
        })
    }

    fn check_step(&self, checking: &Checking) -> Option<Step> {
        check_step(&checking.state.gc)
    }

    fn drift(&self, _checking: &Checking, output: Option<&str>) -> Vec<String> {
        output.map(drift_in).unwrap_or_default()
    }

    fn clean_steps(&self, phase: CleanPhase, _clean: &Cleaning) -> Vec<Step> {
        only_at(phase, CleanPhase::BeforeConfig, || vec![clean_step()])
    }
}

pub const TIMER_UNIT: &str = "nixbuild-gc.timer";
pub const SERVICE_UNIT: &str = "nixbuild-gc.service";

const UNITS: [(&str, u64); 4] = [
    ("K", 1 << 10),
    ("M", 1 << 20),
    ("G", 1 << 30),
    ("T", 1 << 40),
];

/// A size such as `"10G"`: bytes with an optional binary suffix, as Nix reads them.
pub fn parse_size(size: &str) -> Result<u64, String> {
    let (digits, factor) = match UNITS.iter().find(|(s, _)| size.ends_with(s)) {
        Some((suffix, factor)) => (&size[..size.len() - suffix.len()], *factor),
        None => (size, 1),
    };
    let bad = || {
        format!("`{size}` is not a size: use bytes with an optional suffix K, M, G or T (1024-based), e.g. \"10G\" or \"512M\"")
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .ok_or_else(|| format!("`{size}` is too large"))?;
    if n == 0 {
        return Err(format!(
            "`{size}` is zero: omit the setting to leave it to Nix"
        ));
    }
    Ok(n)
}

/// Bytes back as the shortest exact size (for import): `10737418240` → `"10G"`.
pub fn format_size(bytes: u64) -> String {
    UNITS
        .iter()
        .rev()
        .find(|(_, factor)| bytes >= *factor && bytes.is_multiple_of(*factor))
        .map(|(suffix, factor)| format!("{}{suffix}", bytes / factor))
        .unwrap_or_else(|| bytes.to_string())
}

/// An `OnCalendar=` expression, as far as it can be judged without systemd:
/// characters that systemd's calendar syntax uses and nothing a unit file
/// would read as a specifier (`%`), an escape or a new line.
pub fn check_schedule(schedule: &str) -> Result<(), String> {
    if schedule.trim().is_empty() {
        return Err("the schedule is empty: omit it for no periodic collection".into());
    }
    match schedule
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || " *:,./~+-_".contains(*c)))
    {
        Some(c) => Err(format!(
            "`{schedule}` contains {c:?}, which is not part of a systemd calendar expression (e.g. \"daily\", \"Sun *-*-* 03:00:00\")"
        )),
        None => Ok(()),
    }
}

/// `delete_older_than`: whole days, as `nix-collect-garbage` takes them.
pub fn check_older_than(age: &str) -> Result<(), String> {
    let days = age.strip_suffix('d').unwrap_or("");
    if !days.is_empty()
        && days.len() <= 6
        && days.bytes().all(|b| b.is_ascii_digit())
        && days.parse::<u64>().is_ok_and(|d| d > 0)
    {
        Ok(())
    } else {
        Err(format!(
            "`{age}` is not a number of days such as \"30d\" (what nix-collect-garbage --delete-older-than takes)"
        ))
    }
}

fn at(name: &'static str) -> AttributePath {
    AttributePath::new("gc").index(0).attribute(name)
}

pub fn validate(value: &Value<GcBlock>, diags: &mut Diagnostics) {
    let Value::Value(block) = value else {
        return;
    };
    let mut size = |name: &'static str, v: &Value<String>| match v {
        Value::Value(s) => match parse_size(s) {
            Ok(n) => Some(n),
            Err(e) => {
                diags.error(format!("Invalid gc.{name}"), e, at(name));
                None
            }
        },
        _ => None,
    };
    let min = size("min_free", &block.min_free);
    let max = size("max_free", &block.max_free);
    if let (Some(min), Some(max)) = (min, max) {
        if max <= min {
            diags.error(
                "gc.max_free must be larger than gc.min_free",
                format!("a collection starts below min_free ({min} bytes) and stops at max_free ({max} bytes): max_free must be the larger one"),
                at("max_free"),
            );
        }
    }
    if block.max_free.is_value() && block.min_free.is_null() {
        diags.error(
            "gc.max_free needs gc.min_free",
            "Nix collects up to max_free only in a collection that min_free starts: set min_free too",
            at("max_free"),
        );
    }
    if let Value::Value(schedule) = &block.schedule {
        if let Err(e) = check_schedule(schedule) {
            diags.error("Invalid gc.schedule", e, at("schedule"));
        }
    }
    if let Value::Value(age) = &block.delete_older_than {
        if let Err(e) = check_older_than(age) {
            diags.error("Invalid gc.delete_older_than", e, at("delete_older_than"));
        }
        if block.schedule.is_null() {
            diags.error(
                "gc.delete_older_than needs gc.schedule",
                "generations are deleted by the periodic collection: set a schedule too",
                at("delete_older_than"),
            );
        }
    }
}

/// `(min-free, max-free)` in bytes for the managed config; `None` while a
/// size is unknown. Invalid sizes never get here (validation refuses them).
pub fn sizes(value: &Value<GcBlock>) -> Option<(Option<u64>, Option<u64>)> {
    let block = match value {
        Value::Unknown => return None,
        Value::Null => return Some((None, None)),
        Value::Value(block) => block,
    };
    let size = |v: &Value<String>| match v {
        Value::Unknown => None,
        Value::Null => Some(None),
        Value::Value(s) => Some(parse_size(s).ok()),
    };
    Some((size(&block.min_free)?, size(&block.max_free)?))
}

/// Import: the block from what the managed config says (sizes only; a
/// schedule is not read back).
pub fn from_conf(min_free: Option<u64>, max_free: Option<u64>) -> Value<GcBlock> {
    if min_free.is_none() && max_free.is_none() {
        return Value::Null;
    }
    Value::Value(GcBlock {
        min_free: min_free.map(format_size).into(),
        max_free: max_free.map(format_size).into(),
        ..Default::default()
    })
}

/// The periodic collection wanted: `(schedule, delete_older_than)`.
fn periodic(value: &Value<GcBlock>) -> Option<(String, String)> {
    let block = value.as_ref_option()?;
    let schedule = block.schedule.as_ref_option()?.trim().to_string();
    let age = block
        .delete_older_than
        .as_ref_option()
        .cloned()
        .unwrap_or_default();
    Some((schedule, age))
}

/// Whether the plan has a schedule (known or not yet known).
fn wants_schedule(value: &Value<GcBlock>) -> bool {
    match value {
        Value::Unknown => false,
        Value::Null => false,
        Value::Value(block) => !block.schedule.is_null(),
    }
}

/// `gc.sh MODE SCHEDULE AGE` as a step called `name`.
fn step(name: &str, mode: &str, schedule: &str, age: &str) -> Step {
    Step::new(name, crate::scripts::GC, &[mode, schedule, age]).serves("gc")
}

/// `key` of a script's report (empty when absent).
fn report(text: &str, key: &str) -> String {
    crate::host::fields(text)
        .get(key)
        .copied()
        .unwrap_or_default()
        .to_string()
}

/// Plan time: a schedule on a reachable host without systemd is an error now,
/// not halfway through an apply; so is a calendar expression that the host's
/// systemd refuses. An unreachable host (still booting, or not created yet),
/// or one whose host key is not known yet (a plan never trusts on first use,
/// not even for the replacement of a pinned object), is left to the apply,
/// which checks again.
pub async fn check_at_plan(
    configured: &Context,
    value: &Value<GcBlock>,
    target: &Target<'_>,
    diags: &mut Diagnostics,
) {
    if !wants_schedule(value) {
        return;
    }
    let schedule = periodic(value).map(|(s, _)| s).unwrap_or_default();
    let mut quiet = Diagnostics::default();
    let Outcome::Connected(remote) = configured.connect(target, Purpose::Plan, &mut quiet).await
    else {
        // Not connected (unreachable, not created yet, settings still
        // unknown): the apply checks again and says why. A changed host key
        // is the refresh's error already.
        return;
    };
    let probed = tokio::time::timeout(
        crate::context::policy::READ_COMMAND_BUDGET,
        step("check gc schedule", "probe", &schedule, "").run(&remote, true),
    )
    .await;
    let Ok(Ok(out)) = probed else {
        return;
    };
    let text = out.stdout_text();
    if report(&text, "init") == "other" {
        diags.error(
            format!("{} does not run systemd", target.host),
            "gc.schedule runs the periodic collection as a systemd timer, and this host has no systemd (no /run/systemd/system). Remove gc.schedule (min_free / max_free work without systemd) or collect garbage with the host's own scheduler",
            at("schedule"),
        );
    } else if let Some(reason) = report(&text, "calendar").strip_prefix("bad:") {
        diags.error(
            "Invalid gc.schedule",
            format!(
                "systemd on {} refuses `{schedule}`: {}",
                target.host,
                reason.trim()
            ),
            at("schedule"),
        );
    }
}

/// Apply: write and start the timer, or remove it when no schedule is set (a
/// no-op on a host that has none).
pub fn converge_step(value: &Value<GcBlock>) -> Step {
    match periodic(value) {
        Some((schedule, age)) => step("set up periodic gc", "apply", &schedule, &age),
        None => clean_step(),
    }
}

/// Remove what the block put on the host (a no-op on a host with none).
pub fn clean_step() -> Step {
    step("remove periodic gc", "clean", "", "")
}

/// The check as a step (`None`: no schedule, nothing to check).
pub fn check_step(value: &Value<GcBlock>) -> Option<Step> {
    let (schedule, age) = periodic(value)?;
    Some(step("check periodic gc", "check", &schedule, &age))
}

/// What the check's output `text` shows out of line.
pub fn drift_in(text: &str) -> Vec<String> {
    let mut drift = Vec::new();
    let timer = report(text, "timer");
    if timer != "active" {
        drift.push(format!(
            "the gc timer {TIMER_UNIT} is `{}`",
            if timer.is_empty() { "unknown" } else { &timer }
        ));
    }
    match report(text, "units").as_str() {
        "same" => {}
        "missing" => drift.push(format!("the gc units {SERVICE_UNIT} / {TIMER_UNIT} are missing")),
        _ => drift.push(format!(
            "the gc units {SERVICE_UNIT} / {TIMER_UNIT} differ from gc.schedule / gc.delete_older_than"
        )),
    }
    drift
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_like_nix() {
        assert_eq!(parse_size("10G"), Ok(10 << 30));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("1T"), Ok(1 << 40));
        assert_eq!(parse_size("4096"), Ok(4096));
        for bad in ["", "G", "10g", "10 G", "-1G", "1.5G", "10GB", "0", "0G"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert!(parse_size("99999999999T")
            .unwrap_err()
            .contains("too large"));
        for n in [10u64 << 30, 512 << 20, 4096, 1000, 3 << 40] {
            assert_eq!(parse_size(&format_size(n)), Ok(n));
        }
        assert_eq!(format_size(10 << 30), "10G");
        assert_eq!(format_size(1000), "1000");
    }

    #[test]
    fn schedules_and_ages() {
        for ok in [
            "daily",
            "Sun *-*-* 03:00:00",
            "Mon..Fri 22:30",
            "*-*-01 04:00 Europe/Berlin",
            "hourly",
        ] {
            assert!(check_schedule(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            " ",
            "daily\nExecStart=/bin/sh",
            "daily; rm -rf /",
            "%H",
            "$(id)",
            "daily\"",
            "a\\b",
        ] {
            assert!(check_schedule(bad).is_err(), "{bad:?}");
        }
        assert!(check_older_than("30d").is_ok());
        for bad in ["30", "d", "0d", "30 d", "1w", "-1d", "30days", "9999999d"] {
            assert!(check_older_than(bad).is_err(), "{bad}");
        }
    }

    fn errors(block: GcBlock) -> Vec<String> {
        let mut diags = Diagnostics::default();
        validate(&Value::Value(block), &mut diags);
        diags
            .errors
            .iter()
            .map(|d| format!("{:?}", d.attribute))
            .collect()
    }

    #[test]
    fn validation_names_the_attribute() {
        let s = |v: &str| Value::Value(v.to_string());
        assert!(errors(GcBlock {
            min_free: s("10G"),
            max_free: s("20G"),
            schedule: s("daily"),
            delete_older_than: s("30d"),
        })
        .is_empty());
        let one = |block: GcBlock, attr: &str| {
            let e = errors(block);
            assert_eq!(e.len(), 1, "{e:?}");
            assert!(e[0].contains(attr), "{e:?} names {attr}");
        };
        one(
            GcBlock {
                min_free: s("10X"),
                ..Default::default()
            },
            "min_free",
        );
        one(
            GcBlock {
                min_free: s("20G"),
                max_free: s("10G"),
                ..Default::default()
            },
            "max_free",
        );
        one(
            GcBlock {
                max_free: s("10G"),
                ..Default::default()
            },
            "max_free",
        );
        one(
            GcBlock {
                schedule: s("daily;reboot"),
                ..Default::default()
            },
            "schedule",
        );
        one(
            GcBlock {
                schedule: s("daily"),
                delete_older_than: s("1w"),
                ..Default::default()
            },
            "delete_older_than",
        );
        one(
            GcBlock {
                delete_older_than: s("30d"),
                ..Default::default()
            },
            "delete_older_than",
        );
        // Unknown values wait for apply.
        assert!(errors(GcBlock {
            min_free: Value::Unknown,
            max_free: s("1G"),
            ..Default::default()
        })
        .is_empty());
    }

    #[test]
    fn sizes_for_the_config() {
        assert_eq!(sizes(&Value::Null), Some((None, None)));
        assert_eq!(sizes(&Value::Unknown), None);
        let block = GcBlock {
            min_free: Value::Value("1G".into()),
            max_free: Value::Unknown,
            ..Default::default()
        };
        assert_eq!(sizes(&Value::Value(block)), None);
        assert_eq!(
            from_conf(Some(1 << 30), None),
            Value::Value(GcBlock {
                min_free: Value::Value("1G".into()),
                ..Default::default()
            })
        );
    }
}
