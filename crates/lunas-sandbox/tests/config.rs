//! The `[sandbox]` table: the README's example, defaults, `env:` secrets, and a clear error
//! for every mistake.

mod common;

use std::time::Duration;

use common::config;
use lunas_protocol::{ApiVersion, Format};
use lunas_sandbox::{AccountKind, Environment, Sandbox, SandboxConfig};
use serde::Deserialize;

/// The `[sandbox]` part of the README's interfaces, verbatim.
const PRODUCT_EXAMPLE: &str = r#"
[sandbox]                              # used by `lunas sandbox` and `lunas demo`
listen = "127.0.0.1:8090"
[[sandbox.accounts]]
kind = "iak"                           # iak | idsl | mcp
username = "081234567890"              # mcp: merchant_id, secret_unbound_id, hash_key instead
api_key = "env:LUNAS_TEST_PRODUCT_IAK_KEY"
environment = "development"            # development: callbacks only via /sandbox/report
callback_url = "http://127.0.0.1:8080/callbacks/iak"
callback_format = "json"               # json | xml
api_version = "v2"                     # v1 | v2 field names in callbacks
"#;

fn error_of(text: &str) -> String {
    config(text).validate().unwrap_err().to_string()
}

#[test]
fn the_product_example_parses_with_the_documented_defaults() {
    std::env::set_var("LUNAS_TEST_PRODUCT_IAK_KEY", "from-the-environment");
    let valid = config(PRODUCT_EXAMPLE).validate().unwrap();
    assert_eq!(valid.listen.to_string(), "127.0.0.1:8090");
    let a = &valid.accounts[0];
    assert_eq!(a.id, "iak", "the id defaults to the kind");
    assert_eq!(a.kind, AccountKind::Iak);
    assert_eq!(a.environment, Environment::Development);
    assert_eq!(a.callback_format, Format::Json);
    assert_eq!(a.api_version, ApiVersion::V2);
    assert_eq!(a.deposit, 1_000_000_000);
    assert_eq!(a.callback_delay, Duration::from_secs(3));
    assert_eq!(a.retry_delays.len(), 4);
    match &a.credentials {
        lunas_sandbox::AccountCredentials::Iak { username, api_key } => {
            assert_eq!(username, "081234567890");
            assert_eq!(api_key.expose(), "from-the-environment");
        }
        other => panic!("{other:?}"),
    }
    // The whole file, as the gateway reads it, has other tables too.
    #[derive(Deserialize)]
    struct Whole {
        sandbox: SandboxConfig,
    }
    let whole: Whole = toml::from_str(&format!("{PRODUCT_EXAMPLE}\n")).unwrap();
    assert_eq!(whole.sandbox.accounts.len(), 1);
}

#[test]
fn an_empty_table_means_the_default_address_and_no_accounts() {
    let valid = config("[sandbox]").validate().unwrap();
    assert_eq!(valid.listen.to_string(), "127.0.0.1:8090");
    assert!(valid.accounts.is_empty());
    assert_eq!(SandboxConfig::default().listen, valid.listen);
}

#[test]
fn mcp_accounts_default_to_three_tries_and_no_delay() {
    let valid = config(
        r#"
[sandbox]
[[sandbox.accounts]]
kind = "mcp"
merchant_id = "MCP2099010101"
secret_unbound_id = "s"
hash_key = "h"
"#,
    )
    .validate()
    .unwrap();
    let a = &valid.accounts[0];
    assert_eq!(a.id, "mcp");
    assert_eq!(a.retry_delays.len(), 2);
    assert_eq!(a.callback_delay, Duration::ZERO);
    assert!(
        a.callback_url.is_none(),
        "a create request may bring its own"
    );
}

#[test]
fn an_unset_environment_variable_is_named() {
    let e = error_of(
        r#"
[sandbox]
[[sandbox.accounts]]
kind = "iak"
username = "0812"
api_key = "env:LUNAS_TEST_SURELY_UNSET_VARIABLE"
callback_url = "http://127.0.0.1:1/cb"
"#,
    );
    assert!(e.contains("sandbox.accounts[0] (iak).api_key"), "{e}");
    assert!(
        e.contains("LUNAS_TEST_SURELY_UNSET_VARIABLE is not set"),
        "{e}"
    );
}

#[test]
fn unknown_keys_are_refused_at_every_level() {
    for text in [
        "[sandbox]\nlisten_on = \"x\"",
        "[sandbox]\n[[sandbox.accounts]]\nkind = \"iak\"\nusrname = \"x\"",
        "[sandbox]\n[[sandbox.accounts]]\nkind = \"iak\"\n[sandbox.accounts.faults]\ndupe = 1",
        "[sandbox]\n[[sandbox.accounts]]\nkind = \"paypal\"",
        "[sandbox]\n[[sandbox.accounts]]\nkind = \"iak\"\nenvironment = \"staging\"",
    ] {
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        struct File {
            sandbox: SandboxConfig,
        }
        let e = toml::from_str::<File>(text).unwrap_err().to_string();
        assert!(!e.is_empty(), "{text}");
    }
}

#[test]
fn every_mistake_has_a_clear_message() {
    let iak = |extra: &str| {
        format!(
            "[sandbox]\n[[sandbox.accounts]]\nkind = \"iak\"\nusername = \"0812\"\napi_key = \"k\"\ncallback_url = \"http://127.0.0.1:1/cb\"\n{extra}"
        )
    };
    let cases = [
        (
            "[sandbox]\n[[sandbox.accounts]]\nkind = \"iak\"\napi_key = \"k\"\ncallback_url = \"http://x/\"".to_owned(),
            "username: is required",
        ),
        (
            "[sandbox]\n[[sandbox.accounts]]\nkind = \"iak\"\nusername = \"0812\"\napi_key = \"k\"".to_owned(),
            "callback_url: is required",
        ),
        (iak("hash_key = \"h\""), "hash_key: is an MCPayment setting"),
        (iak("callback_url = \"ftp://x\"").replacen("callback_url = \"http://127.0.0.1:1/cb\"\n", "", 1), "must be an http"),
        (iak("deposit = -1"), "deposit: must not be negative"),
        (iak("[sandbox.accounts.faults]\ndrop = 1.5"), "faults.drop: 1.5 is not a probability"),
        (iak("[sandbox.accounts.faults]\ncheck_status_hang_ms = 999999"), "at most 120000 ms"),
        (iak("[sandbox.accounts.faults]\norder_hang_ms = 999999"), "faults.order_hang_ms: at most 120000 ms"),
        (iak("id = \"has space\""), "id: must be non-empty"),
        (iak("callback_timeout_ms = 0"), "more than 0"),
        (iak("callback_delay_ms = 18446744073709551615"), "callback_delay_ms: 18446744073709551615 ms is more than a week"),
        (iak("retry_delays_ms = [1, 999999999999]"), "retry_delays_ms: 999999999999 ms"),
        (iak("[sandbox.accounts.faults]\ndelay_jitter_ms = 999999999999"), "faults.delay_jitter_ms"),
        (
            format!("{}\n{}", iak("id = \"same\""), iak("id = \"same\"").replace("[sandbox]\n", "")),
            "is used twice",
        ),
        (
            format!("{}\n{}", iak(""), iak("id = \"other\"").replace("[sandbox]\n", "")),
            "username \"0812\" is used by two",
        ),
        (
            "[sandbox]\n[[sandbox.accounts]]\nkind = \"mcp\"\nmerchant_id = \"m\"\nsecret_unbound_id = \"s\"\nhash_key = \"h\"\ncallback_format = \"xml\"".to_owned(),
            "callback_format: applies only to IAK/IDSL",
        ),
        (
            "[sandbox]\n[[sandbox.accounts]]\nkind = \"mcp\"\nmerchant_id = \"m\"\nhash_key = \"h\"".to_owned(),
            "secret_unbound_id: is required",
        ),
        (
            "[sandbox]\n[[sandbox.accounts]]\nkind = \"iak\"\nusername = \"0812\"\napi_key = \"\"\ncallback_url = \"http://x/\"".to_owned(),
            "api_key: must not be empty",
        ),
    ];
    for (text, expected) in cases {
        let e = error_of(&text);
        assert!(
            e.contains(expected),
            "expected {expected:?} in {e:?}\n{text}"
        );
        assert!(e.starts_with("sandbox configuration: "), "{e}");
    }
}

#[test]
fn order_fault_knobs_are_counts_with_a_default_hang() {
    let account = |faults: &str| {
        format!(
            "[sandbox]\n[[sandbox.accounts]]\nkind = \"iak\"\nusername = \"0812\"\napi_key = \"k\"\ncallback_url = \"http://127.0.0.1:1/cb\"\n[sandbox.accounts.faults]\n{faults}"
        )
    };
    let valid = config(&account(
        "order_5xx_before_commit = 1\norder_5xx_after_commit = 2\norder_drop_after_commit = 3\norder_hang_after_commit = 4",
    ))
    .validate()
    .unwrap();
    let f = &valid.accounts[0].faults;
    assert_eq!(
        (
            f.order_5xx_before_commit,
            f.order_5xx_after_commit,
            f.order_drop_after_commit,
            f.order_hang_after_commit
        ),
        (1, 2, 3, 4)
    );
    assert_eq!(f.order_hang, Duration::from_millis(35_000));
    let valid = config(&account("order_hang_ms = 250")).validate().unwrap();
    assert_eq!(
        valid.accounts[0].faults.order_hang,
        Duration::from_millis(250)
    );
    assert_eq!(valid.accounts[0].faults.order_5xx_before_commit, 0);

    // Counts are whole numbers, never negative.
    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct File {
        sandbox: SandboxConfig,
    }
    for bad in [
        "order_5xx_before_commit = -1",
        "order_5xx_after_commit = 1.5",
        "order_drop_after_commit = \"2\"",
        "order_hang_after_commit = -3",
        "order_hang_ms = -1",
    ] {
        let e = toml::from_str::<File>(&account(bad))
            .unwrap_err()
            .to_string();
        let knob = bad.split(' ').next().unwrap();
        assert!(e.contains(knob), "{bad}: {e}");
    }
}

#[test]
fn secrets_never_show_in_debug_output() {
    let text = r#"
[sandbox]
[[sandbox.accounts]]
kind = "mcp"
merchant_id = "MCP2099010101"
secret_unbound_id = "literal-unbound-secret"
hash_key = "literal-hash-key"
[[sandbox.accounts]]
kind = "iak"
username = "0812"
api_key = "literal-api-key"
callback_url = "http://127.0.0.1:1/cb"
"#;
    let raw = config(text);
    let shown = format!("{raw:?}");
    let sandbox = Sandbox::new(raw.clone()).unwrap();
    let shown_valid = format!("{:?} {:?}", raw.validate().unwrap(), sandbox);
    for secret in [
        "literal-unbound-secret",
        "literal-hash-key",
        "literal-api-key",
    ] {
        assert!(!shown.contains(secret), "{shown}");
        assert!(!shown_valid.contains(secret), "{shown_valid}");
    }
}

#[test]
fn configurations_can_be_built_in_code() {
    use lunas_sandbox::{AccountConfig, SecretSpec};
    let config = SandboxConfig {
        accounts: vec![
            AccountConfig {
                id: Some("demo-iak".into()),
                username: Some("0812".into()),
                api_key: Some(SecretSpec::new("k")),
                environment: Environment::Production,
                callback_url: Some("http://127.0.0.1:8080/callbacks/demo-iak".into()),
                ..AccountConfig::new(AccountKind::Iak)
            },
            AccountConfig {
                merchant_id: Some("M".into()),
                secret_unbound_id: Some(SecretSpec::new("s")),
                hash_key: Some(SecretSpec::new("h")),
                ..AccountConfig::new(AccountKind::Mcp)
            },
        ],
        ..SandboxConfig::default()
    };
    let sandbox = Sandbox::new(config).unwrap();
    let ids: Vec<_> = sandbox.accounts().iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["demo-iak", "mcp"]);
}

#[test]
fn accounts_without_an_id_are_named_after_their_kind_in_turn() {
    let account = |user: &str, id: &str| {
        format!(
            "[[sandbox.accounts]]\nkind = \"iak\"\n{id}username = \"{user}\"\napi_key = \"k\"\ncallback_url = \"http://127.0.0.1:1/cb\"\n"
        )
    };
    let text = format!(
        "[sandbox]\n{}{}{}{}",
        account("0811", ""),
        account("0812", "id = \"iak-2\"\n"),
        account("0813", ""),
        account("0814", ""),
    );
    #[derive(Deserialize)]
    struct File {
        sandbox: SandboxConfig,
    }
    let config = toml::from_str::<File>(&text).unwrap().sandbox;
    let sandbox = lunas_sandbox::Sandbox::new(config).unwrap();
    let ids: Vec<String> = sandbox.account_infos().into_iter().map(|a| a.id).collect();
    assert_eq!(ids, ["iak", "iak-2", "iak-3", "iak-4"]);
}
