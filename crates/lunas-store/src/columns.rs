//! The column lists both backends select, in the order their row mappings read them.

pub(crate) const TX_COLUMNS: &str =
    "id, provider_id, ref, kind, state, needs_review, amount, product_code, \
     customer_id, provider_transaction_id, order_id, response_code, message, serial_number, pin, \
     activation_code, balance_after, total_paid, payments, created_at, updated_at, unconfirmed, \
     next_check_at, check_attempts, extra";

pub(crate) const OBSERVATION_COLUMNS: &str = "id, provider_id, ref, source, received_at, content_type, remote_addr, body, body_size, verdict, detail, \
     body_sha256, repeats, last_received_at, pruned_at";

pub(crate) const EVENT_COLUMNS: &str = "seq, id, type, transaction_id, created_at, data";

pub(crate) const DELIVERY_COLUMNS: &str =
    "d.id, d.event_seq, e.id, e.type, d.transaction_id, d.endpoint, d.state, \
     d.attempts, d.next_attempt_at, d.last_status, d.last_error, d.created_at, d.updated_at";

pub(crate) const ATTEMPT_COLUMNS: &str =
    "attempted_at, status, COALESCE(latency_us, latency_ms * 1000), response, error";
