//! Partial updates: a JSON merge patch (RFC 7386) applied to what is stored, so an update never
//! wipes what it does not mention. Operators' `PATCH` routes, and their `PUT` routes on something
//! that exists, go through here: repricing a server once erased its SSH access point, because a
//! `PUT` that left `access` out replaced it with nothing.

use serde::de::DeserializeOwned;

use crate::infra::error::{ServiceError, ServiceResult};

/// RFC 7386: `patch` applied to `target`. Fields the patch leaves out keep their value, `null`
/// removes a field, objects merge key by key, anything else replaces.
pub fn merge(target: &mut serde_json::Value, patch: serde_json::Value) {
    use serde_json::Value;
    match patch {
        Value::Object(fields) => {
            if !target.is_object() {
                *target = Value::Object(Default::default());
            }
            let Some(map) = target.as_object_mut() else {
                return;
            };
            for (key, value) in fields {
                if value.is_null() {
                    map.remove(&key);
                } else {
                    merge(map.entry(key).or_insert(Value::Null), value);
                }
            }
        }
        other => *target = other,
    }
}

/// `patch` applied to `stored` (the thing's current input, `None` when it is new) and read back
/// as the input type `T`: a 400 naming `what` when the body is not an object or the result would
/// not be valid.
pub fn patched<T: DeserializeOwned>(
    stored: Option<serde_json::Value>,
    patch: serde_json::Value,
    what: &str,
) -> ServiceResult<T> {
    if !patch.is_object() {
        return Err(ServiceError::invalid(
            "The body is a JSON object of the fields to set",
        ));
    }
    let mut current = stored.unwrap_or_else(|| serde_json::json!({}));
    merge(&mut current, patch);
    serde_json::from_value(current)
        .map_err(|e| ServiceError::invalid(format!("The {what} would not be valid: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_merge_patch_keeps_what_it_does_not_mention() {
        let mut server = json!({"name": "a", "access": {"address": "h", "port": 22}, "prices": {"1": 5, "7": 30}});
        merge(
            &mut server,
            json!({"prices": {"7": null, "30": 100}, "access": {"port": 2222}}),
        );
        assert_eq!(
            server,
            json!({"name": "a", "access": {"address": "h", "port": 2222}, "prices": {"1": 5, "30": 100}})
        );
        merge(&mut server, json!({"access": null}));
        assert!(server.get("access").is_none());
    }

    #[test]
    fn a_patch_that_is_not_an_object_or_leaves_the_thing_invalid_is_refused() {
        #[derive(serde::Deserialize, Debug)]
        struct Plan {
            #[allow(dead_code)]
            vcpu: i64,
        }
        assert!(patched::<Plan>(Some(json!({"vcpu": 1})), json!([1]), "plan").is_err());
        let err =
            patched::<Plan>(Some(json!({"vcpu": 1})), json!({"vcpu": "two"}), "plan").unwrap_err();
        assert!(
            err.to_string().contains("The plan would not be valid"),
            "{err}"
        );
        assert_eq!(
            patched::<Plan>(Some(json!({"vcpu": 1})), json!({}), "plan")
                .unwrap()
                .vcpu,
            1
        );
    }
}
