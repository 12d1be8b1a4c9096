//! Lint reports as a SARIF 2.1.0 log, the format GitHub code scanning reads: the rules with their
//! metadata, and each finding on its spec line by the spec's repository-relative path (so the
//! finding shows on that line in a pull request). Allowed findings are kept as suppressed
//! results, so code scanning shows them as dismissed rather than not at all.

use serde_json::json;
use serde_sarif::sarif::{
    ArtifactLocation, Location, Message, MultiformatMessageString, PhysicalLocation, PropertyBag,
    Region, ReportingConfiguration, ReportingDescriptor, Result as SarifResult, ResultLevel, Run,
    Sarif, Suppression, Tool, ToolComponent,
};

use super::{rules::RULES, Finding, Report, Rule, Severity};

/// Where the SARIF 2.1.0 schema is published (the `$schema` GitHub expects).
pub const SCHEMA_URI: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// One SARIF log with one run over every report.
pub fn to_sarif(reports: &[Report]) -> Sarif {
    let mut results = Vec::new();
    for r in reports {
        for f in &r.findings {
            results.push(result(r, f, None));
        }
        for f in &r.allowed {
            results.push(result(r, f, Some(allowed_kind(r, f))));
        }
    }
    let driver = ToolComponent::builder()
        .name("foxbox".to_string())
        .version(env!("CARGO_PKG_VERSION").to_string())
        .rules(RULES.iter().map(descriptor).collect::<Vec<_>>())
        .build();
    let run = Run::builder()
        .tool(Tool::builder().driver(driver).build())
        .results(results)
        .column_kind(json!("unicodeCodePoints"))
        .build();
    Sarif::builder()
        .schema(SCHEMA_URI.to_string())
        .version(json!("2.1.0"))
        .runs(vec![run])
        .build()
}

fn level(rule: &Rule) -> serde_json::Value {
    json!(rule.severity.as_str())
}

fn text(s: &str) -> MultiformatMessageString {
    MultiformatMessageString::builder()
        .text(s.to_string())
        .build()
}

fn descriptor(rule: &Rule) -> ReportingDescriptor {
    ReportingDescriptor::builder()
        .id(rule.id.to_string())
        .name(rule.name.to_string())
        .short_description(text(rule.rationale))
        .full_description(text(rule.rationale))
        .help(text(rule.help))
        .default_configuration(ReportingConfiguration::builder().level(level(rule)).build())
        .properties(
            PropertyBag::builder()
                .tags(vec!["security".to_string(), "foxbox".to_string()])
                .build(),
        )
        .build()
}

/// `inSource` for a `# foxbox: allow` comment, `external` for the spec's `[lint] allow`.
fn allowed_kind(r: &Report, f: &Finding) -> &'static str {
    if r.spec_allows.iter().any(|id| id == f.rule.id) {
        "external"
    } else {
        "inSource"
    }
}

fn result(r: &Report, f: &Finding, suppressed: Option<&str>) -> SarifResult {
    let region = Region::builder()
        .start_line(f.line as i64)
        .start_column(f.column as i64)
        .end_line(f.end_line as i64)
        .end_column(f.end_column as i64)
        .build();
    let location = Location::builder()
        .physical_location(
            PhysicalLocation::builder()
                .artifact_location(
                    ArtifactLocation::builder()
                        .uri(r.repo_path.clone())
                        .uri_base_id("%SRCROOT%".to_string())
                        .build(),
                )
                .region(region)
                .build(),
        )
        .build();
    let index = RULES.iter().position(|x| x.id == f.rule.id).unwrap_or(0);
    let message = Message::builder()
        .text(format!("{}: {}", f.message, f.rule.rationale))
        .build();
    let b = SarifResult::builder()
        .rule_id(f.rule.id.to_string())
        .rule_index(index as i64)
        .level(match f.rule.severity {
            Severity::Error => ResultLevel::Error,
            Severity::Warning => ResultLevel::Warning,
            Severity::Note => ResultLevel::Note,
        })
        .message(message)
        .locations(vec![location]);
    match suppressed {
        Some(kind) => b
            .suppressions(vec![Suppression::builder().kind(json!(kind)).build()])
            .build(),
        None => b.build(),
    }
}
