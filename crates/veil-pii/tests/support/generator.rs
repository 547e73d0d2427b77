//! Deterministic generator of labelled, synthetic CRM notes for the scanner's corpus and benchmark.
//!
//! Every value is synthetic: check characters are computed with `veil-pii`'s own functions, and
//! names, addresses and numbers are drawn from small lists with a fixed-seed PRNG, so the output
//! is the same on every machine. `tests/corpus.rs` writes it to `tests/fixtures/pii-corpus.jsonl`
//! (with `VEIL_WRITE_CORPUS=1`) and checks that the committed file matches; `benches/scan.rs`
//! builds its 10 MB notes text from it.
//!
//! Templates use `{slot}` for generated values. Hand-written lines (`tests/fixtures/
//! hand-written.txt`) may also use `[[kind:value]]` for a labelled value typed by hand and
//! `[[kind!:value]]` for a labelled invalid look-alike.

#![allow(dead_code)]

use veil_pii::{bank_card, cn_id, hk_id, uscc};

/// SplitMix64: tiny, fast and stable across versions (unlike a crate's PRNG).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, bound: usize) -> usize {
        (self.next_u64() % bound as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    pub fn digits(&mut self, count: usize) -> String {
        (0..count)
            .map(|_| char::from(b'0' + self.below(10) as u8))
            .collect()
    }
}

/// A labelled span, offsets in chars.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub kind: &'static str,
    pub start: usize,
    pub end: usize,
    pub valid: bool,
}

/// One labelled line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub text: String,
    pub spans: Vec<Label>,
}

impl Line {
    /// The line as JSON in the shared vectors' `free_text` format (keys in a fixed order).
    pub fn to_json(&self) -> String {
        let quote = |s: &str| serde_json::to_string(s).unwrap_or_default();
        let spans: Vec<String> = self
            .spans
            .iter()
            .map(|s| {
                format!(
                    "{{\"kind\": {}, \"start\": {}, \"end\": {}, \"valid\": {}}}",
                    quote(s.kind),
                    s.start,
                    s.end,
                    s.valid
                )
            })
            .collect();
        format!(
            "{{\"text\": {}, \"spans\": [{}]}}",
            quote(&self.text),
            spans.join(", ")
        )
    }
}

/// Builds a line piece by piece, recording char offsets of labelled pieces.
#[derive(Default)]
struct Builder {
    text: String,
    chars: usize,
    spans: Vec<Label>,
}

impl Builder {
    fn literal(&mut self, s: &str) {
        self.text.push_str(s);
        self.chars += s.chars().count();
    }

    fn labelled(&mut self, kind: &'static str, valid: bool, s: &str) {
        let start = self.chars;
        self.literal(s);
        self.spans.push(Label {
            kind,
            start,
            end: self.chars,
            valid,
        });
    }

    fn finish(self) -> Line {
        Line {
            text: self.text,
            spans: self.spans,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Value generators.

const REGIONS: &[&str] = &[
    "110101", "110105", "310104", "310115", "440305", "440106", "330106", "320102", "420106",
    "510107", "610113", "500103", "120101", "370202", "350203", "430104", "210102", "230102",
    "530102", "450103",
];
const MOBILE_PREFIXES: &[&str] = &[
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139", "147", "150", "151",
    "152", "153", "155", "156", "157", "158", "159", "166", "172", "173", "175", "176", "177",
    "178", "180", "181", "182", "183", "184", "185", "186", "187", "188", "189", "191", "198",
    "199",
];
const UNALLOCATED_PREFIXES: &[&str] = &[
    "154", "160", "161", "163", "164", "168", "169", "179", "194",
];
const AREA_CODES: &[&str] = &[
    "010", "020", "021", "022", "023", "024", "025", "027", "028", "029", "0755", "0571", "0512",
    "0871", "0532", "0591", "0731", "0351", "0898", "0769",
];
const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "高", "林", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭", "曾",
    "肖", "田", "董", "潘", "袁", "蔡", "蒋", "余", "于", "杜", "叶", "程", "魏", "苏", "吕", "丁",
    "沈", "任", "姚", "卢", "傅", "钟", "姜", "崔", "谭", "廖", "范", "汪", "陆", "金", "石", "戴",
    "贾", "韦", "夏", "邱", "方", "侯", "邹", "熊", "孟", "秦", "白", "江", "阎", "薛", "尹", "段",
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "慕容",
];
const GIVEN_CHARS: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "超",
    "秀", "霞", "平", "刚", "桂", "英", "华", "玉", "兰", "萍", "红", "鹏", "飞", "斌", "宇", "浩",
    "然", "子", "涵", "梓", "轩", "欣", "怡", "思", "雨", "佳", "琪", "晨", "阳", "博", "文", "诺",
    "俊", "雪", "梅", "建", "国", "志", "海", "燕", "晓", "东", "丹", "辉", "宁", "波", "慧", "颖",
    "婷", "倩", "琳", "璐", "凯", "峰", "嘉", "瑶", "昊", "天", "泽", "铭", "馨", "悦", "彤", "鑫",
];
/// Cities of a province with their districts (`""` for a municipality's own districts).
type Cities = &'static [(&'static str, &'static [&'static str])];

const PROVINCES: &[(&str, Cities)] = &[
    (
        "北京市",
        &[("", &["朝阳区", "海淀区", "东城区", "西城区", "丰台区"])],
    ),
    (
        "上海市",
        &[("", &["浦东新区", "徐汇区", "静安区", "黄浦区", "闵行区"])],
    ),
    ("天津市", &[("", &["和平区", "南开区", "河西区"])]),
    ("重庆市", &[("", &["渝中区", "江北区", "沙坪坝区"])]),
    (
        "广东省",
        &[
            ("深圳市", &["南山区", "福田区", "宝安区", "龙岗区"]),
            ("广州市", &["天河区", "越秀区", "海珠区"]),
            ("东莞市", &["南城街道", "东城街道"]),
        ],
    ),
    (
        "浙江省",
        &[
            ("杭州市", &["西湖区", "滨江区", "余杭区"]),
            ("宁波市", &["鄞州区", "海曙区"]),
        ],
    ),
    (
        "江苏省",
        &[
            ("南京市", &["鼓楼区", "玄武区", "江宁区"]),
            ("苏州市", &["姑苏区", "吴中区", "工业园区"]),
        ],
    ),
    ("四川省", &[("成都市", &["武侯区", "锦江区", "高新区"])]),
    ("湖北省", &[("武汉市", &["洪山区", "江汉区", "武昌区"])]),
    ("陕西省", &[("西安市", &["雁塔区", "碑林区", "未央区"])]),
    (
        "山东省",
        &[
            ("青岛市", &["市南区", "崂山区"]),
            ("济南市", &["历下区", "槐荫区"]),
        ],
    ),
    (
        "福建省",
        &[
            ("厦门市", &["思明区", "湖里区"]),
            ("福州市", &["鼓楼区", "仓山区"]),
        ],
    ),
    ("云南省", &[("昆明市", &["五华区", "盘龙区"])]),
    (
        "河南省",
        &[("郑州市", &["金水区", "二七区"]), ("洛阳市", &["涧西区"])],
    ),
];
const ROADS: &[&str] = &[
    "科技园路",
    "建国路",
    "人民路",
    "中山路",
    "解放大道",
    "世纪大道",
    "文三路",
    "长江路",
    "和平街",
    "南京东路",
    "高新南一道",
    "学院路",
    "天府大道",
    "长安街",
    "滨海大道",
    "花园路",
    "光明街",
    "新华路",
    "迎宾大道",
    "友谊路",
];
const BUILDINGS: &[&str] = &[
    "阳光小区",
    "翠苑",
    "金色家园",
    "国际大厦",
    "万科城",
    "幸福里",
    "锦绣花园",
    "华府",
    "时代广场",
    "绿地中心",
];
const EMAIL_NAMES: &[&str] = &[
    "zhang.wei",
    "li.na",
    "wangfang",
    "chen_jie",
    "liu.yang",
    "zhaolei",
    "sun.min",
    "kefu",
    "service",
    "huang.li",
    "xu.jing",
    "zhou-tao",
    "gao.peng",
    "lin.xiaoyu",
    "ma.chao",
    "hr",
    "finance",
    "tom.lee",
    "amy_wong",
    "david.chan",
];
const EMAIL_DOMAINS: &[&str] = &[
    "example.com",
    "example.cn",
    "qq.com",
    "163.com",
    "126.com",
    "crm.test",
    "mail.example.org",
    "foxmail.com",
    "corp.example.com.cn",
    "outlook.com",
];
const ENGLISH_FIRST: &[&str] = &[
    "John", "Mary", "David", "Linda", "Michael", "Sarah", "James", "Emily", "Robert", "Anna",
    "Kevin", "Grace", "Peter", "Helen", "Tony", "Wei", "Ming", "Jason", "Alice", "Eric",
];
const ENGLISH_LAST: &[&str] = &[
    "Smith",
    "Brown",
    "Wilson",
    "Taylor",
    "Zhang",
    "Wang",
    "Chan",
    "Wong",
    "Lee",
    "O'Brien",
    "Smith-Jones",
    "Liu",
    "Ho",
    "Cheung",
    "Johnson",
    "Lam",
    "Ng",
    "Tan",
    "Miller",
    "Davis",
];
const ENGLISH_ADDRESSES: &[&str] = &[
    "12 Nathan Road, Tsim Sha Tsui, Kowloon",
    "Flat 3B, 88 Queen's Road Central, Hong Kong",
    "Room 1203, 100 Century Avenue, Pudong, Shanghai",
    "Unit 5, 18 Harbour Road, Wan Chai",
    "221 Baker Street, London",
    "45 Jianguo Road, Chaoyang District, Beijing",
    "Suite 806, 1 Science Park Road, Shenzhen",
    "7 Orchard Lane, Apt 12, Singapore",
];

/// Generators of synthetic values of each kind (and of hard negatives).
pub struct Values<'r> {
    rng: &'r mut Rng,
}

/// Value generators drawing from `rng`.
pub fn values(rng: &mut Rng) -> Values<'_> {
    Values { rng }
}

impl Values<'_> {
    fn birth(&mut self) -> (u32, u32, u32) {
        let year = 1950 + self.rng.below(56) as u32;
        let month = 1 + self.rng.below(12) as u32;
        let day = 1 + self.rng.below(28) as u32;
        (year, month, day)
    }

    pub fn cn_id(&mut self) -> String {
        let (year, month, day) = self.birth();
        let first17 = format!(
            "{}{year:04}{month:02}{day:02}{}",
            self.rng.pick(REGIONS),
            self.rng.digits(3)
        );
        let check = cn_id::check_digit(&first17).unwrap_or('0');
        format!("{first17}{check}")
    }

    pub fn cn_id_bad_checksum(&mut self) -> String {
        let id = self.cn_id();
        let check = id.as_bytes()[17];
        let wrong = if check == b'X' {
            '0'
        } else {
            char::from(b'0' + (check - b'0' + 1 + self.rng.below(8) as u8) % 10)
        };
        format!("{}{wrong}", &id[..17])
    }

    pub fn cn_id_bad_date(&mut self) -> String {
        let year = 1960 + self.rng.below(40);
        let (month, day) = *self
            .rng
            .pick(&[(2, 30), (2, 31), (4, 31), (6, 31), (9, 31), (13, 1)]);
        let first17 = format!(
            "{}{year:04}{month:02}{day:02}{}",
            self.rng.pick(REGIONS),
            self.rng.digits(3)
        );
        let check = cn_id::check_digit(&first17).unwrap_or('0');
        format!("{first17}{check}")
    }

    pub fn cn_id_15(&mut self) -> String {
        let (year, month, day) = self.birth();
        let year = year.min(1999) % 100;
        format!(
            "{}{year:02}{month:02}{day:02}{}",
            self.rng.pick(REGIONS),
            self.rng.digits(3)
        )
    }

    pub fn mobile_digits(&mut self) -> String {
        format!("{}{}", self.rng.pick(MOBILE_PREFIXES), self.rng.digits(8))
    }

    /// A mobile number in one of the spellings people use.
    pub fn mobile(&mut self) -> String {
        let digits = self.mobile_digits();
        let (a, b, c) = (&digits[..3], &digits[3..7], &digits[7..]);
        match self.rng.below(10) {
            0 => format!("{a} {b} {c}"),
            1 => format!("{a}-{b}-{c}"),
            2 => format!("+86 {a} {b} {c}"),
            3 => format!("+86{digits}"),
            4 => format!("0086 {digits}"),
            5 => full_width(&digits),
            6 => format!("86-{digits}"),
            _ => digits,
        }
    }

    pub fn mobile_unallocated(&mut self) -> String {
        format!(
            "{}{}",
            self.rng.pick(UNALLOCATED_PREFIXES),
            self.rng.digits(8)
        )
    }

    pub fn landline(&mut self) -> String {
        let area = *self.rng.pick(AREA_CODES);
        let local_length = if area.len() == 3 || self.rng.chance(80) {
            8
        } else {
            7
        };
        let local = format!(
            "{}{}",
            2 + self.rng.below(7),
            self.rng.digits(local_length - 1)
        );
        match self.rng.below(5) {
            0 => format!("({area}) {} {}", &local[..4], &local[4..]),
            1 => format!("{area} {local}"),
            2 => format!("{area}{local}"),
            _ => format!("{area}-{local}"),
        }
    }

    fn card_digits(&mut self, valid: bool) -> String {
        let length = *self.rng.pick(&[16, 16, 16, 19, 19, 17, 18]);
        let prefix = *self.rng.pick(&[
            "622202", "621700", "622848", "625907", "436742", "524047", "622588", "623058",
        ]);
        let payload = format!("{prefix}{}", self.rng.digits(length - 1 - prefix.len()));
        let check = bank_card::luhn_check_digit(&payload).unwrap_or(0);
        let check = if valid {
            check
        } else {
            (check + 1 + self.rng.below(9) as u8) % 10
        };
        format!("{payload}{check}")
    }

    /// A valid card number of 16 or 19 digits, unspaced.
    pub fn card_16_or_19(&mut self) -> String {
        loop {
            let digits = self.card_digits(true);
            if matches!(digits.len(), 16 | 19) {
                return digits;
            }
        }
    }

    pub fn bank_card(&mut self, valid: bool) -> String {
        let digits = self.card_digits(valid);
        if self.rng.chance(30) {
            let groups: Vec<&str> = digits
                .as_bytes()
                .chunks(4)
                .map(|c| std::str::from_utf8(c).unwrap_or_default())
                .collect();
            groups.join(" ")
        } else {
            digits
        }
    }

    pub fn uscc(&mut self, valid: bool) -> String {
        const ORG: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
        let body: String = if self.rng.chance(50) {
            format!(
                "MA{}",
                (0..6)
                    .map(|_| char::from(ORG[self.rng.below(ORG.len())]))
                    .collect::<String>()
            )
        } else {
            self.rng.digits(8)
        };
        let org_check = uscc::organization_check_character(&body).unwrap_or('0');
        let first17 = format!(
            "{}{}{}{body}{org_check}",
            self.rng.pick(&["9", "9", "9", "1", "5"]),
            self.rng.pick(&["1", "2", "3"]),
            self.rng.pick(REGIONS)
        );
        let check = uscc::check_character(&first17).unwrap_or('0');
        let check = if valid {
            check
        } else {
            let index = ORG.iter().position(|&c| c == check as u8).unwrap_or(0);
            char::from(ORG[(index + 1 + self.rng.below(29)) % ORG.len()])
        };
        format!("{first17}{check}")
    }

    pub fn email(&mut self) -> String {
        let name = *self.rng.pick(EMAIL_NAMES);
        let number = if self.rng.chance(50) {
            self.rng.below(100).to_string()
        } else {
            String::new()
        };
        format!("{name}{number}@{}", self.rng.pick(EMAIL_DOMAINS))
    }

    pub fn hk_id(&mut self) -> String {
        let letter = char::from(b'A' + self.rng.below(26) as u8);
        let body = format!("{letter}{}", self.rng.digits(6));
        let check = hk_id::check_character(&body).unwrap_or('0');
        format!("{body}({check})")
    }

    pub fn passport(&mut self) -> String {
        match self.rng.below(3) {
            0 => format!("E{}", self.rng.digits(8)),
            1 => {
                let letter = *self
                    .rng
                    .pick(&["A", "B", "C", "D", "G", "H", "J", "K", "M", "N"]);
                format!("E{letter}{}", self.rng.digits(7))
            }
            _ => format!("G{}", self.rng.digits(8)),
        }
    }

    pub fn hk_macau_permit(&mut self) -> String {
        match self.rng.below(3) {
            0 => format!("H{}", self.rng.digits(10)),
            1 => format!("M{}", self.rng.digits(8)),
            _ => format!("C{}", self.rng.digits(8)),
        }
    }

    pub fn tw_permit(&mut self) -> String {
        self.rng.digits(8)
    }

    pub fn name(&mut self) -> String {
        let surname = *self.rng.pick(SURNAMES);
        let given_count = if self.rng.chance(40) { 1 } else { 2 };
        let mut name = surname.to_owned();
        for _ in 0..given_count {
            name.push_str(self.rng.pick::<&str>(GIVEN_CHARS));
        }
        name
    }

    pub fn english_name(&mut self) -> String {
        format!(
            "{} {}",
            self.rng.pick(ENGLISH_FIRST),
            self.rng.pick(ENGLISH_LAST)
        )
    }

    pub fn address(&mut self) -> String {
        let (province, cities) = *self.rng.pick(PROVINCES);
        let (city, districts) = *self.rng.pick(cities);
        let district = *self.rng.pick(districts);
        let road = *self.rng.pick(ROADS);
        let number = 1 + self.rng.below(300);
        let mut address = format!("{province}{city}{district}{road}{number}号");
        match self.rng.below(4) {
            0 => {
                let building = *self.rng.pick(BUILDINGS);
                address.push_str(&format!(
                    "{building}{}栋{}室",
                    1 + self.rng.below(20),
                    101 + self.rng.below(2000)
                ));
            }
            1 => address.push_str(&format!(
                "{}单元{}室",
                1 + self.rng.below(6),
                101 + self.rng.below(2000)
            )),
            _ => {}
        }
        address
    }

    pub fn english_address(&mut self) -> String {
        (*self.rng.pick(ENGLISH_ADDRESSES)).to_owned()
    }

    pub fn birth_date(&mut self) -> String {
        let (year, month, day) = self.birth();
        match self.rng.below(3) {
            0 => format!("{year}年{month}月{day}日"),
            1 => format!("{year}/{month:02}/{day:02}"),
            _ => format!("{year}-{month:02}-{day:02}"),
        }
    }

    // Hard negatives: text that looks numeric or dated but is no personal data.

    pub fn order_id(&mut self) -> String {
        // 19 digits: a date, then a valid-looking mobile number inside.
        match self.rng.below(3) {
            0 => format!(
                "2026{:02}{:02}{}",
                1 + self.rng.below(12),
                1 + self.rng.below(28),
                &self.mobile_digits()[..11]
            ),
            1 => format!(
                "{}{}",
                self.rng.pick(&["DD", "SO", "PO", "JD"]),
                self.rng.digits(14)
            ),
            _ => format!("{}{}", self.mobile_digits(), self.rng.digits(8)),
        }
    }

    pub fn tracking(&mut self) -> String {
        match self.rng.below(4) {
            0 => format!("SF{}", self.rng.digits(13)),
            1 => format!("YT{}", self.rng.digits(13)),
            2 => format!("75{}", self.rng.digits(12)),
            _ => format!("JDVA{}", self.rng.digits(11)),
        }
    }

    pub fn timestamp(&mut self) -> String {
        let (month, day) = (1 + self.rng.below(12), 1 + self.rng.below(28));
        let (hour, minute, second) = (self.rng.below(24), self.rng.below(60), self.rng.below(60));
        if self.rng.chance(50) {
            format!("2026{month:02}{day:02}{hour:02}{minute:02}{second:02}")
        } else {
            format!("2026-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}")
        }
    }

    pub fn amount(&mut self) -> String {
        let yuan = self.rng.below(200_000);
        let cents = self.rng.below(100);
        match self.rng.below(3) {
            0 => format!("¥{},{:03}.{cents:02}", yuan / 1000 + 1, yuan % 1000),
            1 => format!("{yuan}.{cents:02}元"),
            _ => format!("RMB {yuan}"),
        }
    }

    pub fn invoice(&mut self) -> String {
        match self.rng.below(3) {
            0 => self.rng.digits(8),
            1 => format!("0{}", self.rng.digits(11)),
            _ => format!("INV-2026-{}", self.rng.digits(5)),
        }
    }

    pub fn plain_date(&mut self) -> String {
        format!(
            "2026-{:02}-{:02}",
            1 + self.rng.below(12),
            1 + self.rng.below(28)
        )
    }

    pub fn masked(&mut self) -> String {
        match self.rng.below(3) {
            0 => format!("1{}****{}", self.rng.digits(2), self.rng.digits(4)),
            1 => format!("{}********{}", self.rng.pick(REGIONS), self.rng.digits(4)),
            _ => format!(
                "{}**********{}",
                &self.card_digits(true)[..6],
                self.rng.digits(4)
            ),
        }
    }
}

fn full_width(ascii: &str) -> String {
    ascii
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                char::from_u32(c as u32 + 0xFEE0).unwrap_or(c)
            } else {
                c
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Templates.

/// Notes as written by sales and service staff. `{slot}`s are filled by [`fill`].
pub const TEMPLATES: &[&str] = &[
    "回访记录：客户{name}对上次服务表示满意，手机{mobile}，下次回访定在{date}。",
    "客户{name}来电投诉快递延误，运单号{tracking}，联系电话{mobile}。",
    "投诉：订单号{order}未发货，客户{name}要求退款{amount}，退款至银行卡{card}。",
    "开票信息：公司名称某某贸易有限公司，税号{uscc}，开户行账号{card}，联系人{name}。",
    "快递地址：{address}，收件人{name}，电话{mobile}。",
    "收货地址：{address}，收货人{name}，手机{mobile}，请工作日送达。",
    "订单备注：{name}先生要求周末送货，地址{address}。",
    "会员登记：姓名{name}，身份证号{id}，出生日期{dob}，手机{mobile}。",
    "客户{name}办理开户，证件号码{id}，预留手机{mobile}，邮箱{email}。",
    "售后工单{invoice}：客户反映产品故障，联系人{name}，座机{landline}。",
    "公司座机{landline}，负责人{name}，邮箱{email}。",
    "客户{name}的身份证{id_bad}校验不通过，已通知重新提供。",
    "身份证号{id_bad_date}出生日期不存在，已退回。",
    "客户{name}说手机号是{mobile_bad}，号段未分配，需核实。",
    "客户提供银行卡{card_bad}，系统提示卡号有误，请核实。",
    "税号{uscc_bad}校验不通过，请客户重新提供开票信息。",
    "老客户资料中身份证仍为15位：{id15}，需升级为18位。",
    "港澳客户{name}持回乡证{permit}办理业务，香港身份证{hkid}。",
    "出境游报名：{name}，护照号{passport}，紧急联系人电话{mobile}。",
    "台胞证{tw}，联系人{name}，手机{mobile}。",
    "订单{order}已于{timestamp}发货，金额{amount}，发票号码{invoice}。",
    "流水号{timestamp}，交易金额{amount}，请财务核对。",
    "物流单号{tracking}，预计{date}送达，客户无需操作。",
    "客户手机{masked}已脱敏，无需处理。",
    "积分{small}，有效期至{date}，会员等级：金卡。",
    "请拨打客服热线400-{three}-{four}，工作日9:00-18:00。",
    "下单时间{timestamp}，订单号{order}，支付金额{amount}。",
    "用户{name}反馈App无法登录，注册邮箱{email}，手机{mobile}。",
    "家住{address}的{name}女士来电咨询积分兑换。",
    "{name}先生的生日是{dob}，届时发送祝福短信。",
    "投保人{name}，出生于{dob}，证件{id}，联系方式{mobile}。",
    "销售跟进：与对接人{name}确认合同，对方座机{landline}，邮箱{email}。",
    "客户要求下周三上午10点回电，地址已更新。",
    "本次活动共{small}人报名，预算{amount}，活动日期{date}。",
    "工单{invoice}已关闭，处理时长{small}分钟。",
    "收件人：{name}；地址：{address}；电话：{mobile}",
    "联系人:{name} 电话 {mobile} 邮箱 {email}",
    "客户{name}，手机{mobile}，身份证{id}",
    "持卡人{name}，卡号{card}，预留手机{mobile}。",
    "企业客户统一社会信用代码{uscc}，法人{name}，办公地址{address}。",
];

/// English notes.
pub const ENGLISH_TEMPLATES: &[&str] = &[
    "Call back Mr. {ename} on {mobile} about the refund of order {order}.",
    "Name: {ename}; Email: {email}; Phone: {mobile}",
    "Customer complained about late delivery, tracking {tracking}. Contact: {ename}, {email}.",
    "Invoice {invoice} sent to Ms. {ename}. Address: {eaddress}. Tel {landline}",
    "Address: {eaddress}; contact Mrs. {ename}, mobile {mobile}.",
    "Order {order} paid {amount} at {timestamp}; no follow-up needed.",
    "DOB: {dob_iso}. Passport {passport}. Name: {ename}",
    "Ticket closed on {date}; amount refunded {amount}.",
    "Dr. {ename} asked for a copy of invoice {invoice}, email {email}.",
];

/// Fills one template; unknown slots are kept literally.
pub fn fill(template: &str, rng: &mut Rng) -> Line {
    let mut builder = Builder::default();
    let mut rest = template;
    while !rest.is_empty() {
        let marker = match (rest.find('{'), rest.find("[[")) {
            (Some(brace), Some(square)) => Some(brace.min(square)),
            (brace, square) => brace.or(square),
        };
        let Some(open) = marker else {
            builder.literal(rest);
            break;
        };
        builder.literal(&rest[..open]);
        rest = &rest[open..];
        if let Some(body) = rest.strip_prefix("[[") {
            let Some(close) = body.find("]]") else {
                builder.literal(rest);
                break;
            };
            let (kind, value) = body[..close]
                .split_once(':')
                .unwrap_or(("", &body[..close]));
            let (kind, valid) = match kind.strip_suffix('!') {
                Some(kind) => (kind, false),
                None => (kind, true),
            };
            builder.labelled(kind_name(kind), valid, value);
            rest = &body[close + 2..];
            continue;
        }
        let Some(close) = rest.find('}') else {
            builder.literal(rest);
            break;
        };
        let slot = &rest[1..close];
        rest = &rest[close + 1..];
        let mut values = Values { rng: &mut *rng };
        match slot {
            "name" => {
                let v = values.name();
                builder.labelled("person_name", true, &v)
            }
            "ename" => {
                let v = values.english_name();
                builder.labelled("person_name", true, &v)
            }
            "mobile" => {
                let v = values.mobile();
                builder.labelled("cn_mobile", true, &v)
            }
            "mobile_bad" => {
                let v = values.mobile_unallocated();
                builder.labelled("cn_mobile", false, &v)
            }
            "landline" => {
                let v = values.landline();
                builder.labelled("cn_landline", true, &v)
            }
            "id" => {
                let v = values.cn_id();
                builder.labelled("cn_id", true, &v)
            }
            "id_bad" => {
                let v = values.cn_id_bad_checksum();
                builder.labelled("cn_id", false, &v)
            }
            "id_bad_date" => {
                let v = values.cn_id_bad_date();
                builder.labelled("cn_id", false, &v)
            }
            "id15" => {
                let v = values.cn_id_15();
                builder.labelled("cn_id", true, &v)
            }
            "card" => {
                let v = values.bank_card(true);
                builder.labelled("bank_card", true, &v)
            }
            "card_bad" => {
                let v = values.bank_card(false);
                builder.labelled("bank_card", false, &v)
            }
            "uscc" => {
                let v = values.uscc(true);
                builder.labelled("uscc", true, &v)
            }
            "uscc_bad" => {
                let v = values.uscc(false);
                builder.labelled("uscc", false, &v)
            }
            "email" => {
                let v = values.email();
                builder.labelled("email", true, &v)
            }
            "hkid" => {
                let v = values.hk_id();
                builder.labelled("hk_id", true, &v)
            }
            "passport" => {
                let v = values.passport();
                builder.labelled("cn_passport", true, &v)
            }
            "permit" => {
                let v = values.hk_macau_permit();
                builder.labelled("hk_macau_permit", true, &v)
            }
            "tw" => {
                let v = values.tw_permit();
                builder.labelled("tw_permit", true, &v)
            }
            "address" => {
                let v = values.address();
                builder.labelled("address", true, &v)
            }
            "eaddress" => {
                let v = values.english_address();
                builder.labelled("address", true, &v)
            }
            "dob" => {
                let v = values.birth_date();
                builder.labelled("birth_date", true, &v)
            }
            "dob_iso" => {
                let (y, m, d) = values.birth();
                builder.labelled("birth_date", true, &format!("{y}-{m:02}-{d:02}"))
            }
            "order" => builder.literal(&values.order_id()),
            "tracking" => builder.literal(&values.tracking()),
            "timestamp" => builder.literal(&values.timestamp()),
            "amount" => builder.literal(&values.amount()),
            "invoice" => builder.literal(&values.invoice()),
            "date" => builder.literal(&values.plain_date()),
            "masked" => builder.literal(&values.masked()),
            "small" => builder.literal(&values.rng.below(50_000).to_string()),
            "three" => builder.literal(&values.rng.digits(3)),
            "four" => builder.literal(&values.rng.digits(4)),
            other => builder.literal(&format!("{{{other}}}")),
        }
    }
    builder.finish()
}

/// The label name of a kind written in a hand-written line (`hkmo_permit` is accepted).
fn kind_name(kind: &str) -> &'static str {
    const KINDS: &[&str] = &[
        "cn_id",
        "cn_mobile",
        "cn_landline",
        "email",
        "bank_card",
        "uscc",
        "cn_passport",
        "hk_macau_permit",
        "tw_permit",
        "hk_id",
        "person_name",
        "address",
        "birth_date",
    ];
    if kind == "hkmo_permit" {
        return "hk_macau_permit";
    }
    KINDS
        .iter()
        .find(|k| **k == kind)
        .copied()
        .unwrap_or("unknown")
}

/// `count` generated lines: Chinese templates, English ones (one in eight) in a fixed order.
pub fn generate(seed: u64, count: usize) -> Vec<Line> {
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|index| {
            let template = if index % 8 == 7 {
                ENGLISH_TEMPLATES[(index / 8) % ENGLISH_TEMPLATES.len()]
            } else {
                TEMPLATES[index % TEMPLATES.len()]
            };
            fill(template, &mut rng)
        })
        .collect()
}

/// Lines of a hand-written fixture (`[[kind:value]]` markup and `{slot}`s; `#` comments).
pub fn hand_written(source: &str, seed: u64) -> Vec<Line> {
    let mut rng = Rng::new(seed);
    source
        .lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .map(|line| fill(line, &mut rng))
        .collect()
}

/// Ordinary notes without personal data, for a realistic density in the benchmark corpus.
pub const FILLER: &[&str] = &[
    "客户对产品质量比较满意，希望下次活动能提前通知。",
    "已向客户解释退换货政策，客户表示理解，暂不需要进一步处理。",
    "客户咨询会员积分规则，已发送积分说明链接。",
    "本周回访完成率百分之九十二，剩余客户安排在下周一继续回访。",
    "客户反映包装破损，已拍照留存，等待仓库确认后补发。",
    "产品经理确认该问题将在下个版本修复，已同步给客户。",
    "客户希望延长保修期，按公司政策不能延长，已婉拒。",
    "本次投诉已升级至主管处理，预计三个工作日内答复。",
    "客户询问发票开具进度，财务表示本月底前统一寄出。",
    "促销活动期间订单量较大，发货可能延迟一到两天。",
];

/// A notes text of at least `bytes` bytes: labelled lines mixed with filler, one note a line.
pub fn notes_text(bytes: usize, seed: u64) -> String {
    let mut rng = Rng::new(seed);
    let mut text = String::with_capacity(bytes + 1024);
    let mut index = 0;
    while text.len() < bytes {
        if rng.chance(60) {
            text.push_str(rng.pick::<&str>(FILLER));
        } else {
            let template = if index % 8 == 7 {
                ENGLISH_TEMPLATES[(index / 8) % ENGLISH_TEMPLATES.len()]
            } else {
                TEMPLATES[index % TEMPLATES.len()]
            };
            index += 1;
            text.push_str(&fill(template, &mut rng).text);
        }
        text.push('\n');
    }
    text
}
