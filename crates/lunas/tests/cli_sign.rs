//! `lunas sign` run as a user would run it: the real binary, its output and exit code.

use std::process::Command;

fn lunas(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lunas"))
        .args(args)
        .env("LUNAS_TEST_IAK_KEY", "TESTKEY-not-real-0001")
        .env_remove("LUNAS_TEST_UNSET")
        .output()
        .expect("the lunas binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    )
}

#[test]
fn iak_sign_prints_the_documented_vector() {
    let (code, out, _) = lunas(&[
        "sign",
        "iak",
        "--username",
        "123123123",
        "--api-key",
        "env:LUNAS_TEST_IAK_KEY",
        "--ref-id",
        "order001",
    ]);
    assert_eq!(
        (code, out.as_str()),
        (0, "b51553c9ece19d0acb34c12439fee339")
    );
    let (_, out, _) = lunas(&[
        "sign",
        "iak",
        "--username",
        "123123123",
        "--api-key",
        "TESTKEY-not-real-0001",
        "--checkstatus",
    ]);
    assert_eq!(out, "a2b271bedb89dd591cd5c987351e91ee");
    let (_, out, _) = lunas(&[
        "sign",
        "iak",
        "--username",
        "123123123",
        "--api-key",
        "TESTKEY-not-real-0001",
        "--tr-id",
        "9732795",
    ]);
    assert_eq!(out, "0d6a9505b961f22cf64a9110c5a9e3ae");
}

#[test]
fn verify_answers_valid_or_invalid_with_the_exit_code() {
    let base = [
        "sign",
        "iak",
        "--username",
        "123123123",
        "--api-key",
        "TESTKEY-not-real-0001",
        "--ref-id",
        "order003",
    ];
    let (code, out, _) =
        lunas(&[&base[..], &["--verify", "509BB7BBA23E3C2EFF70B381CB4534F2"]].concat());
    assert_eq!((code, out.as_str()), (0, "valid"));
    let (code, out, _) =
        lunas(&[&base[..], &["--verify", "96e1028f6beaa817ee3670a39c01c69d"]].concat());
    assert_eq!(code, 1);
    assert!(out.starts_with("invalid"), "{out}");
}

#[test]
fn mcp_signatures_and_authorization() {
    let ids = [
        "--hash-key",
        "HASHKEY-not-real-01",
        "--external-id",
        "ext-0001",
        "--order-id",
        "ORD-0001",
    ];
    let (_, out, _) = lunas(&[&["sign", "mcp"][..], &ids].concat());
    assert_eq!(
        out,
        "447776b141319f9d30873a307fdd0e02625606a69c370d99144921896e1e38b7"
    );
    let (_, out, _) = lunas(
        &[
            &["sign", "mcp"][..],
            &ids,
            &["--transaction-id", "8393c208-8b83-49eb-8c0b-0b50016e7401"],
        ]
        .concat(),
    );
    assert_eq!(
        out,
        "c1bcd77ad1618dff5fab05937b495da7df1ca4e76c7de1e5db94106ae9f6c6e3"
    );
    let (_, out, _) = lunas(&[
        "sign",
        "mcp-auth",
        "--merchant-id",
        "MCP2099010101",
        "--secret-unbound-id",
        "0x00aabbccddeeff0011",
    ]);
    assert_eq!(
        out,
        "Basic TUNQMjA5OTAxMDEwMToweDAwYWFiYmNjZGRlZWZmMDAxMQ=="
    );
}

#[test]
fn an_unset_env_secret_is_a_clear_error() {
    let (code, _, err) = lunas(&[
        "sign",
        "iak",
        "--username",
        "u",
        "--api-key",
        "env:LUNAS_TEST_UNSET",
        "--balance",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("LUNAS_TEST_UNSET is not set"), "{err}");
}

#[test]
fn exactly_one_sign_input_is_required() {
    let (code, _, err) = lunas(&["sign", "iak", "--username", "u", "--api-key", "k"]);
    assert_ne!(code, 0);
    assert!(err.contains("required"), "{err}");
    let (code, _, _) = lunas(&[
        "sign",
        "iak",
        "--username",
        "u",
        "--api-key",
        "k",
        "--balance",
        "--pricelist",
    ]);
    assert_ne!(code, 0);
}
