//! Authorization while the upstream CSMS is unreachable (issue 10: "authorization falls back
//! to a local list/cache"): the upstream's verdicts on idTags are remembered from its answers
//! (1.6 Authorize / StartTransaction `idTagInfo`, 2.0.1 Authorize / TransactionEvent
//! `idTokenInfo`, AuthorizationStatus of 1.6 §7.2 / 2.0.1 AuthorizationStatusEnumType) and
//! applied to ocpp809's local answers per [`OfflineAuthorization`]. Tags on the configured
//! local list (`upstream.local_list`: service and operator cards) are accepted whatever the
//! policy and the cache say, like OCPP's Local Authorization List (1.6 §3.5, 2.0.1 D01). Pure.

use std::collections::BTreeSet;

use serde_json::Value;

use super::messages::id_tag;
use super::state::RelayState;
use crate::ocpp::framing::{self, Frame};
use crate::ocpp::Version;

/// Most idTags remembered.
pub const AUTH_CACHE_MAX: usize = 10_000;

/// How idTags are authorized while the upstream is unreachable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OfflineAuthorization {
    /// As cached; unknown tags refused.
    Cache,
    /// As cached; unknown tags accepted.
    Accept,
    /// All refused.
    Reject,
}

/// Remembers the upstream's verdict on an idTag from its answer to `action`. `true` when the
/// cache changed (and should be saved).
pub fn learn(
    state: &mut RelayState,
    version: Version,
    action: &str,
    request: &Value,
    result: &Value,
) -> bool {
    let Some(tag) = id_tag(version, request) else {
        return false;
    };
    let info = match version {
        Version::V16 if matches!(action, "Authorize" | "StartTransaction") => &result["idTagInfo"],
        Version::V201 if matches!(action, "Authorize" | "TransactionEvent") => {
            &result["idTokenInfo"]
        }
        _ => return false,
    };
    let Some(status) = info.get("status").and_then(Value::as_str) else {
        return false;
    };
    if state.auth.get(&tag).map(String::as_str) == Some(status) {
        return false;
    }
    if state.auth.len() >= AUTH_CACHE_MAX && !state.auth.contains_key(&tag) {
        if let Some(first) = state.auth.keys().next().cloned() {
            state.auth.remove(&first);
        }
    }
    state.auth.insert(tag, status.to_owned());
    true
}

/// `local` (ocpp809's CALLRESULT text for `action`) with the idTag verdict `policy` gives
/// while the upstream is unreachable; unchanged for messages without an idTag.
pub fn answer(
    state: &RelayState,
    version: Version,
    policy: OfflineAuthorization,
    local_list: &BTreeSet<String>,
    action: &str,
    request: &Value,
    local: String,
) -> String {
    let field = match (version, action) {
        (Version::V16, "Authorize" | "StartTransaction") => "idTagInfo",
        (Version::V201, "Authorize") => "idTokenInfo",
        (Version::V201, "TransactionEvent") if request.get("idToken").is_some() => "idTokenInfo",
        _ => return local,
    };
    let Some(tag) = id_tag(version, request) else {
        return local;
    };
    let Ok(Frame::CallResult { id, mut payload }) = framing::parse(&local, version) else {
        return local;
    };
    let cached = state.auth.get(&tag).cloned();
    let status = match policy {
        _ if local_list.contains(&tag) => "Accepted".to_owned(),
        OfflineAuthorization::Reject => "Invalid".to_owned(),
        OfflineAuthorization::Cache => cached.unwrap_or_else(|| "Invalid".to_owned()),
        OfflineAuthorization::Accept => cached.unwrap_or_else(|| "Accepted".to_owned()),
    };
    let Some(obj) = payload.as_object_mut() else {
        return local;
    };
    let info = obj
        .entry(field)
        .or_insert_with(|| Value::Object(Default::default()));
    if let Some(info) = info.as_object_mut() {
        info.insert("status".to_owned(), Value::String(status));
    }
    framing::call_result(&id, &payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_cache_is_bounded_and_only_changes_are_reported() {
        let mut state = RelayState::default();
        let ok = json!({"idTagInfo": {"status": "Accepted"}});
        assert!(learn(
            &mut state,
            Version::V16,
            "Authorize",
            &json!({"idTag": "A"}),
            &ok
        ));
        assert!(!learn(
            &mut state,
            Version::V16,
            "Authorize",
            &json!({"idTag": "A"}),
            &ok
        ));
        assert!(!learn(
            &mut state,
            Version::V16,
            "Heartbeat",
            &json!({"idTag": "B"}),
            &ok
        ));
        for n in 0..AUTH_CACHE_MAX + 5 {
            learn(
                &mut state,
                Version::V16,
                "Authorize",
                &json!({"idTag": format!("T{n}")}),
                &ok,
            );
        }
        assert_eq!(state.auth.len(), AUTH_CACHE_MAX);
    }

    #[test]
    fn a_201_transaction_event_with_a_token_gets_the_verdict() {
        let mut state = RelayState::default();
        state.auth.insert("TOK".into(), "Blocked".into());
        let request = json!({"idToken": {"idToken": "TOK", "type": "ISO14443"}});
        let out = answer(
            &state,
            Version::V201,
            OfflineAuthorization::Accept,
            &BTreeSet::new(),
            "TransactionEvent",
            &request,
            "[3,\"e1\",{}]".to_owned(),
        );
        assert_eq!(out, r#"[3,"e1",{"idTokenInfo":{"status":"Blocked"}}]"#);
    }

    #[test]
    fn the_local_list_is_accepted_offline_whatever_the_policy_and_the_cache() {
        let mut state = RelayState::default();
        state.auth.insert("CARD".into(), "Blocked".into());
        let list: BTreeSet<String> = ["SERVICE".to_owned(), "CARD".to_owned()].into();
        for policy in [
            OfflineAuthorization::Cache,
            OfflineAuthorization::Accept,
            OfflineAuthorization::Reject,
        ] {
            for tag in ["SERVICE", "CARD"] {
                let out = answer(
                    &state,
                    Version::V16,
                    policy,
                    &list,
                    "Authorize",
                    &json!({"idTag": tag}),
                    r#"[3,"a1",{"idTagInfo":{"status":"Invalid"}}]"#.to_owned(),
                );
                assert_eq!(
                    out, r#"[3,"a1",{"idTagInfo":{"status":"Accepted"}}]"#,
                    "{policy:?} {tag}"
                );
            }
            let other = answer(
                &state,
                Version::V16,
                policy,
                &list,
                "Authorize",
                &json!({"idTag": "STRANGER"}),
                r#"[3,"a1",{"idTagInfo":{"status":"Accepted"}}]"#.to_owned(),
            );
            let expected = if policy == OfflineAuthorization::Accept {
                "Accepted"
            } else {
                "Invalid"
            };
            assert!(other.contains(expected), "{policy:?}: {other}");
        }
    }
}
