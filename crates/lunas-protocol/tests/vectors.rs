//! The signature test vectors of protocols.md §6 (computed with Python's hashlib).

use lunas_protocol::mcp::Credentials;
use lunas_protocol::sign::{
    hex_digest_eq, iak_sign, iak_verify, mcp_basic_auth, mcp_callback_signature,
    mcp_request_signature, IakSignInput,
};
use lunas_protocol::Secret;

const USER: &str = "123123123";

fn key() -> Secret {
    Secret::new("TESTKEY-not-real-0001")
}

#[test]
fn every_iak_sign_variant_matches_its_vector() {
    let cases: [(IakSignInput<'_>, &str); 11] = [
        (
            IakSignInput::RefId("order001"),
            "b51553c9ece19d0acb34c12439fee339",
        ),
        (
            IakSignInput::RefId("order002"),
            "1a81bae0b71874b92cb74af845791507",
        ),
        (
            IakSignInput::RefId("order003"),
            "509bb7bba23e3c2eff70b381cb4534f2",
        ),
        (IakSignInput::Balance, "fb5a027a938e39f7e8e320208fba2803"),
        (IakSignInput::PriceList, "7836cd33ba5c136328b4cbd6ea8a1d11"),
        (
            IakSignInput::CheckStatus,
            "a2b271bedb89dd591cd5c987351e91ee",
        ),
        (
            IakSignInput::CheckOperator,
            "43507520f821a2c4778aef083b361d45",
        ),
        (
            IakSignInput::Field("12345678901"),
            "fe134c0f9459cc23eb00a2bcf9458735",
        ),
        (
            IakSignInput::Field("103"),
            "754762ab2af57e6f635bbd9550082928",
        ),
        (
            IakSignInput::RefId("091283746520"),
            "6accba2081b90b4eb04bed3c5d08217d",
        ),
        (
            IakSignInput::TrId(9732795),
            "0d6a9505b961f22cf64a9110c5a9e3ae",
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(iak_sign(USER, &key(), input), expected, "{input:?}");
        assert!(
            iak_verify(USER, &key(), input, &expected.to_uppercase()),
            "{input:?} upper case"
        );
    }
}

#[test]
fn a_sign_made_in_the_wrong_order_does_not_verify() {
    let wrong_order = "4ba7bba2c6b078798ac13e459b9ea688"; // md5(api_key + username + ref_id)
    assert!(!iak_verify(
        USER,
        &key(),
        IakSignInput::RefId("order001"),
        wrong_order
    ));
    // The documents' placeholder sign verifies nothing either.
    assert!(!iak_verify(
        USER,
        &key(),
        IakSignInput::RefId("order001"),
        "96e1028f6beaa817ee3670a39c01c69d"
    ));
}

#[test]
fn a_second_account_signs_with_its_own_credentials() {
    let sign = iak_sign(
        "081234567890",
        &Secret::new("sandbox-key-XYZ"),
        IakSignInput::RefId("INV-2024-0001"),
    );
    assert_eq!(sign, "15f82a4801e9dc5a98dbdff4d56ac404");
}

#[test]
fn mcp_vectors() {
    let secret = Secret::new("0x00aabbccddeeff0011");
    let hash_key = Secret::new("HASHKEY-not-real-01");
    let tx = "8393c208-8b83-49eb-8c0b-0b50016e7401";
    assert_eq!(
        mcp_basic_auth("MCP2099010101", &secret),
        "Basic TUNQMjA5OTAxMDEwMToweDAwYWFiYmNjZGRlZWZmMDAxMQ=="
    );
    assert_eq!(
        mcp_request_signature(&hash_key, "ext-0001", "ORD-0001"),
        "447776b141319f9d30873a307fdd0e02625606a69c370d99144921896e1e38b7"
    );
    assert_eq!(
        mcp_callback_signature(&hash_key, tx, "ext-0001", "ORD-0001", None),
        "c1bcd77ad1618dff5fab05937b495da7df1ca4e76c7de1e5db94106ae9f6c6e3"
    );
    assert_eq!(
        mcp_callback_signature(&hash_key, tx, "ext-0001", "ORD-0001", Some("submerchant-a")),
        "d2dfbbfe735e46f59e329a6758b07340bf24c1c1c5bcaa317ede6bb32ebaf55b"
    );
    let creds = Credentials {
        merchant_id: "MCP2099010101".into(),
        secret_unbound_id: secret,
        hash_key,
        sub_merchant_id: None,
    };
    assert!(creds.verify_authorization("Basic TUNQMjA5OTAxMDEwMToweDAwYWFiYmNjZGRlZWZmMDAxMQ=="));
    assert!(!creds.verify_authorization("Basic TUNQMjA5OTAxMDEwMToweDAwYWFiYmNjZGRlZWZmMDAxMg=="));
    assert!(creds.verify_authorization("basic TUNQMjA5OTAxMDEwMToweDAwYWFiYmNjZGRlZWZmMDAxMQ=="));
    assert!(!creds.verify_authorization("Bearer TUNQMjA5OTAxMDEwMToweDAwYWFiYmNjZGRlZWZmMDAxMQ=="));
    assert!(!creds.verify_authorization("TUNQMjA5OTAxMDEwMToweDAwYWFiYmNjZGRlZWZmMDAxMQ=="));
    assert!(creds.verify_request_signature(
        "ext-0001",
        "ORD-0001",
        "447776b141319f9d30873a307fdd0e02625606a69c370d99144921896e1e38b7"
    ));
    assert!(!creds.verify_request_signature(
        "ext-0001",
        "ORD-0002",
        "447776b141319f9d30873a307fdd0e02625606a69c370d99144921896e1e38b7"
    ));
    let headers = creds.request_headers("ext-0001", "ORD-0001");
    assert!(headers.contains(&("x-version", "v3".to_owned())));
}

#[test]
fn sanity_anchors() {
    use md5::Digest as _;
    assert_eq!(
        hex::encode(md5::Md5::digest(b"")),
        "d41d8cd98f00b204e9800998ecf8427e"
    );
    assert!(hex_digest_eq(
        &hex::encode(sha2::Sha256::digest(b"")),
        "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
    ));
}
