//! Running a constitution's own test cases (like `opa test`), with a pass/fail report.

use std::fmt;

use serde::Serialize;

use crate::constitution::Constitution;
use crate::detectors::Detectors;
use crate::document::Outcome;

/// Result of one test case.
#[derive(Debug, Clone, Serialize)]
pub struct TestResult {
    /// Test name.
    pub name: String,
    /// Expected outcome.
    pub expected: Outcome,
    /// Actual outcome (`None` if the request itself was rejected).
    pub actual: Option<Outcome>,
    /// Expected deciding policies, if the test names them.
    pub expected_policies: Option<Vec<String>>,
    /// Actual deciding policies.
    pub actual_policies: Vec<String>,
    /// Why the request could not be evaluated, or the evaluation errors.
    pub error: Option<String>,
}

impl TestResult {
    /// Whether the outcome (and, if named, the deciding policies) matched.
    pub fn passed(&self) -> bool {
        self.actual == Some(self.expected)
            && self.expected_policies.as_ref().is_none_or(|expected| {
                let mut e = expected.clone();
                e.sort();
                e.dedup();
                e == self.actual_policies
            })
    }

    /// One line: PASS/FAIL, name and, on failure, what differed.
    pub fn summary(&self) -> String {
        if self.passed() {
            return format!("PASS {}", self.name);
        }
        let mut line = format!("FAIL {}: expected {}", self.name, self.expected);
        if let Some(p) = &self.expected_policies {
            line.push_str(&format!(" by [{}]", p.join(", ")));
        }
        match self.actual {
            Some(actual) => line.push_str(&format!(", got {actual} by [{}]", self.actual_policies.join(", "))),
            None => line.push_str(", got no decision"),
        }
        if let Some(err) = &self.error {
            line.push_str(&format!(" ({err})"));
        }
        line
    }
}

/// Results of all test cases of a constitution.
#[derive(Debug, Clone, Serialize)]
pub struct TestReport {
    /// One result per test case, in file order.
    pub results: Vec<TestResult>,
}

impl TestReport {
    /// Number of passing tests.
    pub fn passed(&self) -> usize {
        self.results.iter().filter(|r| r.passed()).count()
    }

    /// Number of failing tests.
    pub fn failed(&self) -> usize {
        self.results.len() - self.passed()
    }
}

impl fmt::Display for TestReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in &self.results {
            writeln!(f, "{}", r.summary())?;
        }
        write!(f, "{} passed, {} failed", self.passed(), self.failed())
    }
}

/// Run every test case of `constitution`.
pub(crate) fn run(constitution: &Constitution, detectors: &Detectors) -> TestReport {
    let results = constitution
        .tests()
        .iter()
        .map(
            |case| match crate::decision::decide_fixture(constitution, detectors, &case.request) {
                Ok(decision) => TestResult {
                    name: case.name.clone(),
                    expected: case.expect,
                    actual: Some(decision.outcome),
                    expected_policies: case.expect_policies.clone(),
                    actual_policies: decision.policy_ids(),
                    error: (!decision.errors.is_empty()).then(|| {
                        decision
                            .errors
                            .iter()
                            .map(|e| format!("{}: {}", e.policy_id, e.message))
                            .collect::<Vec<_>>()
                            .join("; ")
                    }),
                },
                Err(e) => TestResult {
                    name: case.name.clone(),
                    expected: case.expect,
                    actual: None,
                    expected_policies: case.expect_policies.clone(),
                    actual_policies: Vec::new(),
                    error: Some(e.to_string()),
                },
            },
        )
        .collect();
    TestReport { results }
}
