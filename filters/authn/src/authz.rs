//! Authorization on a verified identity's claims, per rule: required scopes (`scope` as a
//! space-separated string, or `scp` as a string or array), roles read from a configured claim
//! (a dotted path such as `realm_access.roles`), and claim equals / contains value.

use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
pub enum ClaimCondition {
    Equals(Value),
    /// An array element equal to the value, or a string whose space-separated items include it.
    Contains(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClaimRequirement {
    /// Dotted path into the claims.
    pub path: Vec<String>,
    pub condition: ClaimCondition,
}

/// What a rule demands beyond a valid identity. Empty = nothing more.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Authorization {
    /// Every one of these scopes.
    pub scopes: Vec<String>,
    /// Any one of these roles.
    pub roles: Vec<String>,
    /// Every one of these claim conditions.
    pub claims: Vec<ClaimRequirement>,
}

/// Why authorization failed: a missing scope is `insufficient_scope`, the rest is forbidden.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthzFailure {
    Scope,
    Forbidden,
}

/// The value at a dotted path.
pub fn lookup<'a>(claims: &'a Map<String, Value>, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut value = claims.get(first)?;
    for segment in rest {
        value = value.as_object()?.get(segment)?;
    }
    Some(value)
}

/// Whether `value` (a string of space-separated items, or an array of strings) holds `item`.
fn holds(value: &Value, item: &str) -> bool {
    match value {
        Value::String(s) => s.split(' ').any(|x| x == item),
        Value::Array(list) => list.iter().any(|v| v.as_str() == Some(item)),
        _ => false,
    }
}

fn has_scope(claims: &Map<String, Value>, scope: &str) -> bool {
    ["scope", "scp"]
        .iter()
        .any(|name| claims.get(*name).is_some_and(|v| holds(v, scope)))
}

impl Authorization {
    pub fn is_empty(&self) -> bool {
        self.scopes.is_empty() && self.roles.is_empty() && self.claims.is_empty()
    }

    /// Checks `claims` (API-key identities have none: pass `None`) with roles at `roles_path`.
    pub fn check(
        &self,
        claims: Option<&Map<String, Value>>,
        roles_path: &[String],
    ) -> Result<(), AuthzFailure> {
        if self.is_empty() {
            return Ok(());
        }
        let Some(claims) = claims else {
            return Err(if self.scopes.is_empty() {
                AuthzFailure::Forbidden
            } else {
                AuthzFailure::Scope
            });
        };
        if !self.scopes.iter().all(|s| has_scope(claims, s)) {
            return Err(AuthzFailure::Scope);
        }
        if !self.roles.is_empty() {
            let roles = lookup(claims, roles_path);
            if !self
                .roles
                .iter()
                .any(|r| roles.is_some_and(|v| holds(v, r)))
            {
                return Err(AuthzFailure::Forbidden);
            }
        }
        let claims_ok = self.claims.iter().all(|req| {
            lookup(claims, &req.path).is_some_and(|v| match &req.condition {
                ClaimCondition::Equals(expected) => v == expected,
                ClaimCondition::Contains(item) => holds(v, item),
            })
        });
        if claims_ok {
            Ok(())
        } else {
            Err(AuthzFailure::Forbidden)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    fn path(p: &str) -> Vec<String> {
        p.split('.').map(String::from).collect()
    }

    fn scopes(list: &[&str]) -> Authorization {
        Authorization {
            scopes: list.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn scopes_from_scope_string_or_scp() {
        let cases = [
            (
                "space separated",
                json!({"scope": "read write"}),
                &["read", "write"][..],
                Ok(()),
            ),
            (
                "missing one",
                json!({"scope": "read"}),
                &["read", "write"][..],
                Err(AuthzFailure::Scope),
            ),
            (
                "no partial match",
                json!({"scope": "reader"}),
                &["read"][..],
                Err(AuthzFailure::Scope),
            ),
            (
                "scp array",
                json!({"scp": ["read", "admin"]}),
                &["admin"][..],
                Ok(()),
            ),
            (
                "scp string",
                json!({"scp": "admin"}),
                &["admin"][..],
                Ok(()),
            ),
            (
                "no scope claim",
                json!({}),
                &["read"][..],
                Err(AuthzFailure::Scope),
            ),
            (
                "scope not string",
                json!({"scope": 5}),
                &["read"][..],
                Err(AuthzFailure::Scope),
            ),
            ("none required", json!({}), &[][..], Ok(())),
        ];
        for (name, c, required, expected) in cases {
            assert_eq!(
                scopes(required).check(Some(&claims(c)), &path("roles")),
                expected,
                "{name}"
            );
        }
    }

    #[test]
    fn roles_any_of_at_a_dotted_path() {
        let rule = Authorization {
            roles: vec!["admin".into(), "ops".into()],
            ..Default::default()
        };
        let kc = path("realm_access.roles");
        let cases = [
            (json!({"realm_access": {"roles": ["user", "ops"]}}), Ok(())),
            (
                json!({"realm_access": {"roles": ["user"]}}),
                Err(AuthzFailure::Forbidden),
            ),
            (
                json!({"realm_access": "admin"}),
                Err(AuthzFailure::Forbidden),
            ),
            (json!({}), Err(AuthzFailure::Forbidden)),
        ];
        for (c, expected) in cases {
            assert_eq!(rule.check(Some(&claims(c.clone())), &kc), expected, "{c}");
        }
    }

    #[test]
    fn claim_equals_and_contains() {
        let rule = Authorization {
            claims: vec![
                ClaimRequirement {
                    path: path("tenant"),
                    condition: ClaimCondition::Equals(json!("acme")),
                },
                ClaimRequirement {
                    path: path("groups"),
                    condition: ClaimCondition::Contains("dev".into()),
                },
            ],
            ..Default::default()
        };
        let r = path("roles");
        assert_eq!(
            rule.check(
                Some(&claims(json!({"tenant": "acme", "groups": ["dev"]}))),
                &r
            ),
            Ok(())
        );
        assert_eq!(
            rule.check(
                Some(&claims(json!({"tenant": "acme", "groups": "ops dev"}))),
                &r
            ),
            Ok(())
        );
        assert_eq!(
            rule.check(
                Some(&claims(json!({"tenant": "evil", "groups": ["dev"]}))),
                &r
            ),
            Err(AuthzFailure::Forbidden)
        );
        assert_eq!(
            rule.check(
                Some(&claims(json!({"tenant": "acme", "groups": ["ops"]}))),
                &r
            ),
            Err(AuthzFailure::Forbidden)
        );
        assert_eq!(
            rule.check(Some(&claims(json!({"tenant": "acme"}))), &r),
            Err(AuthzFailure::Forbidden)
        );
        let numeric = Authorization {
            claims: vec![ClaimRequirement {
                path: path("level"),
                condition: ClaimCondition::Equals(json!(3)),
            }],
            ..Default::default()
        };
        assert_eq!(
            numeric.check(Some(&claims(json!({"level": 3}))), &r),
            Ok(())
        );
        assert_eq!(
            numeric.check(Some(&claims(json!({"level": "3"}))), &r),
            Err(AuthzFailure::Forbidden)
        );
    }

    #[test]
    fn identities_without_claims_fail_any_requirement() {
        assert_eq!(
            scopes(&["read"]).check(None, &path("roles")),
            Err(AuthzFailure::Scope)
        );
        let roles = Authorization {
            roles: vec!["a".into()],
            ..Default::default()
        };
        assert_eq!(
            roles.check(None, &path("roles")),
            Err(AuthzFailure::Forbidden)
        );
        assert_eq!(Authorization::default().check(None, &path("roles")), Ok(()));
    }
}
