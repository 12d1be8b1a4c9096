//! A run-time failure as a miette report, drawn against the spec source when the failing step
//! came from a spec line. (The spec work brings the shared renderer; this one is the
//! executor's until then.)

use miette::{LabeledSpan, MietteDiagnostic, NamedSource, Report};

use crate::diag::Diagnostic;
use crate::plan::{Origin, Plan};

pub fn report(plan: &Plan, d: &Diagnostic) -> Report {
    let mut m = MietteDiagnostic::new(d.message.clone()).with_code(d.code.clone());
    if let Some(h) = &d.help {
        m = m.with_help(h.clone());
    }
    match (&plan.origin, d.span) {
        (Origin::Spec { path, text, .. }, Some(span)) if !text.is_empty() => {
            m = m.with_label(LabeledSpan::new_primary_with_span(d.label.clone(), span));
            Report::new(m)
                .with_source_code(NamedSource::new(path.display().to_string(), text.clone()))
        }
        _ => Report::new(m),
    }
}
