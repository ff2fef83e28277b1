//! IAK/IDSL postpaid (bill payment): `POST /api/v1/bill/check` with `commands` = `inq-pasca`
//! (inquiry), `pay-pasca` (payment), `checkstatus`, `pricelist-pasca`. Synchronous: postpaid
//! has no callbacks, so check-status is the only way to learn a lost payment's outcome (seed 003).
//!
//! Answers are `{"data":{..},"meta":[]}`; `desc` is a product-specific object, or `""` when
//! empty; amounts are typed "Double" but are whole rupiah and may exceed 32 bits.

use serde_json::Value;

use super::{rc, RcClass, Verdict};
use crate::codec::{self, Envelope, Format, ObjectBuilder};
use crate::error::{ProtocolError, Result};
use crate::fields::Fields;
use crate::secret::Secret;
use crate::sign::{iak_sign, iak_verify, IakSignInput};
use crate::{ApiVersion, Decoded};

/// The one path of every postpaid command (price list appends `/{type}`).
pub const PATH: &str = "/api/v1/bill/check";

/// The postpaid check-status `status` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PostpaidStatus {
    /// 0: the payment request has not been received (only the inquiry exists).
    NotReceived,
    /// 1: payment success.
    Success,
    /// 2: payment failed.
    Failed,
    /// 3: payment is being processed.
    Processing,
}

impl PostpaidStatus {
    pub fn code(self) -> i64 {
        match self {
            PostpaidStatus::NotReceived => 0,
            PostpaidStatus::Success => 1,
            PostpaidStatus::Failed => 2,
            PostpaidStatus::Processing => 3,
        }
    }

    pub fn parse(text: &str) -> Result<Self> {
        match text.trim() {
            "0" => Ok(PostpaidStatus::NotReceived),
            "1" => Ok(PostpaidStatus::Success),
            "2" => Ok(PostpaidStatus::Failed),
            "3" => Ok(PostpaidStatus::Processing),
            other => Err(ProtocolError::UnknownValue {
                field: "status".into(),
                value: other.into(),
            }),
        }
    }
}

/// Reads a postpaid status (absent in inquiry and payment answers) with its response code.
pub fn verdict(status: Option<PostpaidStatus>, response_code: &str) -> Verdict {
    use PostpaidStatus as S;
    match (rc::postpaid_class(response_code), status) {
        (RcClass::Rejected, _) => Verdict::Rejected,
        (RcClass::NotFound, _) => Verdict::NotFound,
        (_, Some(S::Processing)) => Verdict::Pending,
        (RcClass::Success, None | Some(S::Success)) => Verdict::Succeeded,
        (RcClass::Failed, None | Some(S::Failed)) => Verdict::Failed,
        (RcClass::NotReceived, None | Some(S::NotReceived)) => Verdict::NotReceived,
        _ => Verdict::Pending,
    }
}

/// What a postpaid request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostpaidCommand {
    /// `inq-pasca`: look a bill up; the answer's `tr_id` pays it.
    Inquiry {
        code: String,
        hp: String,
        ref_id: String,
        /// BPJS: number of months.
        month: Option<String>,
        /// PBB: tax year.
        year: Option<String>,
        /// ESAMSAT.JABAR: identity number.
        nomor_identitas: Option<String>,
    },
    /// `pay-pasca`: pay the bill of an inquiry.
    Payment { tr_id: i64 },
    /// `checkstatus`: the outcome of the payment for an inquiry's `ref_id`.
    CheckStatus { ref_id: String },
    /// `pricelist-pasca`.
    PriceList {
        /// Path segment after the path, e.g. `pln`, `bpjs`.
        product_type: Option<String>,
        status: Option<String>,
        /// PDAM only.
        province: Option<String>,
    },
}

impl PostpaidCommand {
    pub fn name(&self) -> &'static str {
        match self {
            PostpaidCommand::Inquiry { .. } => "inq-pasca",
            PostpaidCommand::Payment { .. } => "pay-pasca",
            PostpaidCommand::CheckStatus { .. } => "checkstatus",
            PostpaidCommand::PriceList { .. } => "pricelist-pasca",
        }
    }

    pub fn sign_input(&self) -> IakSignInput<'_> {
        match self {
            PostpaidCommand::Inquiry { ref_id, .. } => IakSignInput::RefId(ref_id),
            PostpaidCommand::Payment { tr_id } => IakSignInput::TrId(*tr_id),
            PostpaidCommand::CheckStatus { .. } => IakSignInput::CheckStatus,
            PostpaidCommand::PriceList { .. } => IakSignInput::PriceList,
        }
    }
}

/// A signed postpaid request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostpaidRequest {
    pub username: String,
    pub command: PostpaidCommand,
    pub sign: String,
}

impl PostpaidRequest {
    pub fn new(username: &str, api_key: &Secret, command: PostpaidCommand) -> Self {
        let sign = iak_sign(username, api_key, command.sign_input());
        PostpaidRequest {
            username: username.to_owned(),
            command,
            sign,
        }
    }

    pub fn verify(&self, api_key: &Secret) -> bool {
        iak_verify(
            &self.username,
            api_key,
            self.command.sign_input(),
            &self.sign,
        )
    }

    pub fn path(&self) -> String {
        match &self.command {
            PostpaidCommand::PriceList {
                product_type: Some(t),
                ..
            } => format!("{PATH}/{t}"),
            _ => PATH.to_owned(),
        }
    }

    pub fn encode(&self, format: Format) -> String {
        let b = ObjectBuilder::new()
            .put("commands", self.command.name())
            .put("username", self.username.as_str());
        let b = match &self.command {
            PostpaidCommand::Inquiry {
                code,
                hp,
                ref_id,
                month,
                year,
                nomor_identitas,
            } => b
                .put("code", code.as_str())
                .put("hp", hp.as_str())
                .put("ref_id", ref_id.as_str())
                .opt("month", month.as_deref())
                .opt("year", year.as_deref())
                .opt("nomor_identitas", nomor_identitas.as_deref()),
            // The documents send the payment `tr_id` as a string although it is an integer.
            PostpaidCommand::Payment { tr_id } => b.put("tr_id", tr_id.to_string()),
            PostpaidCommand::CheckStatus { ref_id } => b.put("ref_id", ref_id.as_str()),
            PostpaidCommand::PriceList {
                status, province, ..
            } => b
                .opt("status", status.as_deref())
                .opt("province", province.as_deref()),
        };
        codec::encode(
            b.put("sign", self.sign.as_str()).build(),
            format,
            Envelope::Bare,
            &[],
        )
    }

    /// Parses a request received at `path` ([`PATH`] or `PATH/{type}` for the price list).
    pub fn parse(path: &str, bytes: &[u8]) -> Result<Decoded<Self>> {
        let (format, map) = codec::decode(bytes, Envelope::Bare)?;
        let f = Fields::new(&map);
        let rest = path
            .trim_end_matches('/')
            .strip_prefix(PATH)
            .ok_or_else(|| ProtocolError::UnknownValue {
                field: "path".into(),
                value: path.into(),
            })?;
        // Empty segments are nothing (an SDK may write `check//` for no type); more than one
        // segment is a path IAK does not serve.
        let mut segments = rest.split('/').filter(|s| !s.is_empty());
        let segment = segments.next();
        if segments.next().is_some() || (!rest.is_empty() && !rest.starts_with('/')) {
            return Err(ProtocolError::UnknownValue {
                field: "path".into(),
                value: path.into(),
            });
        }
        let commands = f.text_req(&["commands"])?;
        let command = match commands.as_str() {
            "inq-pasca" => PostpaidCommand::Inquiry {
                code: f.text_req(&["code"])?,
                hp: f.text_req(&["hp"])?,
                ref_id: f.text_req(&["ref_id"])?,
                month: f.text(&["month"])?,
                year: f.text(&["year"])?,
                nomor_identitas: f.text(&["nomor_identitas"])?,
            },
            "pay-pasca" => PostpaidCommand::Payment {
                tr_id: f.int_req(&["tr_id"])?,
            },
            "checkstatus" => PostpaidCommand::CheckStatus {
                ref_id: f.text_req(&["ref_id"])?,
            },
            "pricelist-pasca" => PostpaidCommand::PriceList {
                product_type: segment.map(str::to_owned),
                status: f.text(&["status"])?,
                province: f.text(&["province"])?,
            },
            other => {
                return Err(ProtocolError::UnknownValue {
                    field: "commands".into(),
                    value: other.into(),
                })
            }
        };
        if segment.is_some() && !matches!(command, PostpaidCommand::PriceList { .. }) {
            return Err(ProtocolError::UnknownValue {
                field: "path".into(),
                value: path.into(),
            });
        }
        let request = PostpaidRequest {
            username: f.text_req(&["username"])?,
            command,
            sign: f.text_req(&["sign"])?,
        };
        Ok(Decoded {
            message: request,
            format,
            version: ApiVersion::V1,
        })
    }
}

/// The `data` of an inquiry, payment or check-status answer. Only `response_code` is always
/// present; refusals carry little else.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PostpaidResult {
    pub tr_id: Option<i64>,
    pub code: Option<String>,
    /// `YmdHis`, e.g. `20180803171608`.
    pub datetime: Option<String>,
    pub hp: Option<String>,
    pub tr_name: Option<String>,
    pub period: Option<String>,
    pub nominal: Option<i64>,
    pub admin: Option<i64>,
    pub status: Option<PostpaidStatus>,
    pub response_code: String,
    pub message: Option<String>,
    /// `nominal + admin`: what the customer pays.
    pub price: Option<i64>,
    /// What IAK deducts from the deposit (`price` less commission).
    pub selling_price: Option<i64>,
    pub balance: Option<i64>,
    /// The biller's reference, when it has one.
    pub noref: Option<String>,
    pub ref_id: Option<String>,
    /// Product-specific detail: an object, or `""` when empty; kept verbatim.
    pub desc: Option<Value>,
}

impl PostpaidResult {
    pub fn parse(bytes: &[u8]) -> Result<Decoded<Self>> {
        let (format, map) = codec::decode(bytes, Envelope::Data)?;
        let f = Fields::new(&map);
        let desc = match f.raw("desc") {
            None | Some(Value::Null) => None,
            Some(v @ (Value::Object(_) | Value::String(_))) => Some(v.clone()),
            Some(_) => {
                return Err(ProtocolError::invalid(
                    "desc",
                    "expected an object or a string",
                ))
            }
        };
        let result = PostpaidResult {
            tr_id: f.int(&["tr_id"])?,
            code: f.text(&["code"])?,
            datetime: f.text(&["datetime"])?,
            hp: f.text(&["hp"])?,
            tr_name: f.text(&["tr_name"])?,
            period: f.text(&["period"])?,
            nominal: f.int(&["nominal"])?,
            admin: f.int(&["admin"])?,
            status: f
                .text(&["status"])?
                .as_deref()
                .map(PostpaidStatus::parse)
                .transpose()?,
            response_code: f.text_req(&["response_code"])?,
            message: f.text(&["message"])?,
            price: f.int(&["price"])?,
            selling_price: f.int(&["selling_price"])?,
            balance: f.int(&["balance"])?,
            noref: f.text(&["noref", "no_ref"])?,
            ref_id: f.text(&["ref_id"])?,
            desc,
        };
        Ok(Decoded {
            message: result,
            format,
            version: ApiVersion::V1,
        })
    }

    pub fn verdict(&self) -> Verdict {
        verdict(self.status, &self.response_code)
    }

    /// The answer IAK would give, `{"data":{..},"meta":[]}` in JSON.
    pub fn encode(&self, format: Format) -> String {
        let settled = matches!(
            self.status,
            Some(PostpaidStatus::Success | PostpaidStatus::Failed)
        );
        let fields = ObjectBuilder::new()
            .opt("tr_id", self.tr_id)
            .opt("code", self.code.as_deref())
            .opt("datetime", self.datetime.as_deref())
            .opt("hp", self.hp.as_deref())
            .opt("tr_name", self.tr_name.as_deref())
            .opt("period", self.period.as_deref())
            .opt("nominal", self.nominal)
            .opt("admin", self.admin)
            // Seed 003's check-status answers have `ref_id` after `admin` while the payment is
            // not received or in process, after `noref` once it succeeded or failed; the
            // pay-pasca answer (no `status`) after `admin`.
            .opt("ref_id", self.ref_id.as_deref().filter(|_| !settled))
            .opt("status", self.status.map(PostpaidStatus::code))
            .put("response_code", self.response_code.as_str())
            .opt("message", self.message.as_deref())
            .opt("price", self.price)
            .opt("selling_price", self.selling_price)
            .opt("balance", self.balance)
            .opt("noref", self.noref.as_deref())
            .opt("ref_id", self.ref_id.as_deref().filter(|_| settled))
            .opt("desc", self.desc.clone())
            .build();
        codec::encode(
            fields,
            format,
            Envelope::Data,
            &[("meta", Value::Array(Vec::new()))],
        )
    }
}
