//! IAK's response-code tables (protocols.md §1.7 prepaid, §2.5 postpaid).

/// How a response code bears on a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RcClass {
    Success,
    Pending,
    Failed,
    /// Postpaid `42`: payment request not received yet.
    NotReceived,
    /// No such transaction at the provider.
    NotFound,
    /// The request was refused before looking at any transaction.
    Rejected,
    /// A code in neither table: treated as pending by every caller, never as final.
    Unknown,
}

/// One row of a response-code table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RcInfo {
    pub code: &'static str,
    pub text: &'static str,
    pub class: RcClass,
}

use RcClass::*;

const fn row(code: &'static str, text: &'static str, class: RcClass) -> RcInfo {
    RcInfo { code, text, class }
}

/// Prepaid codes. Success `00`; pending `39`, `201`; everything else the documents list is a
/// failure, except the codes that refuse the request itself (`102`, `107`, `110`, `117`, `118`,
/// `204`, `205`) and `06` (no such transaction), which say nothing about a transaction's outcome.
pub const PREPAID: &[RcInfo] = &[
    row("00", "SUCCESS", Success),
    row("06", "TRANSACTION NOT FOUND", NotFound),
    row("07", "FAILED", Failed),
    row(
        "10",
        "REACH TOP UP LIMIT USING SAME DESTINATION NUMBER IN 1 DAY",
        Failed,
    ),
    row("12", "BALANCE MAXIMUM LIMIT EXCEEDED", Failed),
    row("13", "CUSTOMER NUMBER BLOCKED", Failed),
    row("14", "INCORRECT DESTINATION NUMBER", Failed),
    row("16", "NUMBER NOT MATCH WITH OPERATOR", Failed),
    row("17", "INSUFFICIENT DEPOSIT", Failed),
    row("18", "NUMBER NOT AVAILABLE", Failed),
    row("19", "NUMBER IS ALREADY IN USE", Failed),
    row("20", "CODE NOT FOUND", Failed),
    row("39", "PROCESS", Pending),
    row("102", "INVALID IP ADDRESS", Rejected),
    row("106", "PRODUCT IS TEMPORARILY OUT OF SERVICE", Failed),
    row("107", "ERROR IN XML FORMAT", Rejected),
    row("110", "SYSTEM UNDER MAINTENANCE", Rejected),
    row("117", "PAGE NOT FOUND", Rejected),
    row("118", "ACCOUNT SUSPENDED", Rejected),
    row("121", "MONTHLY TOP UP LIMIT EXCEEDED", Failed),
    row("131", "TOP UP REGION BLOCKED FOR PLAYER", Failed),
    row(
        "141",
        "INVALID USER ID / ZONE ID / SERVER ID / ROLENAME",
        Failed,
    ),
    row("142", "INVALID USER ID", Failed),
    row("143", "INQUIRY NOT NEEDED", Failed),
    row("201", "UNDEFINED RESPONSE CODE", Pending),
    row("202", "MAXIMUM 1 NUMBER 1 TIME IN 1 DAY", Failed),
    row("203", "NUMBER IS TOO LONG", Failed),
    row("204", "WRONG AUTHENTICATION", Rejected),
    row("205", "WRONG COMMAND", Rejected),
    row("206", "THIS DESTINATION NUMBER HAS BEEN BLOCKED", Failed),
    row(
        "207",
        "MAXIMUM 1 NUMBER WITH ANY CODE 1 TIME IN 1 DAY",
        Failed,
    ),
];

/// Postpaid codes. Success `00`; pending `05`, `39`, `201`; `42` not received; `06` inquiry not
/// found; request refusals `100`, `101`, `102`, `107`, `110`, `117`, `118`; the rest failures.
pub const POSTPAID: &[RcInfo] = &[
    row("00", "PAYMENT / INQUIRY SUCCESS", Success),
    row("01", "INVOICE HAS BEEN PAID", Failed),
    row("02", "BILL UNPAID", Failed),
    row("03", "INVALID REF ID", Failed),
    row("04", "BILLING ID EXPIRED", Failed),
    row("05", "UNDEFINED ERROR", Pending),
    row("06", "INQUIRY ID NOT FOUND", NotFound),
    row("07", "TRANSACTION FAILED", Failed),
    row("08", "BILLING ID BLOCKED", Failed),
    row("09", "INQUIRY FAILED", Failed),
    row("10", "BILL IS NOT AVAILABLE", Failed),
    row("11", "DUPLICATE REF ID", Failed),
    row("13", "CUSTOMER NUMBER BLOCKED", Failed),
    row("14", "INCORRECT DESTINATION NUMBER", Failed),
    row("15", "NUMBER THAT YOU ENTERED IS NOT SUPPORTED", Failed),
    row("16", "NUMBER DOESN'T MATCH THE OPERATOR", Failed),
    row("17", "BALANCE NOT ENOUGH", Failed),
    row("20", "PRODUCT UNREGISTERED", Failed),
    row("30", "PAYMENT HAVE TO BE DONE VIA COUNTER / PDAM", Failed),
    row(
        "31",
        "TRANSACTION REJECTED DUE TO EXCEEDING MAX TOTAL BILL ALLOWED",
        Failed,
    ),
    row(
        "32",
        "TRANSACTION FAILED, PLEASE PAY BILL OF ALL PERIOD",
        Failed,
    ),
    row(
        "33",
        "TRANSACTION CAN'T BE PROCESS, PLEASE TRY AGAIN LATER",
        Failed,
    ),
    row("34", "BILL HAS BEEN PAID", Failed),
    row(
        "35",
        "TRANSACTION REJECTED DUE TO ANOTHER UNPAID ARREAR",
        Failed,
    ),
    row(
        "36",
        "EXCEEDING DUE DATE, PLEASE PAY IN THE COUNTER / PDAM",
        Failed,
    ),
    row("37", "PAYMENT FAILED", Failed),
    row("38", "PAYMENT FAILED, PLEASE DO ANOTHER REQUEST", Failed),
    row("39", "PENDING / TRANSACTION IN PROCESS", Pending),
    row(
        "40",
        "TRANSACTION REJECTED DUE TO ALL OR ONE OF THE ARREAR/INVOICE HAS BEEN PAID",
        Failed,
    ),
    row(
        "41",
        "CAN'T PAY IN THIS TIME, PLEASE PAY TO THE CORRESPONDING COMPANY",
        Failed,
    ),
    row("42", "PAYMENT REQUEST HAVEN'T BEEN RECEIVED", NotReceived),
    row("91", "DATABASE CONNECTION ERROR", Failed),
    row("92", "GENERAL ERROR", Failed),
    row("93", "INVALID AMOUNT", Failed),
    row("94", "SERVICE HAS EXPIRED", Failed),
    row("100", "INVALID SIGNATURE", Rejected),
    row("101", "INVALID COMMAND", Rejected),
    row("102", "INVALID IP ADDRESS", Rejected),
    row("103", "TIMEOUT", Failed),
    row("105", "MISC ERROR / BILLER SYSTEM ERROR", Failed),
    row("106", "PRODUCT IS TEMPORARILY OUT OF SERVICE", Failed),
    row("107", "XML FORMAT ERROR", Rejected),
    row(
        "108",
        "SORRY, YOUR ID CAN'T BE USED FOR THIS PRODUCT TESTING",
        Failed,
    ),
    row("109", "SYSTEM CUT OFF", Failed),
    row("110", "SYSTEM UNDER MAINTENANCE", Rejected),
    row("117", "PAGE NOT FOUND", Rejected),
    row("118", "ACCOUNT SUSPENDED", Rejected),
    row("201", "UNDEFINED RESPONSE CODE", Pending),
];

fn find(table: &'static [RcInfo], rc: &str) -> Option<&'static RcInfo> {
    let rc = rc.trim();
    table.iter().find(|r| r.code == rc)
}

/// The prepaid table row for `rc`, if documented.
pub fn prepaid(rc: &str) -> Option<&'static RcInfo> {
    find(PREPAID, rc)
}

/// The postpaid table row for `rc`, if documented.
pub fn postpaid(rc: &str) -> Option<&'static RcInfo> {
    find(POSTPAID, rc)
}

/// The class of a prepaid code; [`RcClass::Unknown`] when undocumented.
pub fn prepaid_class(rc: &str) -> RcClass {
    prepaid(rc).map_or(Unknown, |r| r.class)
}

/// The class of a postpaid code; [`RcClass::Unknown`] when undocumented.
pub fn postpaid_class(rc: &str) -> RcClass {
    postpaid(rc).map_or(Unknown, |r| r.class)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_have_no_duplicate_codes() {
        for table in [PREPAID, POSTPAID] {
            for (i, a) in table.iter().enumerate() {
                assert!(
                    table[i + 1..].iter().all(|b| b.code != a.code),
                    "{}",
                    a.code
                );
            }
        }
    }

    #[test]
    fn documented_classes() {
        assert_eq!(prepaid_class("00"), Success);
        assert_eq!(prepaid_class("39"), Pending);
        assert_eq!(prepaid_class("201"), Pending);
        assert_eq!(prepaid_class("07"), Failed);
        assert_eq!(prepaid_class("17"), Failed);
        assert_eq!(prepaid_class("06"), NotFound);
        assert_eq!(prepaid_class("204"), Rejected);
        assert_eq!(prepaid_class("999"), Unknown);
        assert_eq!(postpaid_class("05"), Pending);
        assert_eq!(postpaid_class("42"), NotReceived);
        assert_eq!(postpaid_class("37"), Failed);
        assert_eq!(postpaid_class("100"), Rejected);
        assert_eq!(postpaid_class(" 00 "), Success);
    }
}
