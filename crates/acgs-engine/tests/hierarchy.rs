//! The entity hierarchy of a request: closed transitively (diamonds, chains), and refused when it has a cycle, is
//! deeper than `MAX_HIERARCHY_DEPTH` or holds more than `MAX_ANCESTOR_LINKS` ancestor links.
// Tests and benchmarks fail loudly on unexpected values.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fixtures;

use std::sync::Arc;

use acgs_engine::{
    Constitution, Decision, DecisionRequest, Engine, MAX_ANCESTOR_LINKS, MAX_HIERARCHY_DEPTH, Outcome, RequestError,
};

/// The server refuses larger bodies; the hierarchies refused here fit in one request.
const MAX_BODY_BYTES: usize = 1 << 20;

fn engine() -> Engine {
    let text = fixtures::small_with_role_hierarchy();
    Engine::new(Arc::new(
        Constitution::from_toml("small.toml", &text).unwrap_or_else(|e| panic!("{e}")),
    ))
}

fn decide(engine: &Engine, json: &str) -> Result<Decision, RequestError> {
    let request: DecisionRequest = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
    engine.decide(&request)
}

/// Roles as `(id, parent ids)`.
type Roles = Vec<(String, Vec<String>)>;

fn roles(pairs: &[(&str, &[&str])]) -> Roles {
    pairs
        .iter()
        .map(|(id, parents)| (id.to_string(), parents.iter().map(ToString::to_string).collect()))
        .collect()
}

fn entities_error(result: Result<Decision, RequestError>) -> String {
    match result {
        Err(RequestError::Entities(message)) => message,
        other => panic!("expected an entities error, got {other:?}"),
    }
}

#[test]
fn a_chain_of_1000_roles_is_refused_for_its_depth() {
    let json = fixtures::chain_request(1000);
    assert!(json.len() < MAX_BODY_BYTES);
    // `tool-user` tops the chain: closed without a limit, the request would be allowed (after most of a second).
    let message = entities_error(decide(&engine(), &json));
    // r968 is the first role with 33 levels above it (r968 ... r1000, tool-user).
    assert_eq!(
        message,
        format!(
            "entity `Role::\"r968\"` has 33 levels of ancestors above it; the entity hierarchy may be at most \
             {MAX_HIERARCHY_DEPTH} levels deep"
        )
    );
}

#[test]
fn a_chain_at_the_depth_limit_is_decided() {
    let engine = engine();
    // The agent is MAX_HIERARCHY_DEPTH levels below `tool-user`: the grant reaches it.
    let at_limit = fixtures::chain_request(MAX_HIERARCHY_DEPTH - 1);
    let decision = decide(&engine, &at_limit).unwrap();
    assert_eq!(decision.outcome, Outcome::Allow, "{}", decision.explanation);
    assert_eq!(decision.policy_ids(), vec!["tool-users-invoke"]);
    // The same chain without its last link to `tool-user` is denied: the allow came through the hierarchy.
    let cut = at_limit.replace(
        r#"{"type": "Role", "id": "tool-user"}"#,
        r#"{"type": "Role", "id": "elsewhere"}"#,
    );
    assert_ne!(cut, at_limit);
    assert_eq!(decide(&engine, &cut).unwrap().outcome, Outcome::Deny);
    // One level more is refused, naming the entity that is too deep.
    let message = entities_error(decide(&engine, &fixtures::chain_request(MAX_HIERARCHY_DEPTH)));
    assert!(message.contains("`Agent::\"a1\"`"), "{message}");
    assert!(
        message.contains(&format!("at most {MAX_HIERARCHY_DEPTH} levels deep")),
        "{message}"
    );
}

#[test]
fn a_wide_hierarchy_is_decided_up_to_the_link_limit_and_refused_beyond() {
    let engine = engine();
    // 100 tops, 100 middles in every top, and bottoms in every middle: shallow, but each bottom has 200 ancestors.
    let (tops, middles) = (100, 100);
    assert!(fixtures::wide_links(tops, middles, 199) <= MAX_ANCESTOR_LINKS);
    assert!(fixtures::wide_links(tops, middles, 200) > MAX_ANCESTOR_LINKS);

    let within = fixtures::wide_request(tops, middles, 199);
    let decision = decide(&engine, &within).unwrap();
    assert_eq!(decision.outcome, Outcome::Allow, "{}", decision.explanation);

    let beyond = fixtures::wide_request(tops, middles, 200);
    assert!(beyond.len() < MAX_BODY_BYTES, "{} bytes", beyond.len());
    let message = entities_error(decide(&engine, &beyond));
    assert!(
        message.starts_with(&format!(
            "the entity hierarchy has more than {MAX_ANCESTOR_LINKS} ancestor links"
        )),
        "{message}"
    );
    assert!(message.contains("passed at entity `Role::"), "{message}");
}

#[test]
fn cycles_are_refused_wherever_they_are() {
    let engine = engine();
    let cases: [(&[&str], Roles); 4] = [
        // A role that is its own parent.
        (&["tool-user"], roles(&[("loop", &["loop"])])),
        // A cycle above the principal.
        (
            &["a"],
            roles(&[("a", &["b"]), ("b", &["c"]), ("c", &["a", "tool-user"])]),
        ),
        // A cycle among entities the principal is not in.
        (&["tool-user"], roles(&[("x", &["y"]), ("y", &["z"]), ("z", &["x"])])),
        // A cycle reached through a diamond.
        (
            &["left", "right"],
            roles(&[("left", &["top"]), ("right", &["top"]), ("top", &["right"])]),
        ),
    ];
    for (principal_parents, roles) in cases {
        let json = fixtures::role_request(principal_parents, &roles);
        let message = entities_error(decide(&engine, &json));
        assert!(
            message.contains("is its own ancestor (the parents form a cycle)"),
            "{message}"
        );
    }
}

#[test]
fn diamonds_give_the_exact_ancestor_sets() {
    let engine = engine();
    // a1 in left and right; left in top and side; right in top; top in root; other in elsewhere (not above a1).
    let shape: [(&str, &[&str]); 5] = [
        ("left", &["top", "side"]),
        ("right", &["top"]),
        ("top", &["root"]),
        ("other", &["elsewhere"]),
        ("side", &[]),
    ];
    let ancestors = ["left", "right", "top", "side", "root"];
    // Each role in turn plays `tool-user`, which the permit names: the request is allowed exactly when that role
    // is an ancestor of the agent.
    for candidate in ["left", "right", "top", "side", "root", "other", "elsewhere"] {
        let rename = |id: &str| if id == candidate { "tool-user" } else { id }.to_owned();
        let renamed: Roles = shape
            .iter()
            .map(|(id, parents)| (rename(id), parents.iter().map(|p| rename(p)).collect()))
            .collect();
        let principal_parents = [rename("left"), rename("right")];
        let principal_parents: Vec<&str> = principal_parents.iter().map(String::as_str).collect();
        let json = fixtures::role_request(&principal_parents, &renamed);
        let expected = if ancestors.contains(&candidate) {
            Outcome::Allow
        } else {
            Outcome::Deny
        };
        assert_eq!(
            decide(&engine, &json).unwrap().outcome,
            expected,
            "`{candidate}` as tool-user"
        );
    }
    // An identical copy of a role does not change the hierarchy.
    let mut doubled = roles(&shape);
    doubled.push(("top".into(), vec!["root".into()]));
    let json = fixtures::role_request(&["left"], &doubled).replace("\"root\"", "\"tool-user\"");
    assert_eq!(decide(&engine, &json).unwrap().outcome, Outcome::Allow);
}

#[test]
fn a_dense_hierarchy_is_decided_up_to_the_link_limit_and_refused_beyond() {
    let engine = engine();
    // Roles under two chains of MAX_HIERARCHY_DEPTH roles: within the depth limit, 64 ancestors each, a small body.
    let (chains, len) = (2, MAX_HIERARCHY_DEPTH);
    assert!(fixtures::dense_links(chains, len, 765) <= MAX_ANCESTOR_LINKS);
    assert!(fixtures::dense_links(chains, len, 766) > MAX_ANCESTOR_LINKS);
    let within = fixtures::dense_request(chains, len, 765);
    assert_eq!(decide(&engine, &within).unwrap().outcome, Outcome::Allow);
    let beyond = fixtures::dense_request(chains, len, 766);
    assert!(beyond.len() < 100_000, "{} bytes", beyond.len());
    let message = entities_error(decide(&engine, &beyond));
    assert!(
        message.contains(&format!("more than {MAX_ANCESTOR_LINKS} ancestor links")),
        "{message}"
    );
}
