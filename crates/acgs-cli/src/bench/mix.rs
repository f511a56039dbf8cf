//! The request mix: the JSON bodies of a constitution's test-case requests, serialised once before the run.

use acgs_engine::ConstitutionDocument;
use anyhow::{Context, ensure};

/// Benign business prose used for `--content-bytes`: no digits, no `@`, no colons, no injection phrases, so the
/// detectors take their realistic common path (scan, find nothing).
const BUSINESS_PROSE: &str = "The quarterly planning review covers the regional sales pipeline, supplier lead \
times and the hiring plan for the support team. Customer retention improved after the onboarding guide was \
rewritten, and the finance group expects operating costs to stay within the approved budget. Please summarise the \
main risks for the steering committee, suggest two options for the warehouse consolidation, and keep the tone \
neutral and factual. The logistics partner confirmed that deliveries to the northern stores will resume next week \
once the new routing schedule is in place. Marketing would like a short comparison of the spring campaign results \
against last year, focusing on conversion and repeat purchases rather than raw traffic. ";

/// Exactly `len` bytes of benign business prose (ASCII, the paragraph repeated as needed).
fn business_prose(len: usize) -> String {
    BUSINESS_PROSE.chars().cycle().take(len).collect()
}

/// JSON bodies of every test-case request of the constitution `toml_text`, in file order, as a caller sends them:
/// the entities whose facts come from the registry named by type and id only. With `content_bytes > 0` each
/// request's `content` is replaced by that many bytes of [`business_prose`].
pub(super) fn load_mix(toml_text: &str, content_bytes: usize) -> anyhow::Result<Vec<Vec<u8>>> {
    let doc: ConstitutionDocument = toml::from_str(toml_text).context("parsing the constitution TOML")?;
    ensure!(
        !doc.tests.is_empty(),
        "the constitution has no [[tests]], so there are no requests to send"
    );
    let constitution = acgs_engine::Constitution::compile("mix", toml_text).context("compiling the constitution")?;
    let content = (content_bytes > 0).then(|| business_prose(content_bytes));
    doc.tests
        .into_iter()
        .map(|test| {
            let (mut request, _) = acgs_engine::split_registry_facts(&constitution, &test.request)
                .with_context(|| format!("the request of test `{}`", test.name))?;
            if let Some(content) = &content {
                request.content = Some(content.clone());
            }
            serde_json::to_vec(&request).with_context(|| format!("serialising the request of test `{}`", test.name))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_comes_from_the_embedded_constitution() -> anyhow::Result<()> {
        let doc: ConstitutionDocument = toml::from_str(crate::EXAMPLE_CONSTITUTION)?;
        let mix = load_mix(crate::EXAMPLE_CONSTITUTION, 0)?;
        assert_eq!(mix.len(), doc.tests.len());
        assert!(!mix.is_empty());
        let constitution = acgs_engine::Constitution::compile("example", crate::EXAMPLE_CONSTITUTION)?;
        for (body, test) in mix.iter().zip(&doc.tests) {
            let back: acgs_engine::DecisionRequest = serde_json::from_slice(body)?;
            // Agents, users and roles are named by type and id only: the registry holds their facts.
            assert_eq!(back, acgs_engine::split_registry_facts(&constitution, &test.request)?.0);
            assert!(back.principal.attributes.is_empty() && back.principal.parents.is_empty());
        }
        Ok(())
    }

    #[test]
    fn content_bytes_replaces_content_everywhere() -> anyhow::Result<()> {
        let mix = load_mix(crate::EXAMPLE_CONSTITUTION, 4096)?;
        for body in &mix {
            let request: acgs_engine::DecisionRequest = serde_json::from_slice(body)?;
            assert_eq!(request.content.as_deref().map(str::len), Some(4096));
        }
        Ok(())
    }

    #[test]
    fn mix_needs_tests() {
        let without_tests = crate::EXAMPLE_CONSTITUTION
            .split("\n[[tests]]")
            .next()
            .unwrap_or_default()
            .to_owned();
        let err = load_mix(&without_tests, 0)
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(err.contains("no [[tests]]"), "{err}");
        assert!(load_mix("not toml [", 0).is_err());
    }

    #[test]
    fn prose_is_exact_length_and_benign() {
        for len in [1, 100, BUSINESS_PROSE.len(), BUSINESS_PROSE.len() * 3 + 17, 65_536] {
            let text = business_prose(len);
            assert_eq!(text.len(), len);
            assert!(text.is_ascii());
        }
        let detectors = acgs_engine::Detectors::new();
        let text = business_prose(64 * 1024);
        let found = detectors.scan(&text);
        assert!(found.is_empty(), "benign prose triggered detectors: {found:?}");
    }
}
