//! Logging as Terraform expects from a plugin: hclog-style JSON lines on stderr
//! (`@level`, `@message`, `@timestamp`, `@module`, plus fields), at the level
//! named by `TF_LOG_PROVIDER`, else `TF_LOG`. Terraform parses these lines and
//! shows them as this provider's entries. Only the provider's own events are
//! written; the gRPC stack's are dropped.

use std::io::Write;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

const OUR_TARGET: &str = env!("CARGO_CRATE_NAME");

/// Map Terraform's log level variables to a maximum level; `None` means off.
pub fn level_from_env(provider: Option<&str>, core: Option<&str>) -> Option<Level> {
    let raw = provider.filter(|v| !v.trim().is_empty()).or(core)?;
    match raw.trim().to_ascii_uppercase().as_str() {
        "TRACE" | "JSON" => Some(Level::TRACE),
        "DEBUG" => Some(Level::DEBUG),
        "INFO" => Some(Level::INFO),
        "WARN" => Some(Level::WARN),
        "ERROR" => Some(Level::ERROR),
        "OFF" | "" => None,
        // Terraform treats an unknown value as TRACE.
        _ => Some(Level::TRACE),
    }
}

/// Install the stderr JSON logger if Terraform asked for logs.
pub fn init() {
    let level = level_from_env(
        std::env::var("TF_LOG_PROVIDER").ok().as_deref(),
        std::env::var("TF_LOG").ok().as_deref(),
    );
    if let Some(level) = level {
        let subscriber = tracing_subscriber::registry().with(HclogLayer { max: level });
        let _ = tracing::subscriber::set_global_default(subscriber);
    }
}

struct HclogLayer {
    max: Level,
}

#[derive(Default)]
struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(key(field), Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(key(field), Value::String(value.to_string()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(key(field), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(key(field), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(key(field), value.into());
    }
}

fn key(field: &Field) -> String {
    match field.name() {
        "message" => "@message".into(),
        name => name.to_string(),
    }
}

/// `terraform_provider_nixbuild::ssh::exec` → `nixbuild.ssh.exec`.
fn module(target: &str) -> String {
    let rest = target.strip_prefix(OUR_TARGET).unwrap_or(target);
    format!("nixbuild{}", rest.replace("::", "."))
}

/// hclog's timestamp layout, `2006-01-02T15:04:05.000000Z07:00`, in UTC.
pub fn timestamp(now: time::OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    now.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_default()
}

/// One log line for `event`.
pub fn render(level: &Level, target: &str, mut fields: Map<String, Value>) -> String {
    let mut line = Map::new();
    line.insert("@level".into(), level.as_str().to_ascii_lowercase().into());
    line.insert(
        "@message".into(),
        fields
            .remove("@message")
            .unwrap_or(Value::String(String::new())),
    );
    line.insert("@module".into(), module(target).into());
    line.insert(
        "@timestamp".into(),
        timestamp(time::OffsetDateTime::now_utc()).into(),
    );
    line.extend(fields);
    Value::Object(line).to_string()
}

impl<S: Subscriber> Layer<S> for HclogLayer {
    fn enabled(&self, metadata: &tracing::Metadata<'_>, _: Context<'_, S>) -> bool {
        metadata.target().starts_with(OUR_TARGET) && *metadata.level() <= self.max
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let metadata = event.metadata();
        if !metadata.target().starts_with(OUR_TARGET) || *metadata.level() > self.max {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut line = render(metadata.level(), metadata.target(), fields.0);
        line.push('\n');
        // One write per line keeps lines whole when tasks log concurrently.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_terraform() {
        assert_eq!(level_from_env(None, None), None);
        assert_eq!(level_from_env(None, Some("debug")), Some(Level::DEBUG));
        assert_eq!(
            level_from_env(Some("info"), Some("trace")),
            Some(Level::INFO)
        );
        assert_eq!(level_from_env(Some(""), Some("WARN")), Some(Level::WARN));
        assert_eq!(level_from_env(None, Some("json")), Some(Level::TRACE));
        assert_eq!(level_from_env(Some("off"), Some("trace")), None);
    }

    #[test]
    fn line_is_hclog_json() {
        let mut fields = Map::new();
        fields.insert("@message".into(), "connected".into());
        fields.insert("host".into(), "root@h:22".into());
        let line = render(
            &Level::INFO,
            "terraform_provider_nixbuild::ssh::pool",
            fields,
        );
        let parsed: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed["@level"], "info");
        assert_eq!(parsed["@message"], "connected");
        assert_eq!(parsed["@module"], "nixbuild.ssh.pool");
        assert_eq!(parsed["host"], "root@h:22");
        let ts = parsed["@timestamp"].as_str().unwrap();
        // 2006-01-02T15:04:05.000000Z
        assert_eq!(ts.len(), 27, "{ts}");
        assert!(ts.ends_with('Z') && ts.as_bytes()[10] == b'T' && ts.as_bytes()[19] == b'.');
    }
}
