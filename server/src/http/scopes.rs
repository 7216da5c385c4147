//! What an access token may reach: the one table of which scope each API route needs.
//!
//! A browser session or a JWT (the person, who signed in) reaches everything their account may.
//! A `vtk_` token reaches a route only when it holds the route's scope
//! (`model::accounts::Scope`); some routes no token reaches at all, whatever its scopes:
//! managing tokens (a token could otherwise mint a bigger one), two-factor sign-in and the
//! password (a token could lock its owner out), and every operator route (an operator's token
//! would skip the two-factor sign-in that `require_operator_two_factor` asks of operators).
//!
//! Routes are matched by their template (`/api/vps/{id}/exec`), so the table is exact. A write
//! route missing from it needs a person (fail closed), and `every_route_is_classified` (in the
//! API tests) walks `/openapi.json` so a new route cannot be forgotten.

use axum::http::Method;
use model::accounts::Scope;

/// What a route asks of the credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// A token with this scope (a person always passes).
    Scope(Scope),
    /// A person: a browser session or a JWT from signing in; never a token.
    Person,
}

/// What `method` on the route `template` needs.
pub fn need(method: &Method, template: &str) -> Need {
    use Scope::*;
    // The catch-alls answer 404 to anyone: no reason to refuse first.
    if template.ends_with("{*rest}") {
        return Need::Scope(Read);
    }
    // Never a token, whatever the method.
    if template.starts_with("/api/tokens")
        || template.starts_with("/api/auth/2fa")
        || template.starts_with("/api/auth/password")
        || template.starts_with("/api/auth/sessions")
        || template.starts_with("/api/admin")
    {
        return Need::Person;
    }
    // Inside the machine, reads too: command output and files are the customer's data.
    let inside = [
        "/api/vps/{id}/exec",
        "/api/vps/batch/exec",
        "/api/vps/{id}/jobs",
        "/api/vps/{id}/jobs/{job_id}",
        "/api/vps/{id}/files",
        "/api/vps/{id}/console",
        "/api/vps/{id}/console/ws",
        "/api/vps/{id}/screen/ws",
        "/api/vps/{id}/vnc-port",
    ];
    if inside.contains(&template) || template.starts_with("/api/vps/{id}/volume") {
        return Need::Scope(Inside);
    }
    // Prometheus scrapes with a token that may do only this (and an operator's).
    if template == "/metrics" {
        return Need::Scope(Metrics);
    }
    if method == Method::GET || method == Method::HEAD || method == Method::OPTIONS {
        return Need::Scope(Read);
    }
    let spend = [
        (Method::POST, "/api/vps"),
        (Method::POST, "/api/vps/batch"),
        (Method::POST, "/v1/servers"),
        (Method::POST, "/v1/instances"),
        (Method::POST, "/api/v1/servers/{id}/rent"),
        (Method::POST, "/api/v1/rentals/{id}/extend"),
        (Method::POST, "/api/billing/add-funds"),
    ];
    if spend.iter().any(|(m, t)| m == method && *t == template) {
        return Need::Scope(Spend);
    }
    let machines = [
        "/api/vps/{id}",
        "/api/vps/batch",
        "/api/vps/{id}/start",
        "/api/vps/{id}/stop",
        "/api/vps/{id}/restart",
        "/api/vps/{id}/pool",
        "/api/vps/{id}/snapshots",
        "/api/vps/{id}/snapshots/{name}",
        "/api/vps/{id}/snapshots/{name}/restore",
        "/v1/servers/{id}",
        "/v1/servers/{id}/start",
        "/v1/servers/{id}/stop",
        "/v1/servers/{id}/reboot",
        "/v1/instances/{id}",
        "/api/keys",
        "/api/keys/{id}",
        "/api/v1/pools",
        "/api/v1/pools/{id}",
        "/api/v1/pools/{id}/accept",
        "/api/v1/pools/{id}/reject",
        "/api/v1/pools/{id}/members",
        "/api/v1/pools/{id}/members/{user_id}",
        "/api/v1/rentals/{id}/move",
        "/api/billing/notify-emails",
        "/api/billing/notify-emails/{id}",
    ];
    if machines.contains(&template) {
        return Need::Scope(Machines);
    }
    // Signing in and registering carry no credential; anything else unknown needs a person.
    Need::Person
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_reads_as_intended() {
        let g = Method::GET;
        let p = Method::POST;
        assert_eq!(
            need(&p, "/api/tokens"),
            Need::Person,
            "no token mints tokens"
        );
        assert_eq!(need(&g, "/api/tokens"), Need::Person);
        assert_eq!(need(&p, "/api/auth/2fa/setup"), Need::Person);
        assert_eq!(need(&g, "/api/admin/nodes"), Need::Person);
        assert_eq!(need(&g, "/api/vps"), Need::Scope(Scope::Read));
        assert_eq!(need(&g, "/api/vps/{id}/files"), Need::Scope(Scope::Inside));
        assert_eq!(need(&p, "/api/vps"), Need::Scope(Scope::Spend));
        assert_eq!(
            need(&Method::DELETE, "/api/vps/{id}"),
            Need::Scope(Scope::Machines)
        );
        assert_eq!(
            need(&p, "/api/v1/servers/{id}/rent"),
            Need::Scope(Scope::Spend)
        );
        assert_eq!(need(&p, "/api/something/new"), Need::Person, "fail closed");
    }
}
