//! The paths IAK's official SDKs use work unchanged: the Node SDK writes the postpaid path with
//! a trailing slash (`api/v1/bill/check/`), the Java SDK may leave the price list's type segment
//! empty; and a path IAK does not serve is answered with IAK's rc 117 (PAGE NOT FOUND) body, not
//! a generic 404.

mod common;

use common::*;
use lunas_protocol::iak::postpaid::{PostpaidCommand, PostpaidRequest, PostpaidResult};
use lunas_protocol::iak::prepaid::{PrepaidCommand, PrepaidRequest, PrepaidResult};
use lunas_protocol::{ApiVersion, Format, Secret};

fn postpaid_body(command: PostpaidCommand) -> String {
    PostpaidRequest::new(IAK_USER, &Secret::new(IAK_KEY), command).encode(Format::Json)
}

#[tokio::test]
async fn postpaid_paths_with_a_trailing_slash_or_an_empty_type_are_served() {
    let h = Harness::standard().await;
    let inquiry = postpaid_body(PostpaidCommand::Inquiry {
        code: "PLNPOSTPAID".into(),
        hp: "530000000000".into(),
        ref_id: "sdk-1".into(),
        month: None,
        year: None,
        nomor_identitas: None,
    });
    let answer = h
        .post("/api/v1/bill/check/", "application/json", inquiry)
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let bill = PostpaidResult::parse(&answer.body).unwrap().message;
    assert_eq!(bill.response_code, "00", "{}", answer.text());

    let prices = postpaid_body(PostpaidCommand::PriceList {
        product_type: None,
        status: Some("all".into()),
        province: None,
    });
    for path in [
        "/api/v1/bill/check/",
        "/api/v1/bill/check//",
        "/api/v1/bill/check/pln/",
    ] {
        let answer = h.post(path, "application/json", prices.clone()).await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.text());
    }
}

#[tokio::test]
async fn a_path_iak_does_not_serve_is_rc_117_in_the_requests_format() {
    let h = Harness::standard().await;
    let req = PrepaidRequest::new(
        IAK_USER,
        &Secret::new(IAK_KEY),
        PrepaidCommand::PriceList {
            product_type: None,
            operator: None,
            status: None,
        },
    );
    for (path, format, version) in [
        (
            "/api/pricelist/pulsa/telkomsel/extra",
            Format::Json,
            ApiVersion::V2,
        ),
        (
            "/api/pricelist/pulsa/telkomsel/extra",
            Format::Xml,
            ApiVersion::V2,
        ),
        ("/api/no-such-thing", Format::Json, ApiVersion::V2),
        (
            "/v1/legacy/index/pulsa/telkomsel/more",
            Format::Json,
            ApiVersion::V1,
        ),
    ] {
        let answer = h
            .post(path, format.content_type(), req.encode(format, version))
            .await;
        assert_eq!(answer.status, 404, "{path}");
        let parsed = PrepaidResult::parse(&answer.body)
            .unwrap_or_else(|e| panic!("{path}: an IAK body ({e}): {}", answer.text()));
        assert_eq!(parsed.format, format, "{path}");
        assert_eq!(parsed.message.rc, "117", "{path}");
        let text = parsed.message.message.unwrap_or_default();
        assert!(text.starts_with("PAGE NOT FOUND"), "{path}: {text}");
    }
}

#[tokio::test]
async fn rc_201_is_reachable_by_a_test_number_and_stays_pending() {
    let h = Harness::standard().await;
    let first = h.top_up("undefined-1", "081200001201", "xld25000").await;
    assert_eq!(
        (first.status, first.rc.as_str()),
        (
            Some(lunas_protocol::iak::prepaid::PrepaidStatus::Process),
            "201"
        )
    );
    let again = h.check_status("undefined-1").await;
    assert_eq!(again.rc, "201");
    // Even in production it waits for a report.
    h.advance(std::time::Duration::from_secs(3600));
    assert_eq!(h.run_due().await, 0);
    assert_eq!(h.report("undefined-1", "success").await.status, 200);
    assert_eq!(h.check_status("undefined-1").await.rc, "00");
}

#[tokio::test]
async fn the_pln_meter_inquiry_answers_as_iak_does() {
    let h = Harness::standard().await;
    for version in [ApiVersion::V2, ApiVersion::V1] {
        let (answer, parsed) = h
            .prepaid(
                IAK_USER,
                IAK_KEY,
                PrepaidCommand::InquiryPln {
                    customer_id: "12345678901".into(),
                },
                Format::Json,
                version,
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        let r = parsed.message;
        assert_eq!(r.rc, "00");
        assert_eq!(
            r.status,
            Some(lunas_protocol::iak::prepaid::PrepaidStatus::Success)
        );
        assert_eq!(r.customer_id.as_deref(), Some("12345678901"));
        assert!(r.meter_no.is_some() && r.subscriber_id.is_some());
        assert!(r.name.is_some() && r.segment_power.is_some());
        // The documented fields, in the SDK's mock's order.
        let body = answer.json();
        let keys: Vec<&str> = body["data"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        for key in [
            "status",
            "meter_no",
            "subscriber_id",
            "name",
            "segment_power",
            "message",
            "rc",
        ] {
            assert!(keys.contains(&key), "{key} in {keys:?}");
        }
    }
    // A wrong sign is IAK's rc 204 (as for every prepaid request); a number ending 1014 is rc 14.
    let (answer, parsed) = h
        .prepaid(
            IAK_USER,
            "wrong",
            PrepaidCommand::InquiryPln {
                customer_id: "12345678901".into(),
            },
            Format::Json,
            ApiVersion::V2,
        )
        .await;
    assert_eq!((answer.status, parsed.message.rc.as_str()), (200, "204"));
    let (_, parsed) = h
        .prepaid(
            IAK_USER,
            IAK_KEY,
            PrepaidCommand::InquiryPln {
                customer_id: "12345671014".into(),
            },
            Format::Json,
            ApiVersion::V2,
        )
        .await;
    assert_eq!(parsed.message.rc, "14");
}
