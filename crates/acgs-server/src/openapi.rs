//! The OpenAPI document ([`ApiDoc`]): the paths and schemas utoipa derives from the handlers, completed in one
//! place ([`SharedResponses`]) with what every operation has in common and the annotations do not repeat — the
//! problem responses an operation can give (by its access in [`crate::access::ENDPOINTS`], whether it reads a
//! body, whether it has path parameters), all as `application/problem+json` with the [`Problem`] schema, and
//! the `X-Constitutional-Hash` request and response header.

use utoipa::OpenApi;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::{Content, Ref, RefOr, Required};

use crate::access::{Access, access_for};
use crate::error::Problem;
use crate::routes;

/// The media type of every error response (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The name of the constitutional-hash header as the document spells it.
const HASH_HEADER_NAME: &str = "X-Constitutional-Hash";

/// The OpenAPI description of the API, generated from the handlers and types.
#[derive(OpenApi)]
#[openapi(
    info(title = "ACGS", description = "AI Constitutional Governance System: policy decisions for AI agents."),
    paths(
        routes::decisions::create,
        routes::decisions::create_batch,
        routes::decisions::list,
        routes::decisions::show,
        routes::audit::receipt,
        routes::audit::key,
        routes::audit::checkpoint,
        routes::audit::entry,
        routes::audit::inclusion,
        routes::audit::consistency,
        routes::constitution::show,
        routes::constitution::principles,
        routes::system::health,
        routes::system::ready,
        routes::system::metrics,
        routes::system::openapi,
        routes::auth::login,
        routes::auth::refresh,
        routes::auth::logout,
        routes::auth::me,
        routes::auth::change_password,
        routes::auth::users,
        routes::auth::create_user,
        routes::auth::update_user,
        routes::auth::unlock_user,
        routes::auth::api_keys,
        routes::auth::create_api_key,
        routes::auth::revoke_api_key,
        routes::auth::rotate_signing_key,
        routes::auth::rotate_all,
        routes::auth::jwks,
        routes::governance::versions,
        routes::governance::version,
        routes::governance::list,
        routes::governance::draft,
        routes::governance::show,
        routes::governance::diff,
        routes::governance::open,
        routes::governance::vote,
        routes::governance::cancel,
        routes::governance::veto,
        routes::governance::execute,
        routes::governance::emergency_status,
        routes::governance::halt,
        routes::governance::resume,
        routes::transfers::list,
        routes::transfers::propose,
        routes::transfers::show,
        routes::transfers::approve,
        routes::transfers::accept,
        routes::appeals::list,
        routes::appeals::file,
        routes::appeals::show,
        routes::appeals::rule,
        routes::verify::start,
        routes::verify::show,
        routes::entities::list,
        routes::entities::show,
        routes::entities::put,
        routes::entities::patch,
        routes::entities::delete,
        routes::entities::import,
        routes::entities::export,
        routes::entities::held_changes,
        routes::entities::approve_change,
        routes::entities::reject_change,
    ),
    components(schemas(Problem)),
    modifiers(&BearerAuth, &SharedResponses),
    security(("bearer" = [])),
    tags(
        (name = "decisions", description = "Ask for decisions and read the decision log"),
        (name = "constitution", description = "The active constitution"),
        (name = "audit", description = "The tamper-evident audit log: key, checkpoints, entries, proofs, receipts"),
        (name = "system", description = "Health, readiness, metrics, API description"),
        (name = "auth", description = "Logins, tokens, users, API keys and signing keys (see docs/security.md)"),
        (name = "governance", description = "Amendments, council votes, vetoes, the emergency halt (see docs/governance.md)"),
        (name = "entities", description = "The entity registry: the facts about agents, users, roles and resources that only ACGS asserts (see docs/entities.md)"),
    )
)]
pub struct ApiDoc;

/// Declares the bearer scheme (API key or access token) every protected endpoint uses.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "An API key (`acgs_…`) or an access token (JWT) from `POST /v1/auth/login`",
            ))
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// A problem response that many operations can give, defined once under `components/responses`.
struct Shared {
    status: u16,
    name: &'static str,
    description: &'static str,
}

const BAD_REQUEST: Shared = Shared {
    status: 400,
    name: "BadRequest",
    description: "Malformed request: a parameter or body that does not match the schema, a body with a \
                  duplicate key, or a repeated `X-Constitutional-Hash` header",
};
const UNAUTHORIZED: Shared = Shared {
    status: 401,
    name: "Unauthorized",
    description: "No credentials, or credentials that authenticate nobody (`WWW-Authenticate: Bearer`)",
};
const FORBIDDEN: Shared = Shared {
    status: 403,
    name: "Forbidden",
    description: "The caller's roles lack the permission this operation needs (recorded in the audit log)",
};
const NOT_FOUND: Shared = Shared {
    status: 404,
    name: "NotFound",
    description: "No such resource",
};
const METHOD_NOT_ALLOWED: Shared = Shared {
    status: 405,
    name: "MethodNotAllowed",
    description: "The path parameter spells a fixed path of the API that does not have this method",
};
const REQUEST_TIMEOUT: Shared = Shared {
    status: 408,
    name: "RequestTimeout",
    description: "The body did not arrive within `body_timeout_secs` of the head; the connection is closed",
};
const HASH_MISMATCH: Shared = Shared {
    status: 409,
    name: "ConstitutionalHashMismatch",
    description: "`X-Constitutional-Hash` names another constitution than the active one (the problem carries \
                  `expected_hash`, `active_hash` and `active_hash_short`)",
};
const PAYLOAD_TOO_LARGE: Shared = Shared {
    status: 413,
    name: "PayloadTooLarge",
    description: "The body, or the `Content-Length` a request declares (whatever the operation), exceeds \
                  `max_body_bytes`; the connection is closed",
};
const UNSUPPORTED_MEDIA_TYPE: Shared = Shared {
    status: 415,
    name: "UnsupportedMediaType",
    description: "The body is not `application/json`",
};
const INTERNAL: Shared = Shared {
    status: 500,
    name: "InternalError",
    description: "A bug (details are logged, not returned), or stored data that fails an integrity check \
                  (`urn:acgs:problem:integrity-failure`)",
};
const UNAVAILABLE: Shared = Shared {
    status: 503,
    name: "Unavailable",
    description: "Storage is unavailable or the decision log is overloaded; retry after `Retry-After` seconds",
};

/// Every shared response, in status order.
const SHARED: &[&Shared] = &[
    &BAD_REQUEST,
    &UNAUTHORIZED,
    &FORBIDDEN,
    &NOT_FOUND,
    &METHOD_NOT_ALLOWED,
    &REQUEST_TIMEOUT,
    &HASH_MISMATCH,
    &PAYLOAD_TOO_LARGE,
    &UNSUPPORTED_MEDIA_TYPE,
    &INTERNAL,
    &UNAVAILABLE,
];

/// Completes every operation: the shared problem responses it can give, `application/problem+json` for the
/// problem responses its annotation lists, and the `X-Constitutional-Hash` header (request and response).
pub struct SharedResponses;

impl utoipa::Modify for SharedResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        // utoipa 5.5 emits `#[schema(min_properties = …)]` as `maxProperties`, so it is set here.
        if let Some(RefOr::T(Schema::Object(patch))) = components.schemas.get_mut("UserPatch") {
            patch.min_properties = Some(1);
        }
        for shared in SHARED {
            components.responses.insert(
                shared.name.to_owned(),
                RefOr::T(problem(shared.status, shared.description)),
            );
        }
        let routes: Vec<(String, Vec<&'static str>)> = openapi
            .paths
            .paths
            .iter_mut()
            .map(|(path, item)| (path.clone(), operations(item).into_iter().map(|(m, _)| m).collect()))
            .collect();
        for (path, item) in openapi.paths.paths.iter_mut() {
            for (method, operation) in operations(item) {
                complete(path, method, operation, &routes);
            }
        }
    }
}

/// The operations of a path item with their methods.
fn operations(item: &mut PathItem) -> Vec<(&'static str, &mut Operation)> {
    [
        ("GET", &mut item.get),
        ("PUT", &mut item.put),
        ("POST", &mut item.post),
        ("DELETE", &mut item.delete),
        ("PATCH", &mut item.patch),
        ("HEAD", &mut item.head),
        ("OPTIONS", &mut item.options),
        ("TRACE", &mut item.trace),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.as_mut().map(|o| (method, o)))
    .collect()
}

/// What one operation can answer besides what its annotation says.
fn shared_for(path: &str, method: &str, operation: &Operation, routes: &[(String, Vec<&str>)]) -> Vec<&'static Shared> {
    // Every request passes the constitutional-hash check and the declared-length check, and any handler can fail.
    let mut shared = vec![&BAD_REQUEST, &HASH_MISMATCH, &PAYLOAD_TOO_LARGE, &INTERNAL];
    match access_for(method, path) {
        Some(Access::Public) | None => {}
        // Authentication reads the credential store, and a refusal is recorded in the audit log.
        Some(Access::Authenticated) => shared.extend([&UNAUTHORIZED, &UNAVAILABLE]),
        Some(Access::Permission(_) | Access::UserPermission(_) | Access::Metrics) => {
            shared.extend([&UNAUTHORIZED, &FORBIDDEN, &UNAVAILABLE])
        }
    }
    if operation.request_body.is_some() {
        // Every operation with a body stores something (a decision, a credential, a session).
        shared.extend([&REQUEST_TIMEOUT, &UNSUPPORTED_MEDIA_TYPE, &UNAVAILABLE]);
    }
    if path.contains('{') {
        // An empty or unknown path parameter: no route, or no such resource.
        shared.push(&NOT_FOUND);
    }
    if shadowed_by_fixed_path(path, method, routes) {
        shared.push(&METHOD_NOT_ALLOWED);
    }
    shared
}

/// Whether some value of `path`'s parameters spells another route, which the router prefers (fixed segments
/// win over parameters), that lacks `method`: such a request is answered 405.
fn shadowed_by_fixed_path(path: &str, method: &str, routes: &[(String, Vec<&str>)]) -> bool {
    let segments: Vec<&str> = path.split('/').collect();
    routes.iter().any(|(other, methods)| {
        let others: Vec<&str> = other.split('/').collect();
        other != path
            && !methods.contains(&method)
            && others.len() == segments.len()
            && segments
                .iter()
                .zip(&others)
                .all(|(mine, theirs)| mine == theirs || (is_parameter(mine) && !is_parameter(theirs)))
    })
}

fn is_parameter(segment: &str) -> bool {
    segment.starts_with('{') && segment.ends_with('}')
}

fn complete(path: &str, method: &str, operation: &mut Operation, routes: &[(String, Vec<&str>)]) {
    let shared = shared_for(path, method, operation, routes);
    for (status, response) in operation.responses.responses.iter_mut() {
        let RefOr::T(response) = response else { continue };
        if is_problem(response) {
            // The annotation's own description says what this operation means by it; the shared one adds what
            // every operation means by it.
            let general = shared.iter().find(|s| s.status.to_string() == *status);
            let description = match general {
                Some(s) if response.description.is_empty() => s.description.to_owned(),
                Some(s) if s.description != response.description => {
                    format!("{}. {}", response.description, s.description)
                }
                _ if response.description.is_empty() => reason(status).to_owned(),
                _ => response.description.clone(),
            };
            *response = problem(status.parse().unwrap_or(500), &description);
        } else {
            if response.description.is_empty() {
                response.description = reason(status).to_owned();
            }
            add_hash_header(response);
        }
    }
    for s in shared {
        operation
            .responses
            .responses
            .entry(s.status.to_string())
            .or_insert_with(|| RefOr::Ref(Ref::from_response_name(s.name)));
    }
    let parameters = operation.parameters.get_or_insert_with(Vec::new);
    if !parameters
        .iter()
        .any(|p| p.parameter_in == ParameterIn::Header && p.name.eq_ignore_ascii_case(HASH_HEADER_NAME))
    {
        parameters.push(hash_parameter());
    }
}

/// The reason phrase of a status (`OK`, `Not Found`), for responses the annotations leave undescribed.
fn reason(status: &str) -> &'static str {
    status
        .parse()
        .ok()
        .and_then(|s| axum::http::StatusCode::from_u16(s).ok())
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Response")
}

/// Whether a response's body is a problem document (the annotations say `body = Problem`).
fn is_problem(response: &Response) -> bool {
    response.content.values().any(
        |c| matches!(&c.schema, Some(RefOr::Ref(r)) if r.ref_location == Ref::from_schema_name("Problem").ref_location),
    )
}

/// A problem response with `status`'s headers.
fn problem(status: u16, description: &str) -> Response {
    let mut response = ResponseBuilder::new()
        .description(description)
        .content(PROBLEM_JSON, Content::new(Some(Ref::from_schema_name("Problem"))))
        .build();
    let text = |description: &str| {
        HeaderBuilder::new()
            .schema(ObjectBuilder::new().schema_type(Type::String))
            .description(Some(description))
            .build()
    };
    match status {
        401 => {
            response.headers.insert(
                "WWW-Authenticate".into(),
                text("`Bearer realm=\"acgs\"`: send an API key or an access token"),
            );
        }
        429 | 503 => {
            response.headers.insert(
                "Retry-After".into(),
                HeaderBuilder::new()
                    .schema(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)))
                    .description(Some("Seconds to wait before retrying"))
                    .build(),
            );
        }
        _ => {}
    }
    add_hash_header(&mut response);
    response
}

/// Every response carries the active constitution's short hash.
fn add_hash_header(response: &mut Response) {
    response.headers.insert(
        HASH_HEADER_NAME.into(),
        HeaderBuilder::new()
            .schema(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some("^[0-9a-f]{16}$")),
            )
            .description(Some(
                "The active constitution's short hash (16 hex digits); on every response",
            ))
            .build(),
    );
}

/// The optional request header every operation accepts.
fn hash_parameter() -> Parameter {
    ParameterBuilder::new()
        .name(HASH_HEADER_NAME)
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "The constitution the caller expects: its full hash or a prefix of at least 16 hex digits; 409 if the \
             active constitution has another. At most one such header (400 otherwise).",
        ))
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .build()
}
