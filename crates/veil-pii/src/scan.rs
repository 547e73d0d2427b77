//! Free-text scanning (`veil pii scan`): finds personal data in notes and reports spans.
//!
//! # What is found
//! - Structured kinds, checked by their validators: `cn_id` (18 and 15 digits), `cn_mobile`
//!   (with `+86` / `0086` / `86` prefixes, grouped by spaces or dashes, full-width digits),
//!   `cn_landline`, `bank_card`, `uscc`, `email`, `hk_id`, `cn_passport`, `hk_macau_permit`,
//!   `tw_permit`.
//! - `person_name`, `address` and `birth_date` from context: a surname list (single and
//!   compound), context words (客户, 联系人, 收件人, 先生, 女士, 地址, 家住, 出生日期, `Mr.`,
//!   `name:`, `address:` …) and province/city/district patterns followed by road and number
//!   tokens (路, 街, 号, 栋, 室 …). These carry a lower [`Span::confidence`].
//!
//! # Rules
//! - A number inside a longer run of digits or letters is never a match: candidates are whole
//!   "atoms" (maximal runs of ASCII or full-width letters and digits), or whole groups of atoms
//!   joined by one space or dash in the shapes people write numbers in (`138 1234 5678`,
//!   `0755-2345 6789`, `6222 0000 1111 2222`, `110101 19840227 6151`).
//! - Invalid look-alikes (wrong check digit, impossible date, unallocated prefix) are reported
//!   with `valid: false` and a confidence ≤ 0.6 when the words just before them name the kind
//!   (身份证, 手机, 卡号, 税号 …) or when their shape is unmistakable; they are never `valid`.
//! - A number whose label says it is something else (订单号, 流水号, 运单号, 发票号, `order`,
//!   `invoice` …) is not reported unless it validates as a kind whose check makes a chance hit
//!   implausible (`cn_id`, `uscc`, `email`).
//! - Overlaps resolve to the validated span, then the longer one, then the more specific kind.
//! - Offsets are Unicode-scalar (char) offsets, end exclusive; byte offsets are given too.
//!
//! # Performance
//! One forward pass over the bytes. ASCII and full-width letters/digits start an atom; other
//! characters cost a table lookup (a 64 Ki-bit set of characters that can start a context word),
//! and context words are only compared where that set says one may start. Validators run on
//! candidates only; nothing is allocated per character. Char offsets are counted once, at the
//! end, for the spans found. `benches/scan.rs` measures it (see `docs/benchmarks.md`).
//!
//! # Fuzzing
//! `fuzz/fuzz_targets/scan.rs` (at the workspace root, outside the workspace) checks the span
//! invariants on arbitrary input: `cargo install cargo-fuzz && cd fuzz && cargo +nightly fuzz run
//! scan -- -max_total_time=60`.

use std::fmt;
use std::sync::OnceLock;

use crate::{
    address, bank_card, cn_id, cn_landline, cn_mobile, cn_passport, email, hk_id, hk_macau_permit,
    tw_permit, uscc, Date, PiiKind,
};

/// A piece of personal data found in a text.
///
/// `normalized` is personal data: `Debug` redacts it.
#[derive(Clone, PartialEq)]
pub struct Span {
    pub kind: PiiKind,
    /// Offset of the first character, in Unicode scalars.
    pub start: usize,
    /// Offset after the last character, in Unicode scalars (exclusive).
    pub end: usize,
    /// Byte offset of the first character in the scanned `&str`.
    pub byte_start: usize,
    /// Byte offset after the last character (exclusive).
    pub byte_end: usize,
    /// The span passed its kind's validator.
    pub valid: bool,
    /// How sure the scanner is that this is personal data of this kind, 0 to 1.
    pub confidence: f32,
    /// The validator's normal form, when `valid`.
    pub normalized: Option<String>,
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Span")
            .field("kind", &self.kind)
            .field("start", &self.start)
            .field("end", &self.end)
            .field("byte_start", &self.byte_start)
            .field("byte_end", &self.byte_end)
            .field("valid", &self.valid)
            .field("confidence", &self.confidence)
            .field(
                "normalized",
                &self.normalized.as_ref().map(|_| format_args!("<redacted>")),
            )
            .finish()
    }
}

/// Scans `text` with a shared default [`Scanner`]. Spans are sorted by `start` and do not
/// overlap. `today` bounds birth dates (in IDs and `birth_date`) from above.
pub fn scan(text: &str, today: Date) -> Vec<Span> {
    static DEFAULT: OnceLock<Scanner> = OnceLock::new();
    DEFAULT.get_or_init(Scanner::new).scan(text, today)
}

/// A reusable scanner: its word tables are built once by [`Scanner::new`].
pub struct Scanner {
    /// Words that start a name, address or birth-date search.
    triggers: WordTable<Trigger>,
    /// Words that may follow a name (and so end it).
    name_followers: WordTable<()>,
    /// Words that end an address.
    address_stops: WordTable<()>,
    /// Words in the label before a number (身份证, 手机, 订单 …) and what they say.
    label_words: WordTable<u32>,
    compound_surnames: WordTable<()>,
    surnames: CharSet,
    not_given_name: CharSet,
    name_end_chars: CharSet,
    address_stop_chars: CharSet,
    address_final_chars: CharSet,
    address_admin_chars: CharSet,
    address_detail_chars: CharSet,
}

impl fmt::Debug for Scanner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scanner").finish_non_exhaustive()
    }
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner::new()
    }
}

impl Scanner {
    /// Builds the word tables (a few hundred words; microseconds).
    pub fn new() -> Scanner {
        let mut triggers: Vec<(&'static str, Trigger)> = Vec::new();
        triggers.extend(NAME_CONTEXT.iter().map(|w| (*w, Trigger::NameContext)));
        triggers.extend(NAME_SUFFIX.iter().map(|w| (*w, Trigger::NameSuffix)));
        triggers.extend(
            ADDRESS_CONTEXT
                .iter()
                .map(|w| (*w, Trigger::AddressContext)),
        );
        triggers.extend(PLACES.iter().map(|w| (*w, Trigger::Place)));
        triggers.extend(BIRTH_CONTEXT.iter().map(|w| (*w, Trigger::BirthContext)));
        let unit = |words: &[&'static str]| words.iter().map(|w| (*w, ())).collect::<Vec<_>>();
        Scanner {
            triggers: WordTable::new(&triggers),
            name_followers: WordTable::new(&unit(NAME_FOLLOWERS)),
            address_stops: WordTable::new(&unit(ADDRESS_STOP_WORDS)),
            label_words: WordTable::new(LABEL_WORDS),
            compound_surnames: WordTable::new(&unit(COMPOUND_SURNAMES)),
            surnames: CharSet::of(SINGLE_SURNAMES),
            not_given_name: CharSet::of(NOT_GIVEN_NAME),
            name_end_chars: CharSet::of(NAME_END_CHARS),
            address_stop_chars: CharSet::of(ADDRESS_STOP_CHARS),
            address_final_chars: CharSet::of(ADDRESS_FINAL_CHARS),
            address_admin_chars: CharSet::of(ADDRESS_ADMIN_CHARS),
            address_detail_chars: CharSet::of(ADDRESS_DETAIL_CHARS),
        }
    }

    /// Scans `text`; see [`scan`].
    pub fn scan(&self, text: &str, today: Date) -> Vec<Span> {
        let mut spans = Vec::new();
        self.scan_into(text, today, &mut spans);
        spans
    }

    /// Scans `text`, appending the spans to `spans` (cleared first), so that a caller scanning
    /// many texts can reuse one allocation.
    pub fn scan_into(&self, text: &str, today: Date, spans: &mut Vec<Span>) {
        spans.clear();
        let mut pass = Pass {
            scanner: self,
            text,
            bytes: text.as_bytes(),
            today,
            candidates: Vec::new(),
            address_until: 0,
            email_searched_until: 0,
        };
        pass.run();
        let Pass { candidates, .. } = pass;
        resolve(text, candidates, spans);
    }
}

// ---------------------------------------------------------------------------------------------
// Word lists. Chinese context words are matched exactly; English ones at the level of words.

/// Words directly before a person's name.
#[rustfmt::skip]
const NAME_CONTEXT: &[&str] = &[
    "客户", "顾客", "联系人", "姓名", "收件人", "收货人", "寄件人", "对接人", "负责人", "经办人", "持卡人", "开户人", "户名",
    "用户", "会员", "业主", "法人", "法定代表人", "签收人", "申请人", "投诉人", "来电人", "患者", "学员", "租户", "家属",
    "代理人", "担保人", "购买人", "订购人", "投保人", "被保险人", "受益人", "收款人", "付款人", "乘客", "住户", "车主", "客人",
];
/// Words directly after a person's name (张伟先生).
#[rustfmt::skip]
const NAME_SUFFIX: &[&str] = &[
    "先生", "女士", "小姐", "老师", "同学",
];
/// Words before an address.
#[rustfmt::skip]
const ADDRESS_CONTEXT: &[&str] = &[
    "地址", "住址", "家住", "住在", "寄到", "寄至", "送到", "送至", "现居", "居住于", "户籍地", "通讯地址", "发往",
];
/// Words before a birth date.
#[rustfmt::skip]
const BIRTH_CONTEXT: &[&str] = &[
    "出生日期", "出生于", "出生", "生日", "生于", "出生年月日",
];
/// Province-level divisions and large cities: where an address may start without a context word.
#[rustfmt::skip]
const PLACES: &[&str] = &[
    "北京市", "天津市", "上海市", "重庆市", "北京", "天津", "上海", "重庆", "河北省", "山西省", "辽宁省", "吉林省", "黑龙江省",
    "江苏省", "浙江省", "安徽省", "福建省", "江西省", "山东省", "河南省", "湖北省", "湖南省", "广东省", "海南省", "四川省",
    "贵州省", "云南省", "陕西省", "甘肃省", "青海省", "台湾省", "内蒙古自治区", "广西壮族自治区", "西藏自治区", "宁夏回族自治区",
    "新疆维吾尔自治区", "香港特别行政区", "澳门特别行政区", "广西", "内蒙古", "宁夏", "新疆", "西藏", "河北", "山西", "辽宁",
    "吉林", "黑龙江", "江苏", "浙江", "安徽", "福建", "江西", "山东", "河南", "湖北", "湖南", "广东", "海南", "四川",
    "贵州", "云南", "陕西", "甘肃", "青海", "深圳市", "广州市", "杭州市", "南京市", "苏州市", "武汉市", "成都市", "西安市",
    "厦门市", "青岛市", "大连市", "宁波市", "长沙市", "郑州市", "济南市", "合肥市", "沈阳市", "哈尔滨市", "长春市", "昆明市",
    "石家庄市", "太原市", "福州市", "南昌市", "南宁市", "贵阳市", "兰州市", "海口市", "三亚市", "珠海市", "东莞市", "佛山市",
    "无锡市", "温州市", "绍兴市", "嘉兴市", "金华市", "泉州市", "烟台市", "潍坊市", "徐州市", "常州市", "扬州市", "乌鲁木齐市",
    "呼和浩特市", "拉萨市", "银川市", "西宁市", "中山市", "惠州市", "南通市", "洛阳市", "宜昌市", "襄阳市", "芜湖市", "唐山市",
    "保定市", "廊坊市",
];
/// Common single-character surnames (the Hundred Family Surnames' most frequent ~300).
const SINGLE_SURNAMES: &str = "傅阎王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿兰焦俞左柳祝宁尚符舒阮柯纪梅童凌毕季裴霍涂苗谷盛翁冉骆蓝游辛靳管柴蒙鲍华喻祁蒲滕屈饶牟艾尤阳穆卓吉缪项连芦麦褚娄窦戚岑景党宫费卜晏卫米柏宗瞿桂佟臧闵苟邬卞姬仇栾隋刁沙荣巫寇桑郎甄丛仲虞敖巩佘苑迟邝封谈匡鞠惠荆乐冀郁胥南班储栗燕楚鄢谌奚粟冼蔺闻厉伊仝郜阚帅屠朴廉禹祖漆巴卿狄宣晋扈晁芮阙浦戈鹿邸雍辜裘亓修邰赫杭逯茹诸慕嵇湛宾戎勾茅呼尉冶斯檀阴昝奉尧";
/// Compound surnames, tried before single ones.
#[rustfmt::skip]
const COMPOUND_SURNAMES: &[&str] = &[
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "令狐", "慕容", "尉迟", "长孙", "宇文", "司徒", "夏侯", "公孙",
    "轩辕", "端木", "独孤", "南宫", "西门", "百里", "呼延", "澹台", "万俟", "闻人", "赫连", "钟离", "宗政", "濮阳",
    "公冶", "太叔", "申屠", "仲孙", "单于", "乐正", "左丘", "东郭", "第五", "司空", "拓跋",
];
/// Characters that are not part of a given name (numerals, function words, units).
const NOT_GIVEN_NAME: &str = "一二三四五六七八九十百千万零〇两的了是在有和与及或号年月日时分秒元个次们您你我他她它这那哪什么吗呢吧啊呀哦嗯将被把给让向从对于就都也还又再很更最不没未已请需要想会能应该说称问答打来去到回买卖送寄收发付退换装查找等过着地得其此各每某该另外市省区县路街室楼栋层电话机码件位面额卡单款费价钱货品物裹箱盒台套条份批角";
/// Single characters that end a name when they follow it.
const NAME_END_CHARS: &str =
    "说的在于已和与及持称是要对把被给让也还又再就都不没曾等请想会问打来去到从今昨因为但并或及、";
/// Words that end a name when they follow it (and cannot start a given name).
#[rustfmt::skip]
const NAME_FOLLOWERS: &[&str] = &[
    "先生", "女士", "小姐", "老师", "经理", "总监", "主任", "同学", "师傅", "阿姨", "手机", "电话", "身份", "证件",
    "邮箱", "地址", "家住", "住在", "住址", "联系", "收货", "收件", "签收", "预约", "投诉", "咨询", "退款", "退货",
    "购买", "下单", "今天", "昨天", "明天", "今日", "本人", "反映", "反馈", "表示", "提供", "办理", "申请", "确认",
    "希望", "需要", "报名", "来电", "致电", "留言", "之前", "上次", "这次", "本次", "女儿", "儿子", "母亲", "父亲",
    "家属", "订购", "订单", "工号", "电邮", "微信", "护照", "银行", "开户", "卡号", "回乡", "台胞", "香港", "澳门",
    "要求", "表扬", "已经", "目前", "现在", "当天", "上午", "下午", "晚上", "同意", "拒绝", "认为", "觉得", "一直",
    "多次", "再次", "首次", "非常", "出生", "生日", "性别", "年龄", "籍贯", "户籍", "民族", "证号", "收到", "寄来",
    "发来", "来店", "到店", "名下", "账户", "帐户", "持有", "使用", "补办", "变更", "修改", "更新", "核实", "注册",
    "登录", "签字", "签名", "授权", "委托", "陪同", "代为", "送货", "取货", "发票",
];
/// Characters that end an address.
const ADDRESS_STOP_CHARS: &str = "的请您我他她已或并但因需要可是了吗呢吧啊把被让说称";
/// Words that end an address.
#[rustfmt::skip]
const ADDRESS_STOP_WORDS: &[&str] = &[
    "电话", "手机", "联系", "收件", "收货", "邮编", "送货", "配送", "快递", "寄件", "附近", "客户", "先生", "女士",
    "小姐", "姓名", "身份证", "备注", "工作日", "周末", "签收", "放在", "放到", "门口", "前台", "代收", "尽快", "之前",
    "以后", "以前", "每天", "上午", "下午", "晚上",
];
/// Characters after which an address may end (号, 室, 路 …).
const ADDRESS_FINAL_CHARS: &str =
    "号室楼栋幢座层弄巷村组院苑园路街道区县市镇乡城厦场府户门里坊庄屯湾宅舍寓";
/// Administrative-division characters.
const ADDRESS_ADMIN_CHARS: &str = "省市区县州旗盟镇乡";
/// Street-level characters.
const ADDRESS_DETAIL_CHARS: &str = "路街道巷弄号栋幢楼室村组院苑厦寓";

/// Label words naming a kind, or saying that the number is not personal data.
const LABEL_WORDS: &[(&str, u32)] = &[
    ("身份证", ctx::CN_ID),
    ("身份号", ctx::CN_ID),
    ("公民身份", ctx::CN_ID),
    ("证件", ctx::DOCUMENT),
    ("证号", ctx::DOCUMENT),
    ("手机", ctx::PHONE),
    ("电话", ctx::PHONE),
    ("联系方式", ctx::PHONE),
    ("致电", ctx::PHONE),
    ("回拨", ctx::PHONE),
    ("拨打", ctx::PHONE),
    ("座机", ctx::PHONE),
    ("固话", ctx::PHONE),
    ("传真", ctx::PHONE),
    ("tel", ctx::PHONE),
    ("phone", ctx::PHONE),
    ("mobile", ctx::PHONE),
    ("cell", ctx::PHONE),
    ("卡号", ctx::BANK_CARD),
    ("银行卡", ctx::BANK_CARD),
    ("信用卡", ctx::BANK_CARD),
    ("借记卡", ctx::BANK_CARD),
    ("储蓄卡", ctx::BANK_CARD),
    ("账号", ctx::BANK_CARD),
    ("帐号", ctx::BANK_CARD),
    ("账户", ctx::BANK_CARD),
    ("帐户", ctx::BANK_CARD),
    ("收款", ctx::BANK_CARD),
    ("退款至", ctx::BANK_CARD),
    ("开户", ctx::BANK_CARD),
    ("card", ctx::BANK_CARD),
    ("account", ctx::BANK_CARD),
    ("信用代码", ctx::USCC),
    ("税号", ctx::USCC),
    ("纳税人识别号", ctx::USCC),
    ("识别号", ctx::USCC),
    ("uscc", ctx::USCC),
    ("tax", ctx::USCC),
    ("护照", ctx::PASSPORT),
    ("passport", ctx::PASSPORT),
    ("回乡证", ctx::HK_MACAU),
    ("通行证", ctx::HK_MACAU | ctx::TW),
    ("港澳", ctx::HK_MACAU),
    ("permit", ctx::HK_MACAU | ctx::TW),
    ("台胞证", ctx::TW),
    ("台湾居民", ctx::TW),
    ("香港身份证", ctx::HK_ID),
    ("港身份证", ctx::HK_ID),
    ("hkid", ctx::HK_ID),
    ("邮箱", ctx::EMAIL),
    ("邮件", ctx::EMAIL),
    ("电邮", ctx::EMAIL),
    ("email", ctx::EMAIL),
    ("mail", ctx::EMAIL),
    ("订单", ctx::NEGATIVE),
    ("单号", ctx::NEGATIVE),
    ("流水", ctx::NEGATIVE),
    ("交易", ctx::NEGATIVE),
    ("编号", ctx::NEGATIVE),
    ("工单", ctx::NEGATIVE),
    ("运单", ctx::NEGATIVE),
    ("快递", ctx::NEGATIVE),
    ("物流", ctx::NEGATIVE),
    ("批次", ctx::NEGATIVE),
    ("批号", ctx::NEGATIVE),
    ("型号", ctx::NEGATIVE),
    ("序列", ctx::NEGATIVE),
    ("发票", ctx::NEGATIVE),
    ("票号", ctx::NEGATIVE),
    ("金额", ctx::NEGATIVE),
    ("积分", ctx::NEGATIVE),
    ("数量", ctx::NEGATIVE),
    ("工号", ctx::NEGATIVE),
    ("合同", ctx::NEGATIVE),
    ("凭证", ctx::NEGATIVE),
    ("条码", ctx::NEGATIVE),
    ("编码", ctx::NEGATIVE),
    ("验证码", ctx::NEGATIVE),
    ("热线", ctx::NEGATIVE),
    ("时间", ctx::NEGATIVE),
    ("会员号", ctx::NEGATIVE),
    ("sku", ctx::NEGATIVE),
    ("order", ctx::NEGATIVE),
    ("invoice", ctx::NEGATIVE),
    ("tracking", ctx::NEGATIVE),
    ("serial", ctx::NEGATIVE),
    ("ref", ctx::NEGATIVE),
];

/// Bit flags for what the label before a number says.
mod ctx {
    pub const CN_ID: u32 = 1;
    pub const PHONE: u32 = 1 << 1;
    pub const BANK_CARD: u32 = 1 << 2;
    pub const USCC: u32 = 1 << 3;
    pub const PASSPORT: u32 = 1 << 4;
    pub const HK_MACAU: u32 = 1 << 5;
    pub const TW: u32 = 1 << 6;
    pub const HK_ID: u32 = 1 << 7;
    pub const EMAIL: u32 = 1 << 8;
    /// 证件, 证号: any identity document.
    pub const DOCUMENT: u32 = 1 << 9;
    pub const NEGATIVE: u32 = 1 << 10;
    pub const ANY_KIND: u32 = NEGATIVE - 1;
}

fn context_bit(kind: PiiKind) -> u32 {
    match kind {
        PiiKind::CnId => ctx::CN_ID,
        PiiKind::CnMobile | PiiKind::CnLandline => ctx::PHONE,
        PiiKind::BankCard => ctx::BANK_CARD,
        PiiKind::Uscc => ctx::USCC,
        PiiKind::CnPassport => ctx::PASSPORT,
        PiiKind::HkMacauPermit => ctx::HK_MACAU,
        PiiKind::TwPermit => ctx::TW,
        PiiKind::HkId => ctx::HK_ID | ctx::CN_ID,
        PiiKind::Email => ctx::EMAIL,
        PiiKind::PersonName | PiiKind::Address | PiiKind::BirthDate => 0,
    }
}

fn is_document(kind: PiiKind) -> bool {
    matches!(
        kind,
        PiiKind::CnId
            | PiiKind::CnPassport
            | PiiKind::HkMacauPermit
            | PiiKind::TwPermit
            | PiiKind::HkId
    )
}

/// Higher is more specific; breaks ties between overlapping spans of equal validity and length.
fn specificity(kind: PiiKind) -> u8 {
    match kind {
        PiiKind::CnId | PiiKind::Email => 10,
        PiiKind::Uscc | PiiKind::HkId => 9,
        PiiKind::BankCard => 8,
        PiiKind::CnMobile => 7,
        PiiKind::CnLandline => 6,
        PiiKind::CnPassport | PiiKind::HkMacauPermit => 5,
        PiiKind::TwPermit => 4,
        PiiKind::BirthDate => 3,
        PiiKind::PersonName => 2,
        PiiKind::Address => 1,
    }
}

// ---------------------------------------------------------------------------------------------
// Character sets and word tables.

/// A set of Basic Multilingual Plane characters as a 64 Ki-bit map (8 KiB).
struct CharSet(Box<[u64; 1024]>);

impl CharSet {
    fn empty() -> CharSet {
        CharSet(Box::new([0; 1024]))
    }

    fn of(chars: &str) -> CharSet {
        let mut set = CharSet::empty();
        chars.chars().for_each(|c| set.insert(c as u32));
        set
    }

    fn insert(&mut self, code: u32) {
        if code < 0x1_0000 {
            self.0[(code >> 6) as usize] |= 1 << (code & 63);
        }
    }

    #[inline]
    fn contains(&self, code: u32) -> bool {
        code < 0x1_0000 && self.0[(code >> 6) as usize] & (1 << (code & 63)) != 0
    }
}

/// Words indexed by their first character, longest first within each first character.
struct WordTable<R: Copy> {
    first_chars: CharSet,
    /// `(first char, index range into words)` in an open-addressing table (`u32::MAX`: empty).
    slots: Vec<(u32, u32, u32)>,
    words: Vec<(&'static [u8], R)>,
}

impl<R: Copy> WordTable<R> {
    fn new(entries: &[(&'static str, R)]) -> WordTable<R> {
        let mut sorted: Vec<(u32, &'static str, R)> = entries
            .iter()
            .filter_map(|&(word, role)| word.chars().next().map(|c| (c as u32, word, role)))
            .collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.len().cmp(&a.1.len())));
        let mut first_chars = CharSet::empty();
        let mut index: Vec<(u32, u32, u32)> = Vec::new();
        for (position, &(first, _, _)) in sorted.iter().enumerate() {
            first_chars.insert(first);
            match index.last_mut() {
                Some(last) if last.0 == first => last.2 = position as u32 + 1,
                _ => index.push((first, position as u32, position as u32 + 1)),
            }
        }
        let words = sorted
            .into_iter()
            .map(|(_, word, role)| (word.as_bytes(), role))
            .collect();
        // Open addressing, at most half full: one probe on average.
        let size = (index.len() * 2).next_power_of_two().max(16);
        let mut slots = vec![(u32::MAX, 0, 0); size];
        for &(code, from, to) in &index {
            let mut slot = (code.wrapping_mul(0x9E37_79B1) >> 16) as usize & (size - 1);
            while slots[slot].0 != u32::MAX {
                slot = (slot + 1) & (size - 1);
            }
            slots[slot] = (code, from, to);
        }
        WordTable {
            first_chars,
            slots,
            words,
        }
    }

    /// The longest word starting `rest` whose first character is `first`.
    #[inline]
    fn match_start(&self, first: u32, rest: &[u8]) -> Option<(usize, R)> {
        if !self.first_chars.contains(first) {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut slot = (first.wrapping_mul(0x9E37_79B1) >> 16) as usize & mask;
        let (from, to) = loop {
            let (code, from, to) = self.slots[slot];
            if code == first {
                break (from, to);
            }
            if code == u32::MAX {
                return None;
            }
            slot = (slot + 1) & mask;
        };
        self.words[from as usize..to as usize]
            .iter()
            .find(|(word, _)| starts_with(rest, word))
            .map(|&(word, role)| (word.len(), role))
    }

    /// The longest word starting at byte `at` of `bytes`.
    fn match_at(&self, bytes: &[u8], at: usize) -> Option<(usize, R)> {
        let (code, _) = decode(bytes, at)?;
        self.match_start(code, &bytes[at..])
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    NameContext,
    NameSuffix,
    AddressContext,
    Place,
    BirthContext,
}

// ---------------------------------------------------------------------------------------------
// Byte-level helpers. `bytes` is always valid UTF-8 and positions are char boundaries.

/// The scalar value and width of the character starting at `at`.
#[inline]
fn decode(bytes: &[u8], at: usize) -> Option<(u32, usize)> {
    let lead = *bytes.get(at)?;
    let continuation = |offset: usize| bytes.get(at + offset).map(|&b| u32::from(b & 0x3F));
    match lead {
        0x00..=0x7F => Some((u32::from(lead), 1)),
        0xC0..=0xDF => Some(((u32::from(lead & 0x1F) << 6) | continuation(1)?, 2)),
        0xE0..=0xEF => Some((
            (u32::from(lead & 0x0F) << 12) | (continuation(1)? << 6) | continuation(2)?,
            3,
        )),
        0xF0..=0xF7 => Some((
            (u32::from(lead & 0x07) << 18)
                | (continuation(1)? << 12)
                | (continuation(2)? << 6)
                | continuation(3)?,
            4,
        )),
        _ => None,
    }
}

/// The character ending just before `at`, with its width.
fn decode_before(bytes: &[u8], at: usize) -> Option<(u32, usize)> {
    let mut start = at.checked_sub(1)?;
    while start > 0 && bytes[start] & 0xC0 == 0x80 && at - start < 4 {
        start -= 1;
    }
    decode(bytes, start).map(|(code, width)| (code, width.min(at - start)))
}

#[inline]
fn is_cjk(code: u32) -> bool {
    (0x4E00..=0x9FFF).contains(&code) || (0x3400..=0x4DBF).contains(&code)
}

/// An ASCII or full-width letter or digit at `at`: its ASCII fold and width.
#[inline]
fn alnum_at(bytes: &[u8], at: usize) -> Option<(u8, usize)> {
    let lead = *bytes.get(at)?;
    if lead < 0x80 {
        return lead.is_ascii_alphanumeric().then_some((lead, 1));
    }
    if lead != 0xEF {
        return None;
    }
    match (*bytes.get(at + 1)?, *bytes.get(at + 2)?) {
        (0xBC, low @ 0x90..=0x99) => Some((b'0' + (low - 0x90), 3)),
        (0xBC, low @ 0xA1..=0xBA) => Some((b'A' + (low - 0xA1), 3)),
        (0xBD, low @ 0x81..=0x9A) => Some((b'a' + (low - 0x81), 3)),
        _ => None,
    }
}

/// Width of a full-width or ASCII punctuation character `ascii` at `at` (`'+'` matches `＋`).
#[inline]
fn punct_at(bytes: &[u8], at: usize, ascii: u8) -> usize {
    match bytes.get(at) {
        Some(&b) if b == ascii => 1,
        Some(0xEF)
            if (0x21..=0x7E).contains(&ascii)
                && bytes.get(at + 1..at + 3) == Some(&fullwidth_bytes(ascii)[1..]) =>
        {
            3
        }
        _ => 0,
    }
}

/// UTF-8 of the full-width form (U+FF01–U+FF5E) of a printable ASCII byte.
const fn fullwidth_bytes(ascii: u8) -> [u8; 3] {
    let code = ascii as u32 + 0xFEE0;
    [
        0xE0 | (code >> 12) as u8,
        0x80 | ((code >> 6) & 0x3F) as u8,
        0x80 | (code & 0x3F) as u8,
    ]
}

/// Whether the bytes ending at `at` are `ascii` or its full-width form; returns its width.
fn punct_before(bytes: &[u8], at: usize, ascii: u8) -> usize {
    if at >= 1 && bytes[at - 1] == ascii {
        return 1;
    }
    if at >= 3 && bytes[at - 3..at] == fullwidth_bytes(ascii) {
        return 3;
    }
    0
}

/// What joins two groups of digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Joiner {
    Space,
    Dash,
    /// A closing parenthesis, with or without a space after it.
    Parenthesis,
}

/// A separator inside a number at `at`: its kind and width.
#[inline]
fn separator_at(bytes: &[u8], at: usize) -> Option<(Joiner, usize)> {
    match bytes.get(at)? {
        b' ' => Some((Joiner::Space, 1)),
        b'-' => Some((Joiner::Dash, 1)),
        0xC2 if bytes.get(at + 1) == Some(&0xA0) => Some((Joiner::Space, 2)),
        0xE3 if bytes.get(at + 1..at + 3) == Some(&[0x80, 0x80]) => Some((Joiner::Space, 3)),
        0xEF if bytes.get(at + 1..at + 3) == Some(&[0xBC, 0x8D]) => Some((Joiner::Dash, 3)),
        _ => None,
    }
}

/// Number of chars in `bytes` (valid UTF-8): bytes that are not continuation bytes.
fn count_chars(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| (b as i8) >= -0x40).count()
}

/// ASCII bytes the local part of an e-mail address may contain in free text.
#[inline]
fn is_email_local(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'%' | b'+' | b'-')
}

#[inline]
fn is_email_domain(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'-')
}

// ---------------------------------------------------------------------------------------------
// Atoms and candidates.

const ATOM_CAPACITY: usize = 32;

/// A maximal run of ASCII or full-width letters and digits, folded to ASCII.
#[derive(Clone, Copy)]
struct Atom {
    start: usize,
    end: usize,
    /// Number of characters (may exceed the buffer).
    length: usize,
    letters: usize,
    buffer: [u8; ATOM_CAPACITY],
}

impl Atom {
    fn read(bytes: &[u8], start: usize) -> Atom {
        let mut atom = Atom {
            start,
            end: start,
            length: 0,
            letters: 0,
            buffer: [0; ATOM_CAPACITY],
        };
        loop {
            let (ascii, width) = match bytes.get(atom.end) {
                Some(&byte) if byte < 0x80 => {
                    if !byte.is_ascii_alphanumeric() {
                        break;
                    }
                    (byte, 1)
                }
                Some(_) => match alnum_at(bytes, atom.end) {
                    Some(found) => found,
                    None => break,
                },
                None => break,
            };
            if let Some(slot) = atom.buffer.get_mut(atom.length) {
                *slot = ascii;
            }
            atom.length += 1;
            atom.letters += usize::from(ascii.is_ascii_alphabetic());
            atom.end += width;
        }
        atom
    }

    /// The folded text, empty if the atom overflowed the buffer.
    fn text(&self) -> &[u8] {
        self.buffer.get(..self.length).unwrap_or(&[])
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(self.text()).unwrap_or_default()
    }

    fn is_digits(&self) -> bool {
        self.letters == 0
    }

    /// Digits with a final `X`/`x`: the spelling of an ID number whose check character is 10.
    fn is_digits_then_x(&self) -> bool {
        self.letters == 1 && matches!(self.text().last(), Some(b'X' | b'x'))
    }
}

/// A span before overlap resolution; offsets in bytes.
struct Candidate {
    kind: PiiKind,
    start: usize,
    end: usize,
    valid: bool,
    confidence: f32,
    normalized: Option<String>,
}

impl Candidate {
    /// Priority in an overlap: valid first, then (for invalid ones) confidence, then length,
    /// then specificity.
    fn priority(&self) -> (bool, u32, usize, u8, u32) {
        let confidence = (self.confidence * 1000.0) as u32;
        (
            self.valid,
            if self.valid { 0 } else { confidence },
            self.end - self.start,
            specificity(self.kind),
            confidence,
        )
    }
}

/// One scan of one text.
struct Pass<'s, 't> {
    scanner: &'s Scanner,
    text: &'t str,
    bytes: &'t [u8],
    today: Date,
    candidates: Vec<Candidate>,
    /// End of the last address found: place names before it are inside it.
    address_until: usize,
    /// End of the last e-mail local part searched for an `@` (found or not): keeps the e-mail
    /// search linear on runs like `a.a.a.a…`.
    email_searched_until: usize,
}

/// The kind-level outcome of checking one candidate string.
struct Checked {
    kind: PiiKind,
    valid: bool,
    normalized: Option<String>,
    /// An invalid value whose shape makes it worth reporting without a label.
    strong_shape: bool,
    /// A valid value that still needs a label (shape-only kinds in lower case, 8-digit permits).
    needs_label: bool,
}

impl Checked {
    fn of(kind: PiiKind, result: Result<crate::Validated, crate::Invalid>) -> Checked {
        let (valid, normalized) = match result {
            Ok(validated) => (true, Some(validated.normalized)),
            Err(_) => (false, None),
        };
        Checked {
            kind,
            valid,
            normalized,
            strong_shape: false,
            needs_label: false,
        }
    }

    fn strong(mut self, strong: bool) -> Checked {
        self.strong_shape = strong;
        self
    }

    fn labelled_only(mut self, needs_label: bool) -> Checked {
        self.needs_label = needs_label;
        self
    }
}

impl Pass<'_, '_> {
    fn run(&mut self) {
        let bytes = self.bytes;
        let length = bytes.len();
        let mut at = 0;
        while at < length {
            let lead = bytes[at];
            if lead < 0x80 {
                if lead.is_ascii_alphanumeric() {
                    at = self.atom_at(at);
                    continue;
                }
                if lead == b':' {
                    self.name_after_colon(at + 1);
                }
                at += 1;
                continue;
            }
            if lead == 0xEF {
                if alnum_at(bytes, at).is_some() {
                    at = self.atom_at(at);
                    continue;
                }
                if bytes.get(at + 1..at + 3) == Some(&[0xBC, 0x9A]) {
                    // '：'
                    self.name_after_colon(at + 3);
                }
                at += 3;
                continue;
            }
            if (0xE0..0xF0).contains(&lead) && at + 2 < length {
                let code = (u32::from(lead & 0x0F) << 12)
                    | (u32::from(bytes[at + 1] & 0x3F) << 6)
                    | u32::from(bytes[at + 2] & 0x3F);
                if self.scanner.triggers.first_chars.contains(code) {
                    if let Some((word_length, trigger)) =
                        self.scanner.triggers.match_start(code, &bytes[at..])
                    {
                        self.trigger(at, at + word_length, trigger);
                        at += word_length;
                        continue;
                    }
                }
                at += 3;
                continue;
            }
            at += match lead {
                0xC0..=0xDF => 2,
                0xF0..=0xF7 => 4,
                _ => 1,
            };
        }
    }

    fn push_normalized(
        &mut self,
        kind: PiiKind,
        start: usize,
        end: usize,
        valid: bool,
        confidence: f32,
        normalized: Option<String>,
    ) {
        if start < end {
            self.candidates.push(Candidate {
                kind,
                start,
                end,
                valid,
                confidence,
                normalized,
            });
        }
    }

    // -- labels ------------------------------------------------------------------------------

    /// What the words just before `at` say: up to 8 letters/ideographs, after skipping up to
    /// three separators (`:`, spaces, `#`, `是`, `为`, `(`).
    fn label_before(&self, at: usize) -> u32 {
        let bytes = self.bytes;
        let mut end = at;
        for _ in 0..3 {
            // `:` `：` space ideographic-space `#` `＃` 是 为 `(` `（` NBSP `.`
            match decode_before(bytes, end) {
                Some((
                    0x3A | 0xFF1A | 0x20 | 0x3000 | 0x23 | 0xFF03 | 0x662F | 0x4E3A | 0x28 | 0xFF08
                    | 0xA0 | 0x2E,
                    width,
                )) => end -= width,
                _ => break,
            }
        }
        let mut start = end;
        let mut chars = 0;
        while chars < 10 {
            match decode_before(bytes, start) {
                Some((code, width))
                    if is_cjk(code)
                        || (code < 0x80 && (code as u8).is_ascii_alphabetic())
                        || code == u32::from(b'-') =>
                {
                    start -= width;
                    chars += 1;
                }
                _ => break,
            }
        }
        if start == end {
            return 0;
        }
        let label = &bytes[start..end];
        let mut lower = [0u8; 64];
        let label: &[u8] = if label.len() <= lower.len() {
            for (slot, byte) in lower.iter_mut().zip(label) {
                *slot = byte.to_ascii_lowercase();
            }
            &lower[..label.len()]
        } else {
            label
        };
        let mut flags = 0;
        let mut position = 0;
        while position < label.len() {
            let Some((code, width)) = decode(label, position) else {
                break;
            };
            if let Some((_, flag)) = self
                .scanner
                .label_words
                .match_start(code, &label[position..])
            {
                flags |= flag;
            }
            position += width;
        }
        flags
    }

    /// The confidence to report a checked candidate with, or `None` to drop it.
    fn decide(&self, checked: &Checked, label: u32) -> Option<f32> {
        let kind = checked.kind;
        let mut own = label & context_bit(kind);
        if is_document(kind) && label & ctx::DOCUMENT != 0 {
            own |= ctx::DOCUMENT;
        }
        let labelled = own != 0;
        let other = label & ctx::ANY_KIND & !context_bit(kind) & !ctx::DOCUMENT != 0;
        let negative = label & ctx::NEGATIVE != 0 && !labelled;
        if negative
            && !(checked.valid && matches!(kind, PiiKind::CnId | PiiKind::Uscc | PiiKind::Email))
        {
            return None;
        }
        if other && !labelled && (kind == PiiKind::BankCard || !checked.valid) {
            return None;
        }
        if checked.valid {
            if checked.needs_label && !labelled {
                return None;
            }
            let (base, bonus) = match kind {
                PiiKind::CnId => (0.97, 0.02),
                PiiKind::Uscc => (0.95, 0.04),
                PiiKind::Email => (0.97, 0.02),
                PiiKind::HkId => (0.9, 0.08),
                PiiKind::CnMobile => (0.92, 0.06),
                PiiKind::CnLandline => (0.85, 0.1),
                PiiKind::BankCard => (0.8, 0.15),
                PiiKind::CnPassport | PiiKind::HkMacauPermit => (0.7, 0.25),
                PiiKind::TwPermit => (0.6, 0.3),
                PiiKind::PersonName | PiiKind::Address | PiiKind::BirthDate => (0.5, 0.0),
            };
            Some(if labelled { base + bonus } else { base })
        } else if labelled {
            Some(0.6)
        } else if checked.strong_shape {
            Some(0.35)
        } else {
            None
        }
    }

    // -- atoms -------------------------------------------------------------------------------

    /// Handles the atom starting at `at`; returns where scanning continues.
    fn atom_at(&mut self, at: usize) -> usize {
        let atom = Atom::read(self.bytes, at);
        if let Some(end) = self.email_from(&atom) {
            return end;
        }
        if atom.is_digits() || atom.is_digits_then_x() {
            return self.number_chain(atom);
        }
        if atom.length <= ATOM_CAPACITY {
            if atom.letters == atom.length {
                return self.english_word(&atom);
            }
            return self.alphanumeric(&atom);
        }
        atom.end
    }

    /// An e-mail address whose local part contains `atom`, if `@` follows the local part.
    fn email_from(&mut self, atom: &Atom) -> Option<usize> {
        let bytes = self.bytes;
        let next = *bytes.get(atom.end)?;
        if !(next == b'@' || (next != b' ' && is_email_local(next))) {
            return None;
        }
        if atom.end < self.email_searched_until {
            return None;
        }
        let floor = self.email_searched_until;
        let mut local_end = atom.end;
        while local_end < bytes.len() && is_email_local(bytes[local_end]) {
            local_end += 1;
        }
        self.email_searched_until = local_end;
        let at_width = punct_at(bytes, local_end, b'@');
        if at_width == 0 {
            return None;
        }
        let mut start = atom.start;
        while start > floor && is_email_local(bytes[start - 1]) {
            start -= 1;
        }
        let mut domain_start = local_end + at_width;
        // A doubled @ is a typo worth reporting (as invalid), not a reason to stop.
        loop {
            let width = punct_at(bytes, domain_start, b'@');
            if width == 0 {
                break;
            }
            domain_start += width;
        }
        let mut end = domain_start;
        while end < bytes.len() && is_email_domain(bytes[end]) {
            end += 1;
        }
        while end > domain_start && matches!(bytes[end - 1], b'.' | b'-') {
            end -= 1;
        }
        let domain = &bytes[domain_start..end];
        let last_dot = domain.iter().rposition(|&b| b == b'.')?;
        if last_dot == 0 || domain.len() - last_dot < 3 {
            return None;
        }
        let candidate = &self.text[start..end];
        let checked = Checked::of(PiiKind::Email, email::validate(candidate)).strong(true);
        let label = self.label_before(start);
        if let Some(confidence) = self.decide(&checked, label) {
            self.push_normalized(
                PiiKind::Email,
                start,
                end,
                checked.valid,
                confidence,
                checked.normalized,
            );
        }
        Some(end)
    }

    /// An atom with letters and digits: USCC, IDs ending in X, passports, permits, HKID.
    fn alphanumeric(&mut self, atom: &Atom) -> usize {
        let text = atom.text();
        let first = text[0];
        let mut checks: [Option<(Checked, usize)>; 3] = [None, None, None];
        let mut count = 0;
        let mut add = |checked: Checked, end: usize| {
            if let Some(slot) = checks.get_mut(count) {
                *slot = Some((checked, end));
                count += 1;
            }
        };
        let upper = first.is_ascii_uppercase();
        match atom.length {
            18 => {
                let shape = uscc_shape(text);
                add(
                    Checked::of(PiiKind::Uscc, uscc::validate(atom.as_str())).strong(shape),
                    atom.end,
                );
            }
            7 | 8 if atom.letters <= 2 => {
                // Hong Kong ID: 1–2 letters, 6 digits, check character in parentheses or not.
                let letters = text.iter().take_while(|b| b.is_ascii_alphabetic()).count();
                let digits_ok =
                    (1..=2).contains(&letters) && text[letters..].iter().all(u8::is_ascii_digit);
                if atom.length - letters == 6 && digits_ok {
                    if let Some(end) = self.hk_id_check_in_parentheses(atom.end) {
                        let candidate = &self.text[atom.start..end];
                        add(
                            Checked::of(PiiKind::HkId, hk_id::validate(candidate)).strong(upper),
                            end,
                        );
                    }
                } else if atom.length - letters == 7 && (1..=2).contains(&letters) {
                    add(
                        Checked::of(PiiKind::HkId, hk_id::validate(atom.as_str()))
                            .labelled_only(true),
                        atom.end,
                    );
                }
            }
            _ => {}
        }
        if (8..=11).contains(&atom.length) && first.is_ascii_alphabetic() && atom.letters <= 2 {
            let passport = cn_passport::validate(atom.as_str());
            if passport.is_ok() {
                add(
                    Checked::of(PiiKind::CnPassport, passport).labelled_only(!upper),
                    atom.end,
                );
            } else {
                let permit = hk_macau_permit::validate(atom.as_str());
                if permit.is_ok() {
                    add(
                        Checked::of(PiiKind::HkMacauPermit, permit).labelled_only(!upper),
                        atom.end,
                    );
                } else if upper {
                    // Invalid look-alikes are reported only under a label.
                    let kind = if matches!(first, b'H' | b'M' | b'C' | b'W') {
                        PiiKind::HkMacauPermit
                    } else {
                        PiiKind::CnPassport
                    };
                    add(Checked::of(kind, permit), atom.end);
                }
            }
        }
        let mut end = atom.end;
        if count > 0 {
            let label = self.label_before(atom.start);
            for (checked, candidate_end) in checks.into_iter().flatten() {
                if let Some(confidence) = self.decide(&checked, label) {
                    end = end.max(candidate_end);
                    self.push_normalized(
                        checked.kind,
                        atom.start,
                        candidate_end,
                        checked.valid,
                        confidence,
                        checked.normalized,
                    );
                }
            }
        }
        end
    }

    /// `(d)` right after a HKID body: the end of the closing parenthesis.
    fn hk_id_check_in_parentheses(&self, at: usize) -> Option<usize> {
        let bytes = self.bytes;
        let open = punct_at(bytes, at, b'(');
        if open == 0 {
            return None;
        }
        let (check, width) = alnum_at(bytes, at + open)?;
        if !(check.is_ascii_digit() || check.eq_ignore_ascii_case(&b'A')) {
            return None;
        }
        let close = punct_at(bytes, at + open + width, b')');
        (close > 0).then_some(at + open + width + close)
    }

    /// Digit groups joined by single spaces or dashes, from `first`; every whole sub-sequence of
    /// groups is tried against the numeric kinds.
    fn number_chain(&mut self, first: Atom) -> usize {
        const MAX_GROUPS: usize = 8;
        let bytes = self.bytes;
        let mut groups = [first; MAX_GROUPS];
        let mut joiners = [Joiner::Space; MAX_GROUPS];
        let mut count = 1;
        let mut at = first.end;
        while count < MAX_GROUPS {
            let mut next = at;
            let mut joiner = None;
            let close = punct_at(bytes, next, b')');
            if close > 0 {
                next += close;
                joiner = Some(Joiner::Parenthesis);
            }
            if let Some((kind, width)) = separator_at(bytes, next) {
                next += width;
                joiner = joiner.or(Some(kind));
            }
            let Some(joiner) = joiner else { break };
            if alnum_at(bytes, next).is_none() {
                break;
            }
            let atom = Atom::read(bytes, next);
            if !(atom.is_digits() || atom.is_digits_then_x()) || atom.length > ATOM_CAPACITY {
                break;
            }
            if groups[count - 1].is_digits_then_x() {
                break;
            }
            groups[count] = atom;
            joiners[count] = joiner;
            count += 1;
            at = atom.end;
        }
        let groups = &groups[..count];
        let joiners = &joiners[..count];
        // `SKU-6222…`, `HT_2026…`: digits glued to a code are part of that code.
        if first.start >= 2
            && matches!(bytes[first.start - 1], b'-' | b'_')
            && bytes[first.start - 2].is_ascii_alphanumeric()
        {
            return groups[count - 1].end;
        }

        // Prefix characters before the first group: `+`, `(`, `(+`.
        let plus = punct_before(bytes, first.start, b'+');
        let open_after_plus = if plus > 0 {
            punct_before(bytes, first.start - plus, b'(')
        } else {
            0
        };
        let open = if plus == 0 {
            punct_before(bytes, first.start, b'(')
        } else {
            0
        };

        let mut label: Option<u32> = None;
        let mut digits = [0u8; 24];
        for from in 0..count {
            if from > 0 && joiners[from] != Joiner::Space {
                continue;
            }
            let mut total = 0;
            for to in from..count {
                let group = &groups[to];
                if total + group.length > digits.len() || group.length > ATOM_CAPACITY {
                    break;
                }
                digits[total..total + group.length].copy_from_slice(group.text());
                total += group.length;
                let closes = to + 1 == count || joiners[to + 1] == Joiner::Space;
                let extension_follows = to + 2 == count
                    && joiners[to + 1] == Joiner::Dash
                    && groups[to + 1].length <= 6
                    && groups[to + 1].is_digits();
                if !closes && !extension_follows {
                    continue;
                }
                let lengths = GroupLengths::of(&groups[from..=to]);
                let text = &digits[..total];
                let mut start = groups[from].start;
                if from == 0 && to > 0 && joiners[1] == Joiner::Parenthesis && open > 0 {
                    start -= open;
                }
                let checks = self.check_digits(text, &lengths, closes);
                for (checked, prefixed) in checks.into_iter().flatten() {
                    let mut span_start = start;
                    if prefixed && from == 0 && plus > 0 {
                        span_start = first.start - plus;
                        let closed = to > 0 && joiners[1] == Joiner::Parenthesis;
                        if open_after_plus > 0 && closed {
                            span_start -= open_after_plus;
                        }
                    }
                    let label =
                        *label.get_or_insert_with(|| self.label_before(span_start.min(start)));
                    if let Some(confidence) = self.decide(&checked, label) {
                        self.push_normalized(
                            checked.kind,
                            span_start,
                            group.end,
                            checked.valid,
                            confidence,
                            checked.normalized,
                        );
                    }
                }
            }
        }
        groups[count - 1].end
    }

    /// The numeric kinds `text` (the digits of whole groups, maybe ending in X) may be; each with
    /// whether its span includes a country prefix. `closes`: nothing but a space follows.
    fn check_digits(
        &self,
        text: &[u8],
        lengths: &GroupLengths,
        closes: bool,
    ) -> [Option<(Checked, bool)>; 4] {
        let mut found: [Option<(Checked, bool)>; 4] = [None, None, None, None];
        let mut count = 0;
        let mut add = |checked: Checked, prefixed: bool| {
            if let Some(slot) = found.get_mut(count) {
                *slot = Some((checked, prefixed));
                count += 1;
            }
        };
        let total = text.len();
        let ends_with_x = matches!(text.last(), Some(b'X' | b'x'));

        if ends_with_x {
            if closes && total == 18 && lengths.is_one_or(&[&[6, 8, 4]]) {
                let id = ascii_str(text);
                add(
                    Checked::of(PiiKind::CnId, cn_id::validate(id, self.today))
                        .strong(cn_id_shape(text)),
                    false,
                );
            }
            return found;
        }

        // Mobile, plain or after 86 / 0086.
        if closes {
            let mobile_shapes: &[&[u8]] = &[&[3, 4, 4], &[3, 8], &[7, 4]];
            let prefix = if lengths.count > 1 {
                match lengths.first() {
                    2 if text.starts_with(b"86") => 2,
                    4 if text.starts_with(b"0086") => 4,
                    _ => 0,
                }
            } else if total == 13 && text.starts_with(b"86") {
                2
            } else if total == 15 && text.starts_with(b"0086") {
                4
            } else {
                0
            };
            let rest = &text[prefix..];
            let rest_shape_ok = if prefix > 0 && lengths.count > 1 {
                lengths.skip_first().is_one_or(mobile_shapes)
            } else {
                lengths.is_one_or(mobile_shapes)
            };
            if rest.len() == 11 && rest[0] == b'1' && rest_shape_ok {
                let number = ascii_str(rest);
                let strong = (b'3'..=b'9').contains(&rest[1]);
                add(
                    Checked::of(PiiKind::CnMobile, cn_mobile::validate(number)).strong(strong),
                    prefix > 0,
                );
            }
        }

        // Landline: area code with its 0, or after 86 / 0086 without it.
        if let Some((number, prefixed)) = landline_digits(text, lengths) {
            let number = ascii_str(&number.0[..number.1]);
            add(
                Checked::of(PiiKind::CnLandline, cn_landline::validate(number)),
                prefixed,
            );
        }
        if !closes {
            return found;
        }

        if (total == 18 || total == 15) && lengths.is_one_or(&[&[6, 8, 4], &[6, 6, 3]]) {
            let id = ascii_str(text);
            add(
                Checked::of(PiiKind::CnId, cn_id::validate(id, self.today))
                    .strong(total == 18 && cn_id_shape(text)),
                false,
            );
        }
        if (16..=19).contains(&total) && (lengths.count == 1 || lengths.is_card_groups()) {
            let card = ascii_str(text);
            let issuer_ok = (b'3'..=b'6').contains(&text[0]);
            let mut checked = Checked::of(PiiKind::BankCard, bank_card::validate(card));
            if checked.valid && total == 18 && cn_id_shape(text) && !issuer_ok {
                checked.needs_label = true;
            }
            add(checked.labelled_only(!issuer_ok), false);
        }
        if total == 18 && lengths.count == 1 {
            let code = ascii_str(text);
            add(Checked::of(PiiKind::Uscc, uscc::validate(code)), false);
        }
        if (total == 8 || total == 10) && lengths.count == 1 {
            let permit = ascii_str(text);
            add(
                Checked::of(PiiKind::TwPermit, tw_permit::validate(permit)).labelled_only(true),
                false,
            );
        }
        found
    }

    // -- English -------------------------------------------------------------------------------

    /// A word of letters only: English context words for names, addresses and birth dates.
    fn english_word(&mut self, atom: &Atom) -> usize {
        let word = atom.text();
        if word.len() > 8 {
            return atom.end;
        }
        let mut lower = [0u8; 8];
        for (slot, byte) in lower.iter_mut().zip(word) {
            *slot = byte.to_ascii_lowercase();
        }
        let lower = &lower[..word.len()];
        let bytes = self.bytes;
        match lower {
            b"mr" | b"mrs" | b"ms" | b"miss" | b"dr" if word[0].is_ascii_uppercase() => {
                let mut at = atom.end;
                at += usize::from(bytes.get(at) == Some(&b'.'));
                if bytes.get(at) == Some(&b' ') {
                    if let Some(end) = english_name(bytes, at + 1) {
                        self.push_name(at + 1, end, 0.8);
                    }
                }
            }
            b"name" | b"customer" | b"contact" => {
                if let Some(at) = after_label_colon(bytes, atom.end) {
                    if let Some(end) = english_name(bytes, at) {
                        self.push_name(at, end, 0.8);
                    } else {
                        self.chinese_name_at(at, 0.85);
                    }
                } else if lower == b"name" && bytes[atom.end..].starts_with(b" is ") {
                    let at = atom.end + 4;
                    if let Some(end) = english_name(bytes, at) {
                        self.push_name(at, end, 0.75);
                    }
                }
            }
            b"address" | b"addr" => {
                if let Some(at) = after_label_colon(bytes, atom.end) {
                    if !self.chinese_address(at, true) {
                        self.english_address(at);
                    }
                }
            }
            b"dob" | b"birth" | b"birthday" | b"born" => {
                let mut at = atom.end;
                if let Some(colon) = after_label_colon(bytes, at) {
                    at = colon;
                } else if bytes[at..].starts_with(b" on ") {
                    at += 4;
                } else if bytes.get(at) == Some(&b' ') {
                    at += 1;
                }
                self.birth_date_at(at);
            }
            _ => {}
        }
        atom.end
    }

    fn english_address(&mut self, start: usize) {
        let bytes = self.bytes;
        let limit = (start + 120).min(bytes.len());
        let mut end = start;
        let mut digits = false;
        while end < limit {
            let byte = bytes[end];
            if matches!(byte, b'\n' | b'\r' | b';' | b'|' | b'\t') || byte >= 0x80 {
                break;
            }
            if byte == b'.' && bytes.get(end + 1).is_none_or(|&b| b == b' ') {
                break;
            }
            if byte == b',' || byte == b' ' {
                let rest = &bytes[end + 1..];
                let rest = rest.strip_prefix(b" ").unwrap_or(rest);
                let lowered: Vec<u8> = rest.iter().take(6).map(u8::to_ascii_lowercase).collect();
                if [&b"tel"[..], b"phone", b"mobile", b"email", b"call"]
                    .iter()
                    .any(|w| lowered.starts_with(w))
                {
                    break;
                }
            }
            digits |= byte.is_ascii_digit();
            end += 1;
        }
        while end > start && matches!(bytes[end - 1], b' ' | b',' | b'.') {
            end -= 1;
        }
        if digits && end - start >= 8 {
            let normalized = address::validate(&self.text[start..end])
                .ok()
                .map(|v| v.normalized);
            self.push_normalized(PiiKind::Address, start, end, true, 0.65, normalized);
        }
    }

    // -- names -----------------------------------------------------------------------------------

    /// A name found by the scanner: ideographs or ASCII letters with inner spaces, `'` and `-`,
    /// so its normal form is the text itself (what `person_name::validate` would return).
    fn push_name(&mut self, start: usize, end: usize, confidence: f32) {
        let normalized = Some(self.text[start..end].to_owned());
        self.push_normalized(
            PiiKind::PersonName,
            start,
            end,
            true,
            confidence,
            normalized,
        );
    }

    fn trigger(&mut self, start: usize, end: usize, trigger: Trigger) {
        match trigger {
            Trigger::NameContext => {
                let at = skip_label_separators(self.bytes, end);
                match english_name(self.bytes, at) {
                    Some(name_end) => self.push_name(at, name_end, 0.8),
                    None => self.chinese_name_at(at, 0.9),
                }
            }
            Trigger::NameSuffix => self.name_before_suffix(start),
            Trigger::AddressContext => {
                let at = skip_label_separators(self.bytes, end);
                self.chinese_address(at, true);
            }
            Trigger::Place => {
                if start >= self.address_until {
                    self.chinese_address(start, false);
                }
            }
            Trigger::BirthContext => {
                let at = skip_label_separators(self.bytes, end);
                self.birth_date_at(at);
            }
        }
    }

    /// After a bare colon (`回访记录:孙伟要求…`): a name only if it ends cleanly.
    fn name_after_colon(&mut self, at: usize) {
        let at = if self.bytes.get(at) == Some(&b' ') {
            at + 1
        } else {
            at
        };
        if let Some((code, _)) = decode(self.bytes, at) {
            if self.scanner.surnames.contains(code) || is_cjk(code) {
                self.chinese_name_at(at, 0.6);
            }
        }
    }

    /// Length in bytes of the surname starting at `at`.
    fn surname_at(&self, at: usize) -> Option<usize> {
        if let Some((length, ())) = self.scanner.compound_surnames.match_at(self.bytes, at) {
            return Some(length);
        }
        let (code, width) = decode(self.bytes, at)?;
        self.scanner.surnames.contains(code).then_some(width)
    }

    /// A character that may be part of a given name at `at` (and does not start a follower
    /// word such as 先生 or 手机).
    fn given_name_char(&self, at: usize) -> Option<usize> {
        let (code, width) = decode(self.bytes, at)?;
        if !is_cjk(code) || self.scanner.not_given_name.contains(code) {
            return None;
        }
        if self
            .scanner
            .name_followers
            .match_start(code, &self.bytes[at..])
            .is_some()
        {
            return None;
        }
        Some(width)
    }

    /// Whether a name may end at `at`: end of text, a non-ideograph, a closing character
    /// (说, 的, 在 …), a follower word (先生, 手机 …) or a place name.
    fn name_ends_at(&self, at: usize) -> bool {
        let Some((code, _)) = decode(self.bytes, at) else {
            return true;
        };
        if !is_cjk(code) || self.scanner.name_end_chars.contains(code) {
            return true;
        }
        let rest = &self.bytes[at..];
        self.scanner
            .name_followers
            .match_start(code, rest)
            .is_some()
            || matches!(
                self.scanner.triggers.match_start(code, rest),
                Some((_, Trigger::Place | Trigger::NameSuffix))
            )
    }

    /// A Chinese name (surname + 1–2 given characters) starting at `at`, ending cleanly.
    fn chinese_name_end(&self, at: usize) -> Option<usize> {
        let surname = self.surname_at(at)?;
        let mut end = at + surname;
        for _ in 0..2 {
            end += self.given_name_char(end)?;
            if self.name_ends_at(end) {
                return Some(end);
            }
        }
        None
    }

    fn chinese_name_at(&mut self, at: usize, confidence: f32) {
        if let Some(end) = self.chinese_name_end(at) {
            self.push_name(at, end, confidence);
        }
    }

    /// `张伟先生`: the name before a title word starting at `suffix`.
    fn name_before_suffix(&mut self, suffix: usize) {
        let bytes = self.bytes;
        // starts[k]: where the name would start if it were k + 1 characters long.
        let mut starts = [0usize; 4];
        let mut available = 0;
        let mut at = suffix;
        while available < starts.len() {
            match decode_before(bytes, at) {
                Some((code, width)) if is_cjk(code) => {
                    at -= width;
                    starts[available] = at;
                    available += 1;
                }
                _ => break,
            }
        }
        // Longest first: 4 (compound surname), 3, then 2 characters.
        for length in (2..=available.min(4)).rev() {
            let start = starts[length - 1];
            let Some(surname) = self.surname_at(start) else {
                continue;
            };
            let mut end = start + surname;
            let mut given = 0;
            while end < suffix {
                match self.given_name_char(end) {
                    Some(width) => {
                        end += width;
                        given += 1;
                    }
                    None => break,
                }
            }
            if end == suffix && (1..=2).contains(&given) {
                self.push_name(start, suffix, 0.85);
                return;
            }
        }
    }

    // -- addresses -------------------------------------------------------------------------------

    /// A Chinese address starting at `start`. Without a context word it must name both an
    /// administrative division (省/市/区/县 …) and a street-level place (路/号/室 …). Returns
    /// whether one was found.
    fn chinese_address(&mut self, start: usize, with_context: bool) -> bool {
        let bytes = self.bytes;
        let scanner = self.scanner;
        let limit = bytes.len().min(start + 80 * 3);
        let mut at = start;
        let mut chars = 0;
        let mut admin = false;
        let mut detail = false;
        let mut final_end = start;
        let mut digit_run = 0;
        while at < limit {
            let Some((code, width)) = decode(bytes, at) else {
                break;
            };
            if let Some((ascii, width)) = alnum_at(bytes, at) {
                digit_run = if ascii.is_ascii_digit() {
                    digit_run + 1
                } else {
                    0
                };
                if digit_run > 6 {
                    break;
                }
                at += width;
                chars += 1;
                continue;
            }
            digit_run = 0;
            if matches!(code, 0x2D | 0xFF0D | 0x23 | 0xFF03) {
                at += width;
                chars += 1;
                continue;
            }
            if !is_cjk(code) || scanner.address_stop_chars.contains(code) {
                break;
            }
            if chars > 0 && scanner.address_stops.match_at(bytes, at).is_some() {
                break;
            }
            if scanner.address_admin_chars.contains(code) {
                admin = true;
            }
            if scanner.address_detail_chars.contains(code) {
                detail = true;
            }
            at += width;
            chars += 1;
            if scanner.address_final_chars.contains(code) {
                final_end = at;
            }
        }
        let long_enough = count_chars(&bytes[start..final_end]) >= 4;
        let found = long_enough
            && if with_context {
                admin || detail
            } else {
                admin && detail
            };
        if found {
            let normalized = address::validate(&self.text[start..final_end])
                .ok()
                .map(|v| v.normalized);
            let confidence = match (with_context, admin && detail) {
                (true, true) => 0.9,
                (true, false) => 0.7,
                (false, _) => 0.75,
            };
            self.push_normalized(
                PiiKind::Address,
                start,
                final_end,
                normalized.is_some(),
                confidence,
                normalized,
            );
            self.address_until = final_end;
        }
        found
    }

    // -- birth dates -----------------------------------------------------------------------------

    /// A date right at `at` (after a birth-date context word): `1984-02-27`, `1984/2/27`,
    /// `1984.02.27`, `1984年2月27日`.
    fn birth_date_at(&mut self, at: usize) {
        let bytes = self.bytes;
        let mut position = at;
        let read_number = |position: &mut usize, max: usize| -> Option<(u32, usize)> {
            let mut value = 0u32;
            let mut digits = 0;
            while let Some((ascii, width)) = alnum_at(bytes, *position) {
                if !ascii.is_ascii_digit() || digits == max {
                    return None;
                }
                value = value * 10 + u32::from(ascii - b'0');
                digits += 1;
                *position += width;
            }
            (digits > 0).then_some((value, digits))
        };
        let Some((year, 4)) = read_number(&mut position, 4) else {
            return;
        };
        let separator = |position: usize| -> Option<(u32, usize)> { decode(bytes, position) };
        let Some((first_separator, width)) = separator(position) else {
            return;
        };
        let (second_expected, chinese) = match first_separator {
            0x2D | 0xFF0D => (first_separator, false),
            0x2F | 0x2E => (first_separator, false),
            0x5E74 => (0x6708, true), // 年 … 月
            _ => return,
        };
        position += width;
        let Some((month, _)) = read_number(&mut position, 2) else {
            return;
        };
        match separator(position) {
            Some((code, width)) if code == second_expected => position += width,
            _ => return,
        }
        let Some((day, _)) = read_number(&mut position, 2) else {
            return;
        };
        if chinese {
            if let Some((0x65E5 | 0x53F7, width)) = separator(position) {
                position += width; // 日 or 号
            }
        }
        let date = Date::new(year as i32, month, day);
        let valid = date.is_some_and(|d| d <= self.today && d >= crate::birth_date::EARLIEST);
        let normalized = date.filter(|_| valid).map(|d| d.to_string());
        let confidence = if valid { 0.9 } else { 0.5 };
        self.push_normalized(
            PiiKind::BirthDate,
            at,
            position,
            valid,
            confidence,
            normalized,
        );
    }
}

/// Lengths of a run of digit groups (at most 8 are kept).
struct GroupLengths {
    lengths: [u8; 8],
    count: usize,
}

impl GroupLengths {
    fn of(groups: &[Atom]) -> GroupLengths {
        let mut lengths = [0u8; 8];
        for (slot, group) in lengths.iter_mut().zip(groups) {
            *slot = group.length.min(255) as u8;
        }
        GroupLengths {
            lengths,
            count: groups.len().min(8),
        }
    }

    fn as_slice(&self) -> &[u8] {
        &self.lengths[..self.count]
    }

    fn first(&self) -> u8 {
        self.lengths[0]
    }

    fn skip_first(&self) -> GroupLengths {
        let mut lengths = [0u8; 8];
        lengths[..self.count - 1].copy_from_slice(&self.lengths[1..self.count]);
        GroupLengths {
            lengths,
            count: self.count - 1,
        }
    }

    /// A single group, or one of `shapes`.
    fn is_one_or(&self, shapes: &[&[u8]]) -> bool {
        self.count == 1 || shapes.contains(&self.as_slice())
    }

    /// `6222 0000 1111 2222 (333)`: four or more groups of 4 with a last group of 1–4.
    fn is_card_groups(&self) -> bool {
        let lengths = self.as_slice();
        lengths.len() >= 4
            && lengths[..lengths.len() - 1].iter().all(|&l| l == 4)
            && (1..=4).contains(&lengths[lengths.len() - 1])
    }
}

/// The domestic digits (trunk 0 included) of a landline spelled by whole groups, and whether a
/// country prefix was part of it.
fn landline_digits(text: &[u8], lengths: &GroupLengths) -> Option<(([u8; 24], usize), bool)> {
    let local_shapes: &[&[u8]] = &[&[7], &[8], &[3, 4], &[4, 4], &[4, 3]];
    let mut out = [0u8; 24];
    let lengths_slice = lengths.as_slice();
    let (national, prefixed, shape): (&[u8], bool, &[u8]) = match lengths_slice {
        [2, rest @ ..] if text.starts_with(b"86") && !rest.is_empty() => (&text[2..], true, rest),
        [4, rest @ ..] if text.starts_with(b"0086") && !rest.is_empty() => (&text[4..], true, rest),
        _ => (text, false, lengths_slice),
    };
    let domestic_length = national.len() + usize::from(prefixed);
    if domestic_length > out.len() || national.is_empty() {
        return None;
    }
    if prefixed {
        out[0] = b'0';
        out[1..domestic_length].copy_from_slice(national);
        if national[0] == b'0' {
            return None;
        }
    } else {
        out[..domestic_length].copy_from_slice(national);
    }
    let digits = &out[..domestic_length];
    if digits[0] != b'0' || digits.get(1) == Some(&b'0') {
        return None;
    }
    let area = match digits.get(1)? {
        b'1' | b'2' => 3,
        _ => 4,
    };
    let local = domestic_length.checked_sub(area)?;
    if !(7..=8).contains(&local) || (area == 3 && local != 8) {
        return None;
    }
    let shape_ok = match shape {
        [_] => true,
        [first, rest @ ..] => {
            usize::from(*first) == area - usize::from(prefixed) && local_shapes.contains(&rest)
        }
        [] => false,
    };
    shape_ok.then_some(((out, domestic_length), prefixed))
}

/// Eighteen digits that look like an ID number apart from the check character: a real province
/// prefix and a plausible date.
fn cn_id_shape(text: &[u8]) -> bool {
    if text.len() != 18 || !text[..17].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let number = |range: std::ops::Range<usize>| {
        text[range]
            .iter()
            .fold(0u32, |value, &b| value * 10 + u32::from(b - b'0'))
    };
    let province = std::str::from_utf8(&text[..2]).unwrap_or_default();
    cn_id::province_name(province).is_some()
        && (1900..=2099).contains(&number(6..10))
        && (1..=12).contains(&number(10..12))
        && (1..=31).contains(&number(12..14))
}

/// Eighteen characters from the USCC alphabet with a known authority code and a six-digit
/// division code: worth reporting even with a wrong check character.
fn uscc_shape(text: &[u8]) -> bool {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
    text.len() == 18
        && text
            .iter()
            .all(|b| ALPHABET.contains(&b.to_ascii_uppercase()))
        && text.iter().all(|b| !b.is_ascii_lowercase())
        && matches!(text[0], b'1'..=b'9' | b'A' | b'N' | b'Y')
        && text[2..8].iter().all(u8::is_ascii_digit)
}

/// `haystack.starts_with(needle)` for short needles, without a call to `memcmp`.
#[inline]
fn starts_with(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.len() >= needle.len() && {
        let mut equal = true;
        for (a, b) in haystack.iter().zip(needle) {
            equal &= a == b;
        }
        equal
    }
}

/// ASCII bytes as `&str` (empty if not UTF-8, which ASCII always is).
fn ascii_str(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or_default()
}

/// Skips `:`, `：`, spaces and `为`/`是`/`在` after a context word.
fn skip_label_separators(bytes: &[u8], mut at: usize) -> usize {
    for _ in 0..3 {
        match decode(bytes, at) {
            Some((0x3A | 0xFF1A | 0x20 | 0x3000 | 0x4E3A | 0x662F | 0x5728, width)) => at += width,
            _ => break,
        }
    }
    at
}

/// After an English label word: `: `, `： `, or ` - `; the position of the value.
fn after_label_colon(bytes: &[u8], at: usize) -> Option<usize> {
    let colon = punct_at(bytes, at, b':');
    if colon == 0 {
        return None;
    }
    let mut at = at + colon;
    while bytes.get(at) == Some(&b' ') {
        at += 1;
    }
    Some(at)
}

/// One to three capitalised English words (`John`, `O'Brien`, `Smith-Jones`) at `at`.
fn english_name(bytes: &[u8], at: usize) -> Option<usize> {
    let mut end = at;
    let mut words = 0;
    loop {
        let word_start = end;
        if !bytes.get(end).is_some_and(u8::is_ascii_uppercase) {
            break;
        }
        end += 1;
        while end < bytes.len() {
            let joined = matches!(bytes[end - 1], b'\'' | b'-');
            let continues = bytes[end].is_ascii_lowercase()
                || (joined && bytes[end].is_ascii_uppercase())
                || (matches!(bytes[end], b'\'' | b'-')
                    && bytes.get(end + 1).is_some_and(u8::is_ascii_alphabetic));
            if !continues {
                break;
            }
            end += 1;
        }
        if end - word_start < 2 || bytes.get(end).is_some_and(u8::is_ascii_alphanumeric) {
            end = word_start;
            break;
        }
        words += 1;
        if words == 3 || bytes.get(end) != Some(&b' ') {
            break;
        }
        if !bytes.get(end + 1).is_some_and(u8::is_ascii_uppercase) {
            break;
        }
        end += 1;
    }
    while end > at && bytes[end - 1] == b' ' {
        end -= 1;
    }
    (words > 0 && end > at).then_some(end)
}

// ---------------------------------------------------------------------------------------------
// Overlap resolution and char offsets.

fn resolve(text: &str, mut candidates: Vec<Candidate>, spans: &mut Vec<Span>) {
    if !candidates.is_sorted_by_key(|c| (c.start, std::cmp::Reverse(c.end))) {
        candidates.sort_by_key(|c| (c.start, std::cmp::Reverse(c.end)));
    }
    let mut chosen: Vec<Candidate> = Vec::with_capacity(candidates.len());
    let mut cluster: Vec<Candidate> = Vec::new();
    let mut cluster_end = 0;
    let flush = |cluster: &mut Vec<Candidate>, chosen: &mut Vec<Candidate>| {
        if cluster.len() == 1 {
            chosen.append(cluster);
            return;
        }
        cluster.sort_by(|a, b| {
            b.priority()
                .partial_cmp(&a.priority())
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let first_kept = chosen.len();
        for candidate in cluster.drain(..) {
            let overlaps = chosen[first_kept..]
                .iter()
                .any(|kept| candidate.start < kept.end && kept.start < candidate.end);
            if !overlaps {
                chosen.push(candidate);
            }
        }
        chosen[first_kept..].sort_by_key(|c| c.start);
    };
    for candidate in candidates {
        if !cluster.is_empty() && candidate.start >= cluster_end {
            flush(&mut cluster, &mut chosen);
        }
        cluster_end = if cluster.is_empty() {
            candidate.end
        } else {
            cluster_end.max(candidate.end)
        };
        cluster.push(candidate);
    }
    flush(&mut cluster, &mut chosen);

    let bytes = text.as_bytes();
    let mut byte_cursor = 0;
    let mut char_cursor = 0;
    spans.reserve(chosen.len());
    for candidate in chosen {
        char_cursor += count_chars(&bytes[byte_cursor..candidate.start]);
        let start = char_cursor;
        char_cursor += count_chars(&bytes[candidate.start..candidate.end]);
        byte_cursor = candidate.end;
        spans.push(Span {
            kind: candidate.kind,
            start,
            end: char_cursor,
            byte_start: candidate.start,
            byte_end: candidate.end,
            valid: candidate.valid,
            confidence: candidate.confidence.clamp(0.0, 1.0),
            normalized: if candidate.valid {
                candidate.normalized
            } else {
                None
            },
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TODAY: Date = Date {
        year: 2026,
        month: 11,
        day: 29,
    };

    /// `(kind, text of the span, valid)` for every span expected.
    type Expected<'a> = &'a [(PiiKind, &'a str, bool)];

    /// `(kind, text of the span, valid)` for every span found.
    fn check(text: &str, expected: &[(PiiKind, &str, bool)]) {
        let spans = scan(text, TODAY);
        let chars: Vec<char> = text.chars().collect();
        let found: Vec<(PiiKind, String, bool)> = spans
            .iter()
            .map(|s| (s.kind, chars[s.start..s.end].iter().collect(), s.valid))
            .collect();
        let expected: Vec<(PiiKind, String, bool)> = expected
            .iter()
            .map(|(k, t, v)| (*k, (*t).to_owned(), *v))
            .collect();
        assert_eq!(found, expected, "{text}");
        for span in &spans {
            assert_eq!(&text[span.byte_start..span.byte_end], {
                let s: String = chars[span.start..span.end].iter().collect();
                s
            });
        }
    }

    #[test]
    fn finds_structured_kinds() {
        use PiiKind::*;
        let cases: &[(&str, Expected)] = &[
            (
                "客户张浩然,手机16569941468,身份证440305196510072946",
                &[
                    (PersonName, "张浩然", true),
                    (CnMobile, "16569941468", true),
                    (CnId, "440305196510072946", false),
                ],
            ),
            (
                "联系人:陈子涵 电话 +86 177 3720 1834 邮箱 li.na16@example.com",
                &[
                    (PersonName, "陈子涵", true),
                    (CnMobile, "+86 177 3720 1834", true),
                    (Email, "li.na16@example.com", true),
                ],
            ),
            (
                "手机１３８１２３４５６７８",
                &[(CnMobile, "１３８１２３４５６７８", true)],
            ),
            (
                "电话(+86) 138-1234-5678",
                &[(CnMobile, "(+86) 138-1234-5678", true)],
            ),
            (
                "座机(0755) 2345 6789转8",
                &[(CnLandline, "(0755) 2345 6789", true)],
            ),
            (
                "公司座机0871-61488368,分机8021",
                &[(CnLandline, "0871-61488368", true)],
            ),
            ("订单号2026112913812345678999", &[]),
            ("订单号13812345678", &[]),
            ("单号 ABC13812345678", &[]),
            ("金额¥13,812.56元", &[]),
            ("时间20261129093412", &[]),
            ("香港身份证P370645(5)", &[(HkId, "P370645(5)", true)]),
            ("回乡证H4423143001", &[(HkMacauPermit, "H4423143001", true)]),
            ("护照号EM7786829", &[(CnPassport, "EM7786829", true)]),
            ("台胞证12345678", &[(TwPermit, "12345678", true)]),
            ("编号12345678", &[]),
            (
                "税号333201029351875605校验不通过",
                &[(Uscc, "333201029351875605", false)],
            ),
            (
                "卡号 6222 0212 3456 7892",
                &[(BankCard, "6222 0212 3456 7892", false)],
            ),
            (
                "客户留的邮箱li.na@@example.com格式不对",
                &[(Email, "li.na@@example.com", false)],
            ),
            (
                "出生日期：1984年2月27日",
                &[(BirthDate, "1984年2月27日", true)],
            ),
            ("生日 1984-02-30", &[(BirthDate, "1984-02-30", false)]),
            ("有效期至2026-12-31", &[]),
        ];
        for (text, expected) in cases {
            check(text, expected);
        }
    }

    #[test]
    fn finds_names_and_addresses() {
        use PiiKind::*;
        let cases: &[(&str, Expected)] = &[
            ("回访记录:孙伟要求退款", &[(PersonName, "孙伟", true)]),
            ("港澳客户欧阳勇持回乡证", &[(PersonName, "欧阳勇", true)]),
            ("客户王先生来电", &[]),
            ("请转告张伟先生", &[(PersonName, "张伟", true)]),
            ("客户要求下周三上午10点回电,地址已更新。", &[]),
            (
                "收货地址：广东省深圳市南山区科技园路1号3栋502室，电话联系",
                &[(Address, "广东省深圳市南山区科技园路1号3栋502室", true)],
            ),
            (
                "寄到上海市浦东新区世纪大道100号",
                &[(Address, "上海市浦东新区世纪大道100号", true)],
            ),
            (
                "Please call Mr. John Smith today",
                &[(PersonName, "John Smith", true)],
            ),
            (
                "Address: 12 Nathan Road, Kowloon; tel",
                &[(Address, "12 Nathan Road, Kowloon", true)],
            ),
        ];
        for (text, expected) in cases {
            check(text, expected);
        }
    }

    #[test]
    fn pathological_inputs_stay_linear() {
        // Each would be quadratic if a search restarted at every atom.
        let inputs = [
            "a.".repeat(200_000),
            "1-".repeat(200_000),
            "1 ".repeat(200_000),
            "a@".repeat(200_000),
            "北京市".repeat(50_000),
            "客户张".repeat(50_000),
            "先生".repeat(100_000),
            format!("{}@example.com", "a.".repeat(200_000)),
        ];
        for input in &inputs {
            let spans = scan(input, TODAY);
            assert!(spans.len() <= input.len());
        }
    }

    #[test]
    fn debug_redacts_normalized_value() {
        let spans = scan("手机13812345678", TODAY);
        assert_eq!(spans.len(), 1);
        let debug = format!("{:?}", spans[0]);
        assert!(!debug.contains("13812345678"), "{debug}");
        assert!(debug.contains("redacted"));
    }
}
