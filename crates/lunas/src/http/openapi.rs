//! The route table and the OpenAPI document that describes it. The router uses these path
//! constants, and a test checks that every documented operation answers and that the document
//! lists every route.

use axum::Json;
use serde_json::{json, Value};

pub const CALLBACK: &str = "/callbacks/{provider_id}";
pub const TRANSACTIONS: &str = "/api/v1/transactions";
pub const TRANSACTION: &str = "/api/v1/transactions/{provider_id}/{ref}";
pub const EVENTS: &str = "/api/v1/events";
pub const PROVIDERS: &str = "/api/v1/providers";
pub const TRANSACTION_CHECK: &str = "/api/v1/transactions/{provider_id}/{ref}/check";
pub const TRANSACTION_RESOLVE: &str = "/api/v1/transactions/{provider_id}/{ref}/resolve";
pub const PROVIDER_BALANCE: &str = "/api/v1/providers/{provider_id}/balance";
pub const EVENT_REDELIVER: &str = "/api/v1/events/{id}/redeliver";
pub const TRANSACTION_REDELIVER: &str = "/api/v1/transactions/{provider_id}/{ref}/redeliver";
pub const DELIVERIES: &str = "/api/v1/deliveries";
pub const DELIVERIES_REDELIVER: &str = "/api/v1/deliveries/redeliver";
pub const ENDPOINTS: &str = "/api/v1/endpoints";
pub const ENDPOINT_TEST: &str = "/api/v1/endpoints/{id}/test";
pub const ORDERS: &str = "/api/v1/orders";
pub const ORDER_PAY: &str = "/api/v1/orders/{provider_id}/{ref}/pay";
pub const OPENAPI: &str = "/api/v1/openapi.json";
pub const HEALTHZ: &str = "/healthz";
pub const READYZ: &str = "/readyz";
pub const METRICS: &str = "/metrics";

/// Every (method, path) the router serves.
pub const ROUTES: &[(&str, &str)] = &[
    ("post", CALLBACK),
    ("get", TRANSACTIONS),
    ("post", TRANSACTIONS),
    ("get", TRANSACTION),
    ("get", EVENTS),
    ("get", PROVIDERS),
    ("post", TRANSACTION_CHECK),
    ("post", TRANSACTION_RESOLVE),
    ("get", PROVIDER_BALANCE),
    ("post", EVENT_REDELIVER),
    ("post", TRANSACTION_REDELIVER),
    ("get", DELIVERIES),
    ("post", DELIVERIES_REDELIVER),
    ("get", ENDPOINTS),
    ("post", ENDPOINT_TEST),
    ("post", ORDERS),
    ("post", ORDER_PAY),
    ("get", OPENAPI),
    ("get", HEALTHZ),
    ("get", READYZ),
    ("get", METRICS),
];

pub async fn document() -> Json<Value> {
    Json(spec())
}

/// The `operationId` of each operation: stable names for generated clients.
const OPERATION_IDS: &[(&str, &str, &str)] = &[
    ("post", CALLBACK, "receiveCallback"),
    ("get", TRANSACTIONS, "listTransactions"),
    ("post", TRANSACTIONS, "registerTransaction"),
    ("get", TRANSACTION, "getTransaction"),
    ("post", TRANSACTION_CHECK, "checkTransaction"),
    ("post", TRANSACTION_RESOLVE, "resolveTransaction"),
    ("post", TRANSACTION_REDELIVER, "redeliverTransaction"),
    ("get", EVENTS, "listEvents"),
    ("post", EVENT_REDELIVER, "redeliverEvent"),
    ("get", PROVIDERS, "listProviders"),
    ("get", PROVIDER_BALANCE, "getProviderBalance"),
    ("get", DELIVERIES, "listDeliveries"),
    ("post", DELIVERIES_REDELIVER, "redeliverDeadLetters"),
    ("get", ENDPOINTS, "listEndpoints"),
    ("post", ENDPOINT_TEST, "testEndpoint"),
    ("post", ORDERS, "placeOrder"),
    ("post", ORDER_PAY, "payBill"),
    ("get", OPENAPI, "getOpenApi"),
    ("get", HEALTHZ, "healthz"),
    ("get", READYZ, "readyz"),
    ("get", METRICS, "metrics"),
];

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

fn query(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "query", "required": false, "schema": {"type": "string"}, "description": description})
}

fn path(name: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}})
}

fn transaction_schema() -> Value {
    json!({
        "type": "object",
        "required": ["provider_id", "ref", "kind", "state", "needs_review", "created_at", "updated_at"],
        "properties": {
            "provider_id": {"type": "string"},
            "ref": {"type": "string"},
            "kind": {"enum": ["prepaid", "postpaid", "va"]},
            "state": {"enum": ["pending", "succeeded", "failed", "awaiting_payment", "partially_paid", "paid", "expired", "canceled", "refunded"]},
            "needs_review": {"type": "boolean"},
            "amount": {"type": ["integer", "null"], "description": "whole rupiah"},
            "product_code": {"type": ["string", "null"]},
            "customer_id": {"type": ["string", "null"]},
            "provider_transaction_id": {"type": ["string", "null"]},
            "response_code": {"type": ["string", "null"]},
            "message": {"type": ["string", "null"]},
            "serial_number": {"type": ["string", "null"]},
            "pin": {"type": ["string", "null"]},
            "activation_code": {"type": ["string", "null"]},
            "balance_after": {"type": ["integer", "null"]},
            "order_id": {"type": ["string", "null"], "description": "va only"},
            "total_paid": {"type": ["integer", "null"], "description": "va only"},
            "payments": {"type": "array", "description": "va only"},
            "va_number": {"type": ["string", "null"], "description": "va only"},
            "payment_system": {"type": ["string", "null"], "description": "va only"},
            "is_multi_use": {"type": ["boolean", "null"], "description": "va only"},
            "expires_at": {"type": ["string", "null"], "format": "date-time", "description": "va only"},
            "total_refunded": {"type": ["integer", "null"], "description": "va only"},
            "refunds": {"type": "array", "description": "va only"},
            "origin": {"enum": ["callback", "registration", "order"]},
            "submission": {"enum": ["not_sent", "sent", "unknown", "accepted", "rejected"], "description": "orders only: how far the order request (or a bill's payment) got"},
            "bill": {"type": "object", "description": "postpaid orders: the bill the inquiry returned", "properties": {
                "tr_id": {"type": "string"}, "price": {"type": "integer"}, "amount": {"type": ["integer", "null"]},
                "admin": {"type": ["integer", "null"]}, "period": {"type": ["string", "null"]},
                "customer_name": {"type": ["string", "null"]}, "desc": {}}},
            "inferred": {"type": "string", "description": "a failure lunas inferred after a grace period (provisional)"},
            "review_reasons": {"type": "array", "items": {"type": "object", "properties": {"reason": {"type": "string"}, "at": {"type": "string"}}}},
            "unconfirmed_state": {"type": "string"},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"}
        }
    })
}

fn order_schema() -> Value {
    json!({
        "type": "object",
        "required": ["provider_id", "ref", "kind"],
        "description": "prepaid: product_code, customer_id. postpaid: product_code, customer_id (month, year, nomor_identitas where the product needs them); without pay only the inquiry is made; with pay: true and max_amount the bill is paid at once when it costs at most max_amount. va: order_id, amount, payment_channel, billing_name, customer {email, full_name, phone?}, payment_system (CLOSED, OPEN, PARTIAL), multi_use, description, expires_at.",
        "additionalProperties": false,
        "properties": {
            "provider_id": {"type": "string"},
            "ref": {"type": "string", "description": "IAK/IDSL ref_id, MCPayment external_id; at most 128 characters, no surrounding white space"},
            "kind": {"enum": ["prepaid", "postpaid", "va"]},
            "product_code": {"type": "string"},
            "customer_id": {"type": "string"},
            "pay": {"type": "boolean"},
            "max_amount": {"type": ["integer", "string"]},
            "month": {"type": "string"},
            "year": {"type": "string"},
            "nomor_identitas": {"type": "string"},
            "order_id": {"type": "string"},
            "amount": {"type": ["integer", "string"]},
            "payment_channel": {"type": "string"},
            "payment_system": {"enum": ["CLOSED", "OPEN", "PARTIAL"]},
            "multi_use": {"type": "boolean"},
            "billing_name": {"type": "string"},
            "description": {"type": "string"},
            "customer": {"type": "object", "properties": {"email": {"type": "string"}, "full_name": {"type": "string"}, "phone": {"type": "string"}}},
            "expires_at": {"type": "string", "format": "date-time"}
        }
    })
}

/// What the `data` of each event type is, and the members it carries beyond its base schema.
fn event_data(event_type: &str) -> (&'static str, Value) {
    match event_type {
        "provider.balance_low" => ("BalanceLow", json!({})),
        "endpoint.test" => ("TestEventData", json!({})),
        "va.payment_received" => (
            "TransactionEventData",
            json!({"required": ["payment"], "properties": {"payment": {
                "type": "object", "required": ["reference_id", "amount"],
                "properties": {"reference_id": {"type": ["string", "null"]}, "amount": {"type": "integer"},
                    "paid_time": {"type": ["string", "null"]}}}}}),
        ),
        "va.refunded" => (
            "TransactionEventData",
            json!({"required": ["refund"], "properties": {"refund": {"type": "array"}}}),
        ),
        "transaction.conflict" => (
            "TransactionEventData",
            json!({"required": ["conflict"], "properties": {"conflict": {"type": "object", "required": ["reason"],
                "properties": {"reason": {"type": "string"}}}}}),
        ),
        "transaction.mismatch" => (
            "TransactionEventData",
            json!({"required": ["mismatch"], "properties": {"mismatch": {"type": "array", "items": {
                "type": "object", "required": ["field"], "properties": {"field": {"type": "string"}}}}}}),
        ),
        "transaction.resolved" => (
            "TransactionEventData",
            json!({"required": ["resolution"], "properties": {"resolution": {"type": "object",
                "required": ["state", "by", "at"], "properties": {"state": {"type": "string"},
                "note": {"type": ["string", "null"]}, "by": {"type": "string"}, "at": {"type": "string", "format": "date-time"}}}}}),
        ),
        _ => ("TransactionEventData", json!({})),
    }
}

/// Every event type a merchant can receive.
pub fn event_types() -> Vec<&'static str> {
    lunas_core::EventType::ALL
        .iter()
        .map(|t| t.as_str())
        .chain([crate::delivery::TEST_EVENT_TYPE])
        .collect()
}

/// The name of the component schema of the body delivered for `event_type`
/// (`transaction.succeeded` → `TransactionSucceededWebhook`).
pub fn webhook_schema_name(event_type: &str) -> String {
    let mut name = String::new();
    for part in event_type.split(['.', '_']) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            name.extend(first.to_uppercase());
            name.push_str(chars.as_str());
        }
    }
    name + "Webhook"
}

/// The `webhooks` section (one per event type: what lunas POSTs to an endpoint) and the
/// component schemas of their bodies.
fn webhooks(doc: &mut Value) {
    let mut hooks = serde_json::Map::new();
    for t in event_types() {
        let (base, extra) = event_data(t);
        let name = webhook_schema_name(t);
        let data = if extra.as_object().is_some_and(|o| !o.is_empty()) {
            json!({"allOf": [{"$ref": format!("#/components/schemas/{base}")}, extra]})
        } else {
            json!({"$ref": format!("#/components/schemas/{base}")})
        };
        doc["components"]["schemas"][&name] = json!({
            "type": "object",
            "required": ["type", "timestamp", "data"],
            "properties": {
                "type": {"const": t},
                "timestamp": {"type": "string", "format": "date-time", "description": "when the event was committed, RFC 3339 UTC"},
                "data": data
            }
        });
        hooks.insert(t.to_owned(), json!({"post": {
            "summary": format!("{t}: see the README's event catalogue"),
            "description": "Signed as Standard Webhooks: headers webhook-id (the event id; the same on every attempt), webhook-timestamp, webhook-signature (v1,<base64 HMAC-SHA256 of id.timestamp.body>, one per configured secret, space-separated).",
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{name}")}}}},
            "responses": {"2XX": {"description": "Stored: delivered, not sent again"}, "default": {"description": "Anything else is retried on the schedule, then dead-lettered"}}
        }}));
    }
    doc["webhooks"] = Value::Object(hooks);
}

/// The OpenAPI 3.1 document of the gateway.
pub fn spec() -> Value {
    let mut doc = document_body();
    webhooks(&mut doc);
    for (method, path, id) in OPERATION_IDS {
        if let Some(op) = doc["paths"][*path][*method].as_object_mut() {
            op.insert("operationId".into(), json!(id));
        }
    }
    for (method, path, code, content) in answer_schemas() {
        if let Some(answer) = doc["paths"][path][method]["responses"][code].as_object_mut() {
            answer.insert("content".into(), content);
        }
    }
    doc
}

fn json_schema(schema: Value) -> Value {
    json!({"application/json": {"schema": schema}})
}

/// The bodies of the successful answers whose shape the operations above only describe.
fn answer_schemas() -> Vec<(&'static str, &'static str, &'static str, Value)> {
    let transaction = json!({"$ref": "#/components/schemas/Transaction"});
    let queued = json_schema(
        json!({"type": "object", "required": ["queued"], "properties": {"queued": {"type": "integer"}}}),
    );
    let items = |item: Value| {
        json_schema(
            json!({"type": "object", "required": ["items"], "properties": {
            "items": {"type": "array", "items": item},
            "next_cursor": {"type": ["string", "null"]}}}),
        )
    };
    let status = |word: &str| {
        json_schema(
            json!({"type": "object", "required": ["status"], "properties": {"status": {"const": word}}}),
        )
    };
    vec![
        (
            "post",
            CALLBACK,
            "200",
            json!({
                "application/json": {"schema": {"type": "object", "properties": {"message": {"const": "SUCCESS"}}}},
                "application/xml": {"schema": {"type": "string", "description": "IAK's <mp><message>SUCCESS</message></mp>"}}
            }),
        ),
        (
            "post",
            TRANSACTIONS,
            "200",
            json_schema(transaction.clone()),
        ),
        (
            "get",
            TRANSACTION,
            "200",
            json_schema(
                json!({"allOf": [transaction.clone(), {"type": "object", "properties": {
                "timeline": {"type": "array", "items": {"type": "object", "required": ["type", "at"], "properties": {
                    "type": {"enum": ["observation", "event", "delivery_attempt"]}, "at": {"type": "string", "format": "date-time"}}}},
                "deliveries": {"type": "array"},
                "older_observations": {"type": ["integer", "null"], "description": "Pass as observations_before to read the older observations"},
                "next_check_at": {"type": ["string", "null"], "format": "date-time"}}}]}),
            ),
        ),
        (
            "post",
            TRANSACTION_CHECK,
            "200",
            json_schema(
                json!({"allOf": [transaction, {"type": "object", "properties": {
                "check": {"type": "object", "properties": {"verdict": {"type": "string"}, "observation_id": {"type": "integer"}}}}}]}),
            ),
        ),
        (
            "get",
            PROVIDERS,
            "200",
            items(
                json!({"type": "object", "required": ["id", "kind"], "properties": {
                "id": {"type": "string"}, "kind": {"type": "string"}, "environment": {"type": "string"},
                "confirm_callbacks": {"type": "boolean"}, "callbacks": {"type": "integer"},
                "rejected": {"type": "integer"}, "signature_failures": {"type": "integer"},
                "last_callback_at": {"type": ["string", "null"]}, "last_balance": {"type": ["integer", "null"]},
                "last_balance_at": {"type": ["string", "null"]}}}),
            ),
        ),
        (
            "get",
            PROVIDER_BALANCE,
            "200",
            json_schema(
                json!({"type": "object", "required": ["provider_id", "items"], "properties": {
                "provider_id": {"type": "string"}, "low_balance": {"type": ["integer", "null"]},
                "items": {"type": "array", "items": {"type": "object", "properties": {
                    "at": {"type": "string", "format": "date-time"}, "balance": {"type": "integer"}}}}}}),
            ),
        ),
        ("post", EVENT_REDELIVER, "200", queued.clone()),
        ("post", TRANSACTION_REDELIVER, "200", queued.clone()),
        ("post", DELIVERIES_REDELIVER, "200", queued),
        (
            "get",
            DELIVERIES,
            "200",
            items(json!({"type": "object", "properties": {
                "id": {"type": "integer"}, "event_id": {"type": "string"}, "endpoint": {"type": "string"},
                "state": {"enum": ["pending", "delivered", "dead"]}, "attempts": {"type": "integer"}}})),
        ),
        (
            "get",
            ENDPOINTS,
            "200",
            items(
                json!({"type": "object", "properties": {"id": {"type": "string"}, "url": {"type": "string"}}}),
            ),
        ),
        (
            "get",
            OPENAPI,
            "200",
            json_schema(json!({"type": "object"})),
        ),
        ("get", HEALTHZ, "200", status("ok")),
        ("get", READYZ, "200", status("ready")),
        (
            "get",
            METRICS,
            "200",
            json!({"text/plain": {"schema": {"type": "string", "description": "Prometheus text exposition"}}}),
        ),
    ]
}

fn document_body() -> Value {
    let bearer = json!([{"bearer": []}]);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "lunas gateway",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Provider callbacks in, normalized transactions and events out. Errors are {\"error\": {\"code\", \"message\"}}. Secured operations take the admin token or a [[server.tokens]] token; a token without the scope an operation needs (GET: read; orders and registration: orders; the rest: admin) is answered 403 forbidden_scope."
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
                        "code": {"type": "string"}, "message": {"type": "string"}}}}
                },
                "Transaction": transaction_schema(),
                "Order": order_schema(),
                "Event": {
                    "description": "An event as the feed (GET /api/v1/events) lists it; what an endpoint receives is in `webhooks`",
                    "type": "object",
                    "required": ["id", "type", "created_at", "data"],
                    "properties": {
                        "id": {"type": "string"},
                        "type": {"enum": lunas_core::EventType::ALL.iter().map(|t| t.as_str()).collect::<Vec<_>>()},
                        "created_at": {"type": "string", "format": "date-time"},
                        "data": {"oneOf": [{"$ref": "#/components/schemas/TransactionEventData"}, {"$ref": "#/components/schemas/BalanceLow"}]}
                    }
                },
                "TransactionEventData": {
                    "description": "The transaction as the admin API shows it, its state before the message that caused the event (null when that message created it), and the members its event type names",
                    "allOf": [
                        {"$ref": "#/components/schemas/Transaction"},
                        {"type": "object", "required": ["previous_state"], "properties": {"previous_state": {"type": ["string", "null"]}}}
                    ]
                },
                "BalanceLow": {
                    "type": "object",
                    "required": ["provider_id", "balance", "threshold", "at"],
                    "properties": {
                        "provider_id": {"type": "string"},
                        "balance": {"type": "integer", "description": "whole rupiah"},
                        "threshold": {"type": "integer"},
                        "at": {"type": "string", "format": "date-time"}
                    }
                },
                "TestEventData": {
                    "type": "object",
                    "required": ["endpoint", "message"],
                    "properties": {"endpoint": {"type": "string"}, "message": {"type": "string"}}
                }
            }
        },
        "paths": {
            CALLBACK: {"post": {
                "summary": "Receive a provider callback (IAK/IDSL JSON or XML, MCPayment JSON)",
                "parameters": [path("provider_id")],
                "requestBody": {"required": true, "content": {"application/json": {}, "application/xml": {}}},
                "responses": {
                    "200": {"description": "Committed durably; the body is the acknowledgement the provider expects"},
                    "400": error_response("Malformed body, XML with DOCTYPE or entities, missing field, unknown status"),
                    "401": error_response("Signature does not verify"),
                    "403": error_response("Source address not allowed"),
                    "404": error_response("Unknown provider account"),
                    "413": error_response("Body over the limit"),
                    "503": error_response("Storage unavailable: retry")
                }
            }},
            TRANSACTIONS: {
                "get": {
                    "summary": "List transactions, newest first",
                    "security": bearer,
                    "parameters": [
                        query("provider_id", "provider account id"),
                        query("state", "normalized state"),
                        query("kind", "prepaid | postpaid | va"),
                        query("needs_review", "true | false"),
                        query("since", "created at or after (RFC 3339)"),
                        query("until", "created before (RFC 3339)"),
                        query("q", "exact ref or customer number"),
                        query("cursor", "next_cursor of the previous page"),
                        query("limit", "1..500, default 50")
                    ],
                    "responses": {
                        "200": {"description": "A page", "content": {"application/json": {"schema": {"type": "object", "properties": {
                            "items": {"type": "array", "items": {"$ref": "#/components/schemas/Transaction"}},
                            "next_cursor": {"type": ["string", "null"]}}}}}},
                        "400": error_response("Invalid query"),
                        "401": error_response("Missing or wrong admin token")
                    }
                },
                "post": {
                    "summary": "Register a transaction the merchant started, so it is tracked even if no callback comes",
                    "security": bearer,
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {
                        "type": "object",
                        "required": ["provider_id", "ref", "kind"],
                        "properties": {
                            "provider_id": {"type": "string"}, "ref": {"type": "string"},
                            "kind": {"enum": ["prepaid", "postpaid", "va"]},
                            "product_code": {"type": "string"}, "customer_id": {"type": "string"},
                            "amount": {"type": ["integer", "string"]},
                            "provider_transaction_id": {"type": "string"}, "order_id": {"type": "string"}}}}}},
                    "responses": {
                        "201": {"description": "Created", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Transaction"}}}},
                        "200": {"description": "Already known; returned as stored"},
                        "400": error_response("Invalid body"),
                        "401": error_response("Missing or wrong admin token"),
                        "409": error_response("Known with another kind")
                    }
                }
            },
            TRANSACTION: {"get": {
                "summary": "A transaction with its timeline: its events, and a page of its observations (the newest 50 unless asked otherwise)",
                "security": bearer,
                "parameters": [path("provider_id"), path("ref"),
                    query("observations_before", "read the observations older than this id (the answer's older_observations)"),
                    query("observations_limit", "observations per page, 1..200, default 50")],
                "responses": {
                    "200": {"description": "The transaction and `timeline`"},
                    "400": error_response("A bad query value"),
                    "401": error_response("Missing or wrong admin token"),
                    "404": error_response("No such transaction")
                }
            }},
            EVENTS: {"get": {
                "summary": "The event feed, oldest first",
                "security": bearer,
                "parameters": [query("after", "cursor: events after this one"), query("limit", "1..1000, default 100")],
                "responses": {
                    "200": {"description": "Events and the cursor to continue from", "content": {"application/json": {"schema": {"type": "object", "properties": {
                        "events": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}},
                        "next_cursor": {"type": "string"}}}}}},
                    "401": error_response("Missing or wrong admin token")
                }
            }},
            PROVIDERS: {"get": {
                "summary": "Provider accounts and their health",
                "security": bearer,
                "responses": {"200": {"description": "Accounts"}, "401": error_response("Missing or wrong admin token")}
            }},
            PROVIDER_BALANCE: {"get": {
                "summary": "The deposit balances a provider account reported, oldest first",
                "security": bearer,
                "parameters": [path("provider_id"), query("since", "RFC 3339; default 7 days ago"), query("limit", "1..10000, default 1000")],
                "responses": {"200": {"description": "{\"provider_id\", \"low_balance\", \"items\": [{\"at\", \"balance\"}]}"}, "401": error_response("Missing or wrong admin token"), "404": error_response("Unknown provider account")}
            }},
            ORDERS: {"post": {
                "summary": "Place an order (prepaid top-up, postpaid bill inquiry and payment, virtual account): committed before it is sent, sent exactly once, never called failed while its outcome is unknown",
                "security": bearer,
                "parameters": [{"name": "wait", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 0, "maximum": 60}, "description": "Hold the answer until the transaction is final or this many seconds pass"}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Order"}}}},
                "responses": {
                    "201": {"description": "Placed: the transaction with `origin: order`, `submission` and, for a bill, `bill`; a refusal by the provider is a definite answer (state failed; a VA canceled)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Transaction"}}}},
                    "200": {"description": "The same order again (same ref, same fields): the transaction as it is; nothing is sent again", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Transaction"}}}},
                    "400": error_response("The body is not JSON"),
                    "401": error_response("Missing or wrong token"),
                    "409": error_response("ref_conflict: the ref is known with other fields"),
                    "422": error_response("order_invalid: a field missing or malformed, or a kind the provider does not offer; over_max_amount: the bill costs more than max_amount (the inquiry is kept, the body is the transaction with `error`)"),
                    "429": error_response("rate_limited: the account's order budget is spent (Retry-After)")
                }
            }},
            ORDER_PAY: {"post": {
                "summary": "Pay an inquired postpaid bill, only if its price is exactly `amount`; a bill is paid at most once",
                "security": bearer,
                "parameters": [path("provider_id"), path("ref"), {"name": "wait", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 0, "maximum": 60}}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["amount"], "properties": {"amount": {"type": "integer"}}}}}},
                "responses": {
                    "200": {"description": "The transaction after the payment request (or as it is, when the same payment was asked before)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Transaction"}}}},
                    "401": error_response("Missing or wrong token"),
                    "404": error_response("No such order"),
                    "409": error_response("amount_changed: the bill costs another amount; not_payable: nothing to pay or paid already; busy"),
                    "422": error_response("order_invalid: amount missing or malformed"),
                    "429": error_response("rate_limited")
                }
            }},
            TRANSACTION_RESOLVE: {"post": {
                "summary": "Resolve the review of a flagged transaction: clear needs_review, keep or set a final state, record who, when and why; emits transaction.resolved (and the state's own event if it changed)",
                "security": bearer,
                "parameters": [path("provider_id"), path("ref")],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["state", "note"], "additionalProperties": false, "properties": {
                    "state": {"enum": ["succeeded", "failed", "paid", "expired", "canceled", "refunded"], "description": "a final state of the transaction's kind"},
                    "note": {"type": "string", "maxLength": 2000}}}}}},
                "responses": {
                    "200": {"description": "The transaction after the resolution", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Transaction"}}}},
                    "400": error_response("The body is not JSON"),
                    "401": error_response("Missing or wrong admin token"),
                    "404": error_response("No such transaction"),
                    "409": error_response("not_flagged: the transaction is not flagged for review"),
                    "422": error_response("invalid_resolution: state missing or not a final state of its kind, note missing or too long")
                }
            }},
            TRANSACTION_CHECK: {"post": {
                "summary": "Ask the provider's check-status API about one transaction now, and apply the answer",
                "security": bearer,
                "parameters": [path("provider_id"), path("ref")],
                "responses": {
                    "200": {"description": "The transaction after the check, with `check` (verdict and what was asked)"},
                    "401": error_response("Missing or wrong admin token"),
                    "404": error_response("No such transaction"),
                    "409": error_response("A check of it is already under way")
                }
            }},
            EVENT_REDELIVER: {"post": {
                "summary": "Deliver one event again to every endpoint subscribed to its type",
                "security": bearer,
                "parameters": [path("id")],
                "responses": {"200": {"description": "{\"queued\": n}"}, "401": error_response("Missing or wrong admin token"), "404": error_response("No such event, or no endpoint subscribes to it")}
            }},
            TRANSACTION_REDELIVER: {"post": {
                "summary": "Deliver every event of one transaction again",
                "security": bearer,
                "parameters": [path("provider_id"), path("ref")],
                "responses": {"200": {"description": "{\"queued\": n}"}, "401": error_response("Missing or wrong admin token"), "404": error_response("No such transaction")}
            }},
            DELIVERIES: {"get": {
                "summary": "Deliveries with their attempts, newest first",
                "security": bearer,
                "parameters": [query("state", "pending | delivered | dead"), query("endpoint", "endpoint id"), query("cursor", "next_cursor of the previous page"), query("limit", "1..500, default 50")],
                "responses": {"200": {"description": "A page of deliveries"}, "400": error_response("Invalid query"), "401": error_response("Missing or wrong admin token")}
            }},
            DELIVERIES_REDELIVER: {"post": {
                "summary": "Deliver again every dead-lettered delivery whose event falls in a window",
                "security": bearer,
                "requestBody": {"required": false, "content": {"application/json": {"schema": {"type": "object", "properties": {
                    "since": {"type": "string", "format": "date-time"}, "until": {"type": "string", "format": "date-time"}, "endpoint": {"type": "string"}}}}}},
                "responses": {"200": {"description": "{\"queued\": n}"}, "400": error_response("Invalid window"), "401": error_response("Missing or wrong admin token")}
            }},
            ENDPOINTS: {"get": {
                "summary": "Configured endpoints with delivery counters (pending, delivered, dead, held behind a dead letter; 410 answers counted, never acted on silently), whether each is enabled and its dead-letter policy, and under `unconfigured` endpoints removed from the configuration with deliveries still pending",
                "security": bearer,
                "responses": {"200": {"description": "Endpoints"}, "401": error_response("Missing or wrong admin token")}
            }},
            ENDPOINT_TEST: {"post": {
                "summary": "Sign and send one `endpoint.test` event to the endpoint now, as deliveries are signed; nothing is stored or retried",
                "security": bearer,
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {
                    "200": {"description": "What the endpoint answered (`delivered` is true for 2xx)", "content": {"application/json": {"schema": {"type": "object",
                        "required": ["endpoint", "url", "webhook_id", "delivered", "latency_ms", "body"],
                        "properties": {
                            "endpoint": {"type": "string"}, "url": {"type": "string"}, "webhook_id": {"type": "string"},
                            "delivered": {"type": "boolean"}, "status": {"type": ["integer", "null"]},
                            "latency_ms": {"type": "number"}, "response": {"type": ["string", "null"]},
                            "error": {"type": ["string", "null"]}, "body": {"type": "string", "description": "the body sent, as signed"}}}}}},
                    "401": error_response("Missing or wrong admin token"),
                    "403": error_response("A token without the admin scope"),
                    "404": error_response("No such endpoint")
                }
            }},
            OPENAPI: {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1"}}}},
            HEALTHZ: {"get": {"summary": "The process is up", "responses": {"200": {"description": "ok"}}}},
            METRICS: {"get": {"summary": "Prometheus / OpenMetrics text: callbacks, checks, events, deliveries, queue depths", "responses": {"200": {"description": "OpenMetrics text"}, "503": error_response("Storage unavailable")}}},
            READYZ: {"get": {"summary": "The store answers", "responses": {"200": {"description": "ready"}, "503": error_response("Storage unavailable")}}}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_lists_exactly_the_routes() {
        let spec = spec();
        let mut documented: Vec<(String, String)> = spec["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(p, ops)| {
                ops.as_object()
                    .unwrap()
                    .keys()
                    .map(move |m| (m.clone(), p.clone()))
            })
            .collect();
        documented.sort();
        let mut routes: Vec<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| ((*m).into(), (*p).into()))
            .collect();
        routes.sort();
        assert_eq!(documented, routes);
    }
}
