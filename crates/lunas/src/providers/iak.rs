//! IAK and IDSL: prepaid callbacks (JSON `{"data":{..}}` or XML `<mp>`, v1 or v2 names), signed
//! `md5(username + api_key + ref_id)` inside the body.

use lunas_core::{Basis, Detail, Fact};
use lunas_protocol::iak::prepaid::{PrepaidCallback, PrepaidStatus};
use lunas_protocol::iak::rc::{prepaid_class, RcClass};
use lunas_protocol::state::state_for_verdict;
use lunas_protocol::{ack, TxKind};

/// Whether a prepaid message's status and rc contradict each other (a success status with a
/// failure code, or a failure status with the success code): such a message settles nothing.
fn contradiction(status: Option<PrepaidStatus>, rc: &str) -> Option<String> {
    let class = prepaid_class(rc);
    match (status, class) {
        (Some(PrepaidStatus::Success), RcClass::Failed)
        | (Some(PrepaidStatus::Failed), RcClass::Success) => Some(format!(
            "status {} contradicts rc {rc}",
            status.map_or(-1, PrepaidStatus::code)
        )),
        _ => None,
    }
}

use super::{Refusal, Verified};
use crate::config::{Credentials, ProviderConfig};

pub fn verify_callback(provider: &ProviderConfig, body: &[u8]) -> Result<Verified, Refusal> {
    let Credentials::Iak { username, api_key } = &provider.credentials else {
        unreachable!("an IAK-family provider always has IAK credentials")
    };
    // The sign sits inside the body, so the body is parsed (by the pure, bounded parser) before
    // the sign can be checked; nothing acts on its content until the check passes.
    let decoded = PrepaidCallback::parse(body).map_err(|e| Refusal::malformed(&e))?;
    let cb = decoded.message;
    super::check_ref("ref_id", &cb.ref_id)?;
    super::check_amount("price", Some(cb.price))?;
    if !cb.verify(username, api_key) {
        return Err(Refusal::bad_signature(
            cb.ref_id,
            "sign is not md5(username + api_key + ref_id) for this account",
        ));
    }
    let basis =
        contradiction(Some(cb.status), &cb.rc).map_or(Basis::Reported, Basis::Contradictory);
    let fact = Fact {
        kind: TxKind::Prepaid,
        reference: cb.ref_id.clone(),
        state: state_for_verdict(cb.verdict()),
        refunds: Vec::new(),
        basis,
        detail: Detail {
            amount: Some(cb.price),
            product_code: Some(cb.product_code),
            customer_id: Some(cb.customer_id),
            provider_transaction_id: Some(cb.tr_id.to_string()),
            order_id: None,
            response_code: Some(cb.rc),
            message: Some(cb.message),
            serial_number: cb.sn,
            pin: cb.pin,
            activation_code: cb.activation_code,
            balance_after: Some(cb.balance),
            total_paid: None,
            multi_use: None,
            payment_system: None,
            expires_at: None,
        },
        payments: Vec::new(),
    };
    Ok(Verified::new(
        fact,
        ack::iak(decoded.format),
        decoded.format.as_str(),
    ))
}

/// IAK/IDSL check-status: prepaid `POST /api/check-status` (v1: `/v1/legacy/index` with
/// `commands=inquiry`), postpaid `POST /api/v1/bill/check` with `commands=checkstatus`.
pub async fn check_status(
    client: &reqwest::Client,
    provider: &ProviderConfig,
    tx: &lunas_core::TxRecord,
) -> super::Checked {
    use lunas_protocol::iak::postpaid::{PostpaidCommand, PostpaidRequest, PostpaidResult};
    use lunas_protocol::iak::prepaid::{PrepaidCommand, PrepaidRequest, PrepaidResult};
    use lunas_protocol::{Format, Verdict};

    use super::{CheckOutcome, Checked};

    let Credentials::Iak { username, api_key } = &provider.credentials else {
        unreachable!("an IAK-family provider always has IAK credentials")
    };
    let postpaid = tx.kind == TxKind::Postpaid;
    let base = if postpaid {
        &provider.postpaid_url
    } else {
        &provider.prepaid_url
    };
    let Some(base) = base else {
        let which = if postpaid {
            "postpaid_url"
        } else {
            "prepaid_url"
        };
        return Checked {
            outcome: CheckOutcome::Failed(format!(
                "no {which} is configured for {:?}",
                provider.id
            )),
            response: Vec::new(),
            content_type: None,
            summary: format!("not asked: no {which}"),
        };
    };
    let (url, body) = if postpaid {
        let req = PostpaidRequest::new(
            username,
            api_key,
            PostpaidCommand::CheckStatus {
                ref_id: tx.reference.clone(),
            },
        );
        (super::join(base, &req.path()), req.encode(Format::Json))
    } else {
        let req = PrepaidRequest::new(
            username,
            api_key,
            PrepaidCommand::CheckStatus {
                ref_id: tx.reference.clone(),
            },
        );
        (
            super::join(base, &req.path(provider.api_version)),
            req.encode(Format::Json, provider.api_version),
        )
    };
    let asked = format!("POST {url}");
    let answer = super::post(
        client
            .post(&url)
            .header("content-type", "application/json")
            .body(body),
        &asked,
    )
    .await;
    let (status, content_type, bytes) = match answer {
        Ok(a) => a,
        Err(e) => {
            return Checked {
                outcome: CheckOutcome::Failed(e.clone()),
                response: Vec::new(),
                content_type: None,
                summary: e,
            }
        }
    };
    let keep = bytes[..bytes.len().min(super::CHECK_BODY_CAP)].to_vec();
    let done = |outcome: CheckOutcome, note: String| Checked {
        outcome,
        response: keep.clone(),
        content_type: content_type.clone(),
        summary: format!("{asked} → HTTP {status}: {note}"),
    };
    // Only a 200 carries an outcome; 400 is a refused request, anything else means "ask later"
    // (protocols.md §1.3). Neither may settle a transaction.
    if status != 200 {
        return done(
            CheckOutcome::Failed(format!("HTTP {status}")),
            "no outcome".into(),
        );
    }
    if postpaid {
        let res = match PostpaidResult::parse(&bytes) {
            Ok(d) => d.message,
            Err(e) => {
                return done(
                    CheckOutcome::Failed(format!("unreadable answer: {e}")),
                    e.to_string(),
                )
            }
        };
        if let Some(other) = res.ref_id.as_deref().filter(|r| *r != tx.reference) {
            return done(
                CheckOutcome::Failed(format!(
                    "the answer is about ref_id {other}, not {}",
                    tx.reference
                )),
                "an answer about another transaction".into(),
            );
        }
        let verdict = res.verdict();
        let note = format!(
            "status {}, response_code {}",
            res.status
                .map_or_else(|| "none".to_owned(), |s| s.code().to_string()),
            res.response_code
        );
        // Postpaid `00` also means "inquiry succeeded": only a stated status is an outcome.
        if res.status.is_none()
            && matches!(
                verdict,
                Verdict::Succeeded | Verdict::Failed | Verdict::NotReceived
            )
        {
            return done(
                CheckOutcome::Failed(format!(
                    "the answer has response_code {} but no status",
                    res.response_code
                )),
                note,
            );
        }
        let fact = Fact::reported(
            TxKind::Postpaid,
            &tx.reference,
            state_for_verdict(verdict),
            Detail {
                amount: res.price,
                product_code: res.code.clone(),
                customer_id: res.hp.clone(),
                provider_transaction_id: res.tr_id.map(|t| t.to_string()),
                response_code: Some(res.response_code.clone()),
                message: res.message.clone(),
                balance_after: res.balance,
                ..Detail::default()
            },
        );
        let outcome = match verdict {
            Verdict::Succeeded | Verdict::Failed | Verdict::Pending => CheckOutcome::Answered(fact),
            Verdict::NotReceived => CheckOutcome::NotReceived(fact),
            Verdict::NotFound => CheckOutcome::NotFound,
            Verdict::Rejected => CheckOutcome::Failed(format!(
                "request refused: {} {}",
                res.response_code,
                res.message.unwrap_or_default()
            )),
        };
        return done(outcome, note);
    }
    let res = match PrepaidResult::parse(&bytes) {
        Ok(d) => d.message,
        Err(e) => {
            return done(
                CheckOutcome::Failed(format!("unreadable answer: {e}")),
                e.to_string(),
            )
        }
    };
    if let Some(other) = res.ref_id.as_deref().filter(|r| *r != tx.reference) {
        return done(
            CheckOutcome::Failed(format!(
                "the answer is about ref_id {other}, not {}",
                tx.reference
            )),
            "an answer about another transaction".into(),
        );
    }
    let verdict = res.verdict();
    let note = format!(
        "status {}, rc {}",
        res.status
            .map_or_else(|| "none".to_owned(), |s| s.code().to_string()),
        res.rc
    );
    let outcome = match verdict {
        Verdict::Succeeded | Verdict::Failed | Verdict::Pending | Verdict::NotReceived => {
            let mut fact = Fact::reported(
                TxKind::Prepaid,
                &tx.reference,
                state_for_verdict(verdict),
                Detail {
                    amount: res.price,
                    product_code: res.product_code.clone(),
                    customer_id: res.customer_id.clone(),
                    provider_transaction_id: res.tr_id.map(|t| t.to_string()),
                    response_code: Some(res.rc.clone()),
                    message: res.message.clone(),
                    serial_number: res.sn.clone(),
                    pin: res.pin.clone(),
                    activation_code: res.activation_code.clone(),
                    balance_after: res.balance,
                    ..Detail::default()
                },
            );
            if let Some(why) = contradiction(res.status, &res.rc) {
                fact.basis = Basis::Contradictory(why);
            }
            CheckOutcome::Answered(fact)
        }
        Verdict::NotFound => CheckOutcome::NotFound,
        Verdict::Rejected => CheckOutcome::Failed(format!(
            "request refused: rc {} {}",
            res.rc,
            res.message.unwrap_or_default()
        )),
    };
    done(outcome, note)
}
