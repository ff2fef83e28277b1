//! The command line. Each subcommand is documented here; `lunas --help` prints it all.

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use lunas_protocol::sign::{self, IakSignInput};

use crate::secrets;

/// lunas makes the asynchronous outcome of IAK, IDSL and MCPayment transactions reliable:
/// it verifies provider callbacks, keeps every transaction's state and evidence, asks the
/// providers when a callback is overdue, and forwards signed events to your application.
#[derive(Debug, Parser)]
#[command(name = "lunas", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compute or verify a provider signature, to debug an integration.
    ///
    /// Secrets may be written `env:VAR_NAME` to read them from the environment.
    #[command(subcommand)]
    Sign(SignCommand),
}

#[derive(Debug, Subcommand)]
pub enum SignCommand {
    /// IAK / IDSL `sign`: md5(username + api_key + X), X chosen by one of the flags.
    Iak(IakSign),
    /// MCPayment `x-req-signature` (request) or, with --transaction-id, the callback
    /// `mcp-signature`.
    Mcp(McpSign),
    /// MCPayment `Authorization` header: Basic base64(merchant_id:secret_unbound_id).
    McpAuth(McpAuth),
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("input").required(true).multiple(false)))]
pub struct IakSign {
    /// The account's username (its registered phone number).
    #[arg(long)]
    pub username: String,
    /// The API key (sandbox or production), or env:VAR.
    #[arg(long)]
    pub api_key: String,
    /// Top-up, check-status, callback, postpaid inquiry: the ref_id.
    #[arg(long, group = "input")]
    pub ref_id: Option<String>,
    /// Prepaid balance (X = "bl").
    #[arg(long, group = "input")]
    pub balance: bool,
    /// Price list, prepaid or postpaid (X = "pl").
    #[arg(long, group = "input")]
    pub pricelist: bool,
    /// Postpaid check-status (X = "cs").
    #[arg(long, group = "input")]
    pub checkstatus: bool,
    /// Prepaid check-operator (X = "op").
    #[arg(long, group = "input")]
    pub operator: bool,
    /// Postpaid payment: the inquiry's tr_id.
    #[arg(long, group = "input")]
    pub tr_id: Option<i64>,
    /// Any other signed field (PLN customer_id, game_code, ...).
    #[arg(long, group = "input")]
    pub field: Option<String>,
    /// Check this signature instead of printing one; exits 1 when it does not match.
    #[arg(long)]
    pub verify: Option<String>,
}

#[derive(Debug, Args)]
pub struct McpSign {
    /// The merchant's hash key, or env:VAR.
    #[arg(long)]
    pub hash_key: String,
    #[arg(long)]
    pub external_id: String,
    #[arg(long)]
    pub order_id: String,
    /// Compute the callback `mcp-signature` for this MCPayment transaction_id.
    #[arg(long)]
    pub transaction_id: Option<String>,
    /// Sub-merchant id, appended to the callback signature input.
    #[arg(long, requires = "transaction_id")]
    pub sub_merchant_id: Option<String>,
    /// Check this signature instead of printing one; exits 1 when it does not match.
    #[arg(long)]
    pub verify: Option<String>,
}

#[derive(Debug, Args)]
pub struct McpAuth {
    #[arg(long)]
    pub merchant_id: String,
    /// The secret unbound id, or env:VAR.
    #[arg(long)]
    pub secret_unbound_id: String,
}

/// Runs a parsed command line. Returns the process exit code, or an error message.
pub fn run(cli: Cli) -> Result<ExitCode, String> {
    match cli.command {
        Command::Sign(cmd) => sign(cmd),
    }
}

fn sign(cmd: SignCommand) -> Result<ExitCode, String> {
    let (computed, verify) = match cmd {
        SignCommand::Iak(a) => {
            let key = secrets::resolve(&a.api_key)?;
            let input = if let Some(r) = a.ref_id.as_deref() {
                IakSignInput::RefId(r)
            } else if a.balance {
                IakSignInput::Balance
            } else if a.pricelist {
                IakSignInput::PriceList
            } else if a.checkstatus {
                IakSignInput::CheckStatus
            } else if a.operator {
                IakSignInput::CheckOperator
            } else if let Some(id) = a.tr_id {
                IakSignInput::TrId(id)
            } else if let Some(f) = a.field.as_deref() {
                IakSignInput::Field(f)
            } else {
                unreachable!("clap requires one input flag")
            };
            (sign::iak_sign(&a.username, &key, input), a.verify)
        }
        SignCommand::Mcp(a) => {
            let key = secrets::resolve(&a.hash_key)?;
            let sig = match a.transaction_id.as_deref() {
                Some(tx) => sign::mcp_callback_signature(
                    &key,
                    tx,
                    &a.external_id,
                    &a.order_id,
                    a.sub_merchant_id.as_deref(),
                ),
                None => sign::mcp_request_signature(&key, &a.external_id, &a.order_id),
            };
            (sig, a.verify)
        }
        SignCommand::McpAuth(a) => {
            let secret = secrets::resolve(&a.secret_unbound_id)?;
            (sign::mcp_basic_auth(&a.merchant_id, &secret), None)
        }
    };
    match verify {
        None => {
            println!("{computed}");
            Ok(ExitCode::SUCCESS)
        }
        Some(given) if sign::hex_digest_eq(&computed, &given) => {
            println!("valid");
            Ok(ExitCode::SUCCESS)
        }
        Some(_) => {
            println!("invalid: expected {computed}");
            Ok(ExitCode::from(1))
        }
    }
}
