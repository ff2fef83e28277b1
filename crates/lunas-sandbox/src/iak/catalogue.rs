//! The products IAK/IDSL accounts sell: a small, realistic prepaid catalogue (pulsa, data, game
//! vouchers with a `pin`, an eSIM with an `activation_code`, PLN tokens, a shopping voucher) and
//! four postpaid billers. Codes, types and operators follow IAK's product-type list.

use lunas_protocol::iak::prepaid::PriceItem;

/// What a prepaid product delivers on success, which decides the shape of its `sn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goods {
    /// Pulsa and data: a numeric serial number, `123456789`.
    Serial,
    /// Games: `ABCD-EFGH-IJKL-MNOP`, plus a voucher `pin` when `pin` is set.
    Game { pin: bool },
    /// eSIM: a serial number and an LPA `activation_code`.
    Esim,
    /// PLN token: `TOKEN/NAME/SEGMENT/POWER/KWH`.
    PlnToken,
    /// Shopping voucher: `CODE / EXPIRY-DATE`.
    Voucher,
}

/// One prepaid product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Product {
    pub code: &'static str,
    /// The operator name (`product_description` / `pulsa_op`).
    pub description: &'static str,
    pub nominal: &'static str,
    pub details: &'static str,
    /// What the deposit is debited, in rupiah.
    pub price: i64,
    /// The path segment of `/api/pricelist/{type}`.
    pub product_type: &'static str,
    /// The path segment of `/api/pricelist/{type}/{operator}`.
    pub operator: &'static str,
    pub active_period: &'static str,
    pub active: bool,
    pub goods: Goods,
}

/// A product; `kind` is `(product_type, operator)`.
const fn p(
    code: &'static str,
    description: &'static str,
    nominal: &'static str,
    price: i64,
    kind: (&'static str, &'static str),
    goods: Goods,
) -> Product {
    let (product_type, operator) = kind;
    Product {
        code,
        description,
        nominal,
        details: "-",
        price,
        product_type,
        operator,
        active_period: "0",
        active: true,
        goods,
    }
}

/// Every prepaid product. `xld10000` is listed but not active, so topping it up answers rc 106.
pub const PREPAID: &[Product] = &[
    p(
        "xld25000",
        "XL",
        "25000",
        25_000,
        ("pulsa", "xl"),
        Goods::Serial,
    ),
    p(
        "xld50000",
        "XL",
        "50000",
        50_000,
        ("pulsa", "xl"),
        Goods::Serial,
    ),
    Product {
        active: false,
        ..p(
            "xld10000",
            "XL",
            "10000",
            10_900,
            ("pulsa", "xl"),
            Goods::Serial,
        )
    },
    p(
        "hindosat10000",
        "Indosat",
        "10000",
        11_000,
        ("pulsa", "indosat"),
        Goods::Serial,
    ),
    p(
        "htelkomsel10000",
        "Telkomsel",
        "10000",
        10_850,
        ("pulsa", "telkomsel"),
        Goods::Serial,
    ),
    Product {
        details: "3GB / 30 hari",
        active_period: "30",
        ..p(
            "tseldata25000",
            "Telkomsel Paket Internet",
            "3GB",
            25_500,
            ("data", "telkomsel_paket_internet"),
            Goods::Serial,
        )
    },
    p(
        "hsteam12000",
        "Steam Wallet (SEA)",
        "IDR 12.000",
        16_500,
        ("game", "steam_sea"),
        Goods::Game { pin: true },
    ),
    p(
        "hmobilelegend110",
        "Mobile Legend",
        "110 Diamonds",
        30_000,
        ("game", "mobile_legend"),
        Goods::Game { pin: false },
    ),
    Product {
        details: "eSIM 10GB / 30 hari",
        active_period: "30",
        ..p(
            "esimtsel10gb",
            "Telkomsel eSIM",
            "10GB",
            75_000,
            ("esim", "telkomsel_esim"),
            Goods::Esim,
        )
    },
    p(
        "hpln20000",
        "PLN",
        "20000",
        20_500,
        ("pln", "pln"),
        Goods::PlnToken,
    ),
    p(
        "hpln50000",
        "PLN",
        "50000",
        50_500,
        ("pln", "pln"),
        Goods::PlnToken,
    ),
    p(
        "alfamart100",
        "Alfamart Voucher",
        "Voucher Alfamart Rp 100.000",
        99_750,
        ("voucher", "alfamart_voucher"),
        Goods::Voucher,
    ),
];

/// The product with this code (exact match, as IAK's codes are case-sensitive).
pub fn prepaid(code: &str) -> Option<&'static Product> {
    PREPAID.iter().find(|p| p.code == code)
}

/// The price list filtered as `/api/pricelist/{type}/{operator}` with `status` filters it.
pub fn price_list(
    product_type: Option<&str>,
    operator: Option<&str>,
    status: Option<&str>,
) -> Vec<PriceItem> {
    let want_active = match status.map(|s| s.trim().to_ascii_lowercase()) {
        Some(s) if s == "active" => Some(true),
        Some(s) if s == "non active" || s == "nonactive" || s == "inactive" => Some(false),
        _ => None,
    };
    PREPAID
        .iter()
        .filter(|p| product_type.is_none_or(|t| t == p.product_type))
        .filter(|p| operator.is_none_or(|o| o == p.operator))
        .filter(|p| want_active.is_none_or(|a| a == p.active))
        .map(|p| PriceItem {
            product_code: p.code.to_owned(),
            product_description: Some(p.description.to_owned()),
            product_nominal: Some(p.nominal.to_owned()),
            product_details: Some(p.details.to_owned()),
            product_price: p.price,
            product_type: Some(p.product_type.to_owned()),
            active_period: Some(p.active_period.to_owned()),
            status: Some(if p.active { "active" } else { "non active" }.to_owned()),
            icon_url: Some("-".to_owned()),
            product_category: Some(p.product_type.to_owned()),
        })
        .collect()
}

/// The shape of a postpaid biller's `desc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BillShape {
    /// TELKOMPSTN: `kode_area`, `divre`, `datel`, `jumlah_tagihan`, `tagihan.detail[]`.
    Telkom,
    /// PLNPOSTPAID: `tarif`, `daya`, `lembar_tagihan`, `tagihan.detail[]` with `denda`.
    Pln,
    /// BPJS: `kode_cabang`, `nama_cabang`, `sisa_pembayaran`, `jumlah_peserta`.
    Bpjs,
    /// A biller without detail: `desc` is the empty string, as the documents allow.
    Empty,
}

/// One postpaid biller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Biller {
    pub code: &'static str,
    pub name: &'static str,
    /// The path segment of `/api/v1/bill/check/{type}`.
    pub product_type: &'static str,
    /// The bill of one period, in rupiah.
    pub bill: i64,
    /// The admin fee per period.
    pub admin: i64,
    /// The merchant's commission per period (`price - selling_price`).
    pub commission: i64,
    /// How many periods the "several bills" test number (`...0999`) owes.
    pub several: usize,
    pub shape: BillShape,
}

/// Every postpaid biller.
pub const POSTPAID: &[Biller] = &[
    Biller {
        code: "TELKOMPSTN",
        name: "Telkom PSTN",
        product_type: "internet",
        bill: 49_870,
        admin: 2_500,
        commission: 1_200,
        several: 3,
        shape: BillShape::Telkom,
    },
    Biller {
        code: "PLNPOSTPAID",
        name: "PLN Pascabayar",
        product_type: "pln",
        bill: 300_000,
        admin: 2_500,
        commission: 600,
        several: 8,
        shape: BillShape::Pln,
    },
    Biller {
        code: "BPJS",
        name: "BPJS Kesehatan",
        product_type: "bpjs",
        bill: 150_000,
        admin: 2_000,
        commission: 100,
        several: 3,
        shape: BillShape::Bpjs,
    },
    Biller {
        code: "HPTHREE",
        name: "Tri Pascabayar",
        product_type: "hp",
        bill: 85_000,
        admin: 2_500,
        commission: 500,
        several: 2,
        shape: BillShape::Empty,
    },
];

/// The biller with this code.
pub fn biller(code: &str) -> Option<&'static Biller> {
    POSTPAID.iter().find(|b| b.code == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique() {
        for (i, a) in PREPAID.iter().enumerate() {
            assert!(PREPAID[i + 1..].iter().all(|b| b.code != a.code));
        }
    }

    #[test]
    fn filters_narrow_the_list() {
        assert_eq!(price_list(None, None, None).len(), PREPAID.len());
        assert!(price_list(Some("pulsa"), Some("xl"), None)
            .iter()
            .all(|p| p.product_code.starts_with("xld")));
        assert_eq!(price_list(None, None, Some("non active")).len(), 1);
        assert!(price_list(Some("nothing"), None, None).is_empty());
    }
}
