//! `POST /api/v1/orders` and `POST /api/v1/orders/{provider_id}/{ref}/pay`: lunas places the
//! order itself (see [`crate::orders`]).

use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use lunas_core::{OrderSpec, TxRecord, VaSpec};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{ApiError, AppState};
use crate::orders::{NewOrder, OrderError};

/// The body of `POST /api/v1/orders`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderIn {
    provider_id: String,
    #[serde(rename = "ref")]
    reference: String,
    kind: String,
    product_code: Option<String>,
    customer_id: Option<String>,
    // Postpaid.
    pay: Option<bool>,
    #[serde(default, deserialize_with = "amount")]
    max_amount: Option<i64>,
    month: Option<String>,
    year: Option<String>,
    nomor_identitas: Option<String>,
    // VA.
    order_id: Option<String>,
    #[serde(default, deserialize_with = "amount")]
    amount: Option<i64>,
    payment_channel: Option<String>,
    payment_system: Option<String>,
    multi_use: Option<bool>,
    billing_name: Option<String>,
    description: Option<String>,
    customer: Option<CustomerIn>,
    expires_at: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomerIn {
    email: Option<String>,
    full_name: Option<String>,
    phone: Option<String>,
}

/// The body of `POST .../pay`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PayIn {
    #[serde(deserialize_with = "amount")]
    amount: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
pub struct WaitQuery {
    wait: Option<String>,
}

/// Whole rupiah, as a number or as text.
fn amount<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    use serde::de::Error;
    let v = Option::<Value>::deserialize(d)?;
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => lunas_protocol::parse_int_text(&n.to_string())
            .map(Some)
            .map_err(|e| D::Error::custom(format!("not whole rupiah ({e})"))),
        Some(Value::String(s)) => lunas_protocol::parse_int_text(&s)
            .map(Some)
            .map_err(|e| D::Error::custom(format!("not whole rupiah ({e})"))),
        Some(_) => Err(D::Error::custom("expected a number of rupiah")),
    }
}

fn unplaceable(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "order_invalid", message)
}

/// Reads a JSON body: 400 when it is not JSON, 422 when its fields are wrong.
fn read<T: serde::de::DeserializeOwned>(
    body: Result<Json<Value>, JsonRejection>,
) -> Result<T, ApiError> {
    let Json(value) = body.map_err(|e| ApiError::bad_request("invalid_json", e.body_text()))?;
    serde_json::from_value(value).map_err(|e| unplaceable(e.to_string()))
}

fn required(name: &str, value: Option<String>) -> Result<String, ApiError> {
    value
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| unplaceable(format!("{name} is required")))
}

fn wait_of(q: &WaitQuery) -> Result<Option<Duration>, ApiError> {
    match q.wait.as_deref() {
        None | Some("") => Ok(None),
        Some(w) => match w.parse::<u64>() {
            Ok(n) if n <= 60 => Ok(Some(Duration::from_secs(n))),
            _ => Err(ApiError::bad_request(
                "invalid_query",
                format!("wait: {w:?} is not a number of seconds from 0 to 60"),
            )),
        },
    }
}

/// The order an `OrderIn` describes, or what is wrong with it.
fn order_of(body: OrderIn) -> Result<NewOrder, ApiError> {
    if let Some(problem) = crate::providers::ref_problem(&body.reference) {
        return Err(unplaceable(format!("ref: {problem}")));
    }
    let spec = match body.kind.as_str() {
        "prepaid" => OrderSpec::Prepaid {
            product_code: required("product_code", body.product_code)?,
            customer_id: required("customer_id", body.customer_id)?,
        },
        "postpaid" => OrderSpec::Postpaid {
            product_code: required("product_code", body.product_code)?,
            customer_id: required("customer_id", body.customer_id)?,
            month: body.month,
            year: body.year,
            nomor_identitas: body.nomor_identitas,
        },
        "va" => {
            let customer = body
                .customer
                .ok_or_else(|| unplaceable("customer is required (email, full_name, phone)"))?;
            let amount = body
                .amount
                .ok_or_else(|| unplaceable("amount is required"))?;
            let payment_system = body
                .payment_system
                .unwrap_or_else(|| "CLOSED".into())
                .to_ascii_uppercase();
            if !matches!(payment_system.as_str(), "CLOSED" | "OPEN" | "PARTIAL") {
                return Err(unplaceable(format!(
                    "payment_system {payment_system:?} is not CLOSED, OPEN or PARTIAL"
                )));
            }
            if amount <= 0 && payment_system != "OPEN" {
                return Err(unplaceable("amount must be a positive number of rupiah"));
            }
            if let Some(t) = &body.expires_at {
                time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                    .map_err(|_| {
                        unplaceable(format!("expires_at {t:?} is not an RFC 3339 time"))
                    })?;
            }
            let billing_name = required("billing_name", body.billing_name)?;
            OrderSpec::Va(VaSpec {
                order_id: required("order_id", body.order_id)?,
                amount,
                payment_channel: required("payment_channel", body.payment_channel)?,
                payment_system,
                multi_use: body.multi_use.unwrap_or(false),
                description: body.description.unwrap_or_else(|| billing_name.clone()),
                billing_name,
                email: required("customer.email", customer.email)?,
                full_name: required("customer.full_name", customer.full_name)?,
                phone: customer.phone,
                expires_at: body.expires_at,
            })
        }
        other => {
            return Err(unplaceable(format!(
                "kind: {other:?} is not prepaid, postpaid or va"
            )))
        }
    };
    let pay_up_to = match (body.pay, body.max_amount) {
        (Some(true), Some(max)) => Some(max),
        (Some(true), None) => {
            return Err(unplaceable(
                "pay: true needs max_amount, the most the bill may cost",
            ))
        }
        _ => None,
    };
    if pay_up_to.is_some() && !matches!(spec, OrderSpec::Postpaid { .. }) {
        return Err(unplaceable("pay and max_amount are for postpaid orders"));
    }
    Ok(NewOrder {
        provider_id: body.provider_id,
        reference: body.reference,
        spec,
        pay_up_to,
    })
}

impl From<OrderError> for ApiError {
    fn from(e: OrderError) -> Self {
        let message = e.to_string();
        match e {
            OrderError::Unplaceable(_) => unplaceable(message),
            OrderError::RefConflict(_) => {
                ApiError::new(StatusCode::CONFLICT, "ref_conflict", message)
            }
            OrderError::RateLimited { .. } => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
            }
            OrderError::OverMaxAmount { .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "over_max_amount", message)
            }
            OrderError::AmountChanged { .. } => {
                ApiError::new(StatusCode::CONFLICT, "amount_changed", message)
            }
            OrderError::NotPayable(_) => {
                ApiError::new(StatusCode::CONFLICT, "not_payable", message)
            }
            OrderError::NotFound { .. } => ApiError::not_found("not_found", message),
            OrderError::Busy => ApiError::new(StatusCode::CONFLICT, "busy", message),
            OrderError::Store(e) => ApiError::from(e),
        }
    }
}

fn answer(status: StatusCode, tx: &TxRecord) -> Response {
    (status, Json(tx.to_json())).into_response()
}

/// `POST /api/v1/orders`.
pub async fn place(
    State(app): State<AppState>,
    Query(q): Query<WaitQuery>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Response, ApiError> {
    let wait = wait_of(&q)?;
    let order = order_of(read::<OrderIn>(body)?)?;
    let placed = app.orders.place(order).await;
    let (tx, created) = match placed {
        Ok(done) => done,
        Err(OrderError::OverMaxAmount { price, max, tx }) => {
            let mut body = tx.to_json();
            body["error"] = json!({
                "code": "over_max_amount",
                "message": format!("the bill costs {price}, more than max_amount {max}; the inquiry is kept: pay it with POST /api/v1/orders/{}/{}/pay if you agree", tx.provider_id, tx.reference),
            });
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response());
        }
        Err(e @ OrderError::RateLimited { retry_after, .. }) => {
            let mut response = ApiError::from(e).into_response();
            response.headers_mut().insert(
                header::RETRY_AFTER,
                retry_after
                    .as_secs()
                    .max(1)
                    .to_string()
                    .parse()
                    .expect("a number"),
            );
            return Ok(response);
        }
        Err(e) => return Err(e.into()),
    };
    let tx = match wait {
        Some(w) => app.orders.wait_for(tx, w).await?,
        None => tx,
    };
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(answer(status, &tx))
}

/// `POST /api/v1/orders/{provider_id}/{ref}/pay`.
pub async fn pay(
    State(app): State<AppState>,
    Path((provider_id, reference)): Path<(String, String)>,
    Query(q): Query<WaitQuery>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Response, ApiError> {
    let wait = wait_of(&q)?;
    let PayIn { amount } = read(body)?;
    let amount = amount
        .ok_or_else(|| unplaceable("amount is required: the bill's price you agree to pay"))?;
    let tx = app.orders.pay(&provider_id, &reference, amount).await?;
    let tx = match wait {
        Some(w) => app.orders.wait_for(tx, w).await?,
        None => tx,
    };
    Ok(answer(StatusCode::OK, &tx))
}
