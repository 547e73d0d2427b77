#!/usr/bin/env python3
"""Veil side by side with the anchors: Microsoft Presidio (scan + mask) and Python `ff3` (FPE).

Runs, in one go and on the same inputs:

1. Veil's `pii-compare` binary (crates/veil-bench/src/bin/pii-compare.rs): scan + mask throughput over two
   >= 10 MB texts, strict precision/recall per kind on the labelled corpus, FF1 encryptions/s. It also writes the
   two throughput texts, so Presidio reads exactly the same bytes:
   - `notes`: the criterion bench's corpus (crates/veil-pii/tests/support/generator.rs, seed 0xBE4C4): 40 % of
     the lines are notes with personal data, 60 % ordinary notes;
   - `labelled`: the labelled corpus's 1,311 texts repeated until >= 10 MB (every line has personal data).
2. Presidio (presidio-analyzer + presidio-anonymizer) with Presidio's own `NoOpNlpEngine` (no spaCy model is
   loaded or downloaded; a minimal subclass is defined here if the installed Presidio lacks it) and one
   `PatternRecognizer` per kind Veil finds by pattern (cn_id, cn_mobile, cn_landline, email, bank_card, uscc,
   cn_passport, hk_macau_permit, tw_permit, hk_id): regexes with digit/letter-boundary look-arounds, and
   `validate_result` hooks doing the same checks Veil's validators do (ISO 7064 check digit + region + real date,
   allocated mobile segments, area-code/length rules, Luhn, GB 32100, HK ID check digit, e-mail dot rules).
   Masking: `AnonymizerEngine` with the built-in `mask` operator (whole value to `*`). Throughput is measured one
   note per call (as Veil masks a note on write) over the whole text by default, or over the first
   >= `--presidio-bytes` of it (the ratio is per byte). Precision/recall on the labelled corpus with the same
   strict matching (Python string indices are code points, i.e. Veil's Unicode-scalar offsets). Overlapping
   results of different kinds are resolved the way Presidio's anonymizer keeps one before scoring: higher score,
   then longer, then a fixed priority (most specific kind first).
3. Python `ff3` (FF3-1, AES-256 key, 56-bit tweak) on 11-digit strings, against Veil's FF1.

Two scorings: `valid` (headline: only labelled values that pass their check are positives; invalid look-alikes are
hard negatives; Veil's predictions are its spans marked valid, Presidio's are its validated results) and `all`
(Veil's own corpus scoring: look-alikes are positives too; Veil's predictions are all its spans, Presidio runs
without the validation hooks).

It is a benchmark, not a test: it always exits 0. Run from the workspace root:

    python3 bench/presidio_compare.py

Options: --veil-bin PATH (skip cargo), --presidio-bytes N (0 = all), --presidio-rounds N, --rounds N,
--ff1-values N, --ff3-values N, --json-out FILE. Takes about 2 minutes on a 2-core machine once built.
"""

import argparse
import datetime
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
import traceback
import unicodedata
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TODAY = datetime.date(2026, 11, 29)  # as in crates/veil-pii/tests/corpus.rs
COMPARED = [
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
]
ALIASES = {"hkmo_permit": "hk_macau_permit"}
# Most specific first: the tie-break when two validated results of different kinds cover the same characters.
PRIORITY = {kind: rank for rank, kind in enumerate(
    ["cn_id", "uscc", "email", "cn_mobile", "cn_landline", "bank_card",
     "cn_passport", "hk_macau_permit", "hk_id", "tw_permit"])}


# --------------------------------------------------------------------------------------------------------------
# Presidio recognizers
# --------------------------------------------------------------------------------------------------------------

D = "[0-9０-９]"  # an ASCII or full-width digit
ALNUM = "0-9０-９A-Za-zＡ-Ｚａ-ｚ"
# Not inside a longer run of letters/digits, and not the continuation of a grouped number ("6222 0000 ...").
NB = f"(?<![{ALNUM}])(?<![0-9０-９][ \\-])"
NA = f"(?![{ALNUM}])"
SEP = "[ \\-]"

PATTERNS = {
    # 18 digits (optionally 6-8-4 grouped) with a plausible date; 15-digit legacy numbers.
    "cn_id": [
        f"{NB}{D}{{6}}{SEP}?(?:18|19|20){D}{{2}}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]{D}|3[01]){SEP}?{D}{{3}}"
        f"[0-9０-９XxＸｘ]{NA}",
        f"{NB}{D}{{6}}{D}{{2}}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]{D}|3[01]){D}{{3}}{NA}",
    ],
    # Optional +86 / 0086 / (+86) / 86- prefix, then 1[3-9]x and 8 digits, plain or grouped 3-4-4.
    "cn_mobile": [
        f"(?<![{ALNUM}+＋])(?:(?:[+＋]86|0086|\\([+＋]?86\\))[ \\-]?|86[ \\-]|(?<![0-9０-９][ \\-]))"
        f"[1１][3-9３-９]{D}(?:{D}{{8}}|-{D}{{4}}-{D}{{4}}| {D}{{4}} {D}{{4}}|\\.{D}{{4}}\\.{D}{{4}}){NA}",
    ],
    # Area code (0 + 2 or 3 digits, optionally in parentheses) and a 7-8 digit local number, optionally split.
    "cn_landline": [
        f"{NB}(?:[(（]0{D}{{2,3}}[)）] ?|0{D}{{2,3}}[ \\-]?){D}{{3,4}}[ \\-]?{D}{{3,4}}{NA}",
    ],
    "email": [
        "(?<![A-Za-z0-9._%+\\-@])[A-Za-z0-9._%+\\-]+@[A-Za-z0-9\\-]+(?:\\.[A-Za-z0-9\\-]+)*\\.[A-Za-z]{2,}"
        "(?![A-Za-z0-9\\-@])",
    ],
    # 16-19 digits, plain or in groups of 4.
    "bank_card": [
        f"{NB}{D}{{4}}(?:{SEP}?{D}{{4}}){{3}}(?:{SEP}?{D}{{1,3}})?{NA}",
    ],
    # GB 32100: authority + category, 6-digit division code, 9-character organisation code, check character.
    "uscc": [
        f"{NB}[1-9ANY][1-9]{D}{{6}}[0-9A-HJ-NPQRTUWXY]{{9}}[0-9A-HJ-NPQRTUWXY]{NA}",
    ],
    # G/E + 8 digits, E + letter (not I/O) + 7 digits, D/S/P (+E) + 7-8 digits, K + 8, MA + 7.
    "cn_passport": [
        f"{NB}(?:[GE]{D}{{8}}|E[A-HJ-NP-Z]{D}{{7}}|[DSP]E?{D}{{7,8}}|K{D}{{8}}|MA{D}{{7}}){NA}",
    ],
    # 回乡证 H/M + 8 (+2) digits; 往来港澳通行证 C + 8 characters, W + 8 digits.
    "hk_macau_permit": [
        f"{NB}(?:[HM]{D}{{8}}(?:{D}{{2}})?|C(?:{D}{{8}}|[A-HJ-NP-Z]{D}{{7}})|W{D}{{8}}){NA}",
    ],
    # 8 or 10 digits: too plain to find without a context word, so the word is in the pattern (Presidio's own
    # context mechanism needs NLP tokens, which the no-op engine does not produce).
    "tw_permit": [
        f"(?<=(?:台胞证|台湾居民来往大陆通行证)(?:号码|号)?[:： ]?){D}{{8}}(?:{D}{{2}})?(?:\\([A-Z]\\))?{NA}",
    ],
    # One or two letters, six digits, check character, usually in parentheses.
    "hk_id": [
        f"(?<![{ALNUM}])[A-Z]{{1,2}}{D}{{6}}(?:\\([0-9A]\\)|（[0-9A]）|[0-9A]){NA}",
    ],
}


def fold(text):
    """Full-width to ASCII (NFKC), upper case."""
    return unicodedata.normalize("NFKC", text).upper()


def digits_of(text):
    return "".join(c for c in fold(text) if c.isdigit())


PROVINCES = {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52, 53,
             54, 61, 62, 63, 64, 65, 71, 81, 82, 83}
ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]


def real_date(year, month, day):
    try:
        date = datetime.date(year, month, day)
    except ValueError:
        return False
    return datetime.date(1900, 1, 1) <= date <= TODAY


def valid_cn_id(text):
    value = "".join(c for c in fold(text) if c.isalnum())
    if len(value) == 15 and value.isdigit():
        return int(value[:2]) in PROVINCES and real_date(1900 + int(value[6:8]), int(value[8:10]), int(value[10:12]))
    if len(value) != 18 or not value[:17].isdigit():
        return False
    if int(value[:2]) not in PROVINCES:
        return False
    if not real_date(int(value[6:10]), int(value[10:12]), int(value[12:14])):
        return False
    check = "10X98765432"[sum(int(c) * w for c, w in zip(value[:17], ID_WEIGHTS)) % 11]
    return value[17] == check


def mobile_segment_allocated(first3):
    second, third = first3[1], first3[2]
    if second in "38":
        return True
    if second == "4":
        return third in "56789"
    if second == "5":
        return third != "4"
    if second == "6":
        return third in "2567"
    if second == "7":
        return third != "9"
    if second == "9":
        return third != "4"
    return False


def valid_cn_mobile(text):
    digits = digits_of(text)
    if len(digits) == 15 and digits.startswith("0086"):
        digits = digits[4:]
    elif len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    return len(digits) == 11 and digits[0] == "1" and mobile_segment_allocated(digits[:3])


def valid_cn_landline(text):
    digits = digits_of(text)
    if len(digits) < 10 or digits[0] != "0":
        return False
    if digits[1] == "1":
        area = 3 if digits[2] == "0" else 0
    elif digits[1] == "2":
        area = 3
    elif digits[1] in "3456789":
        area = 4
    else:
        area = 0
    if area == 0:
        return False
    local = digits[area:]
    if local[0] in "01":
        return False
    # The grouping must not cut the area code: "(0755) ..." / "0755-..." have their separator after it.
    folded = fold(text)
    head = "".join(c for c in folded.split(")")[0] if c.isdigit()) if ")" in folded else None
    if head is not None and len(head) != area:
        return False
    return len(local) == 8 if area == 3 else len(local) in (7, 8)


def valid_email(text):
    local, _, domain = text.partition("@")
    if not local or local.startswith(".") or local.endswith(".") or ".." in local or len(local) > 64:
        return False
    labels = domain.split(".")
    return all(label and not label.startswith("-") and not label.endswith("-") for label in labels)


def luhn(digits):
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def valid_bank_card(text):
    digits = digits_of(text)
    return 16 <= len(digits) <= 19 and luhn(digits)


USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]


def valid_uscc(text):
    value = fold(text)
    if len(value) != 18 or any(c not in USCC_ALPHABET for c in value):
        return False
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(value[:17], USCC_WEIGHTS))
    return value[17] == USCC_ALPHABET[(31 - total % 31) % 31]


def valid_hk_id(text):
    value = "".join(c for c in fold(text) if c.isalnum())
    letters = value[:2] if value[1].isalpha() else value[:1]
    digits, check = value[len(letters):-1], value[-1]
    if len(digits) != 6 or not digits.isdigit():
        return False
    values = ([36] if len(letters) == 1 else []) + [ord(c) - 55 for c in letters] + [int(c) for c in digits]
    total = sum(v * w for v, w in zip(values, range(9, 1, -1)))
    expected = (11 - total % 11) % 11
    return check == ("A" if expected == 10 else str(expected))


VALIDATORS = {
    "cn_id": valid_cn_id,
    "cn_mobile": valid_cn_mobile,
    "cn_landline": valid_cn_landline,
    "email": valid_email,
    "bank_card": valid_bank_card,
    "uscc": valid_uscc,
    "hk_id": valid_hk_id,
    # cn_passport, hk_macau_permit, tw_permit have no check digit: the pattern is all there is (as in Veil).
}


def build_presidio(validate, language="zh"):
    """An AnalyzerEngine (no-op NLP engine, regex recognizers) and an AnonymizerEngine."""
    import regex
    from presidio_analyzer import AnalyzerEngine, Pattern, PatternRecognizer, RecognizerRegistry
    from presidio_anonymizer import AnonymizerEngine

    try:
        from presidio_analyzer.nlp_engine import NoOpNlpEngine

        nlp_engine = NoOpNlpEngine(models=[{"lang_code": language, "model_name": "none"}])
    except ImportError:  # older Presidio: a minimal no-op engine
        from presidio_analyzer.nlp_engine import NlpArtifacts, NlpEngine

        class NoOpNlpEngine(NlpEngine):
            def __init__(self):
                self.loaded = False

            def load(self):
                self.loaded = True

            def is_loaded(self):
                return self.loaded

            def process_text(self, text, language):
                return NlpArtifacts(entities=[], tokens=[], tokens_indices=[], lemmas=[], nlp_engine=self,
                                    language=language)

            def process_batch(self, texts, language, **kwargs):
                for text in texts:
                    yield text, self.process_text(text, language)

            def is_stopword(self, word, language):
                return False

            def is_punct(self, word, language):
                return False

            def get_supported_entities(self):
                return []

            def get_supported_languages(self):
                return [language]

        nlp_engine = NoOpNlpEngine()

    class Recognizer(PatternRecognizer):
        def __init__(self, kind, check):
            patterns = [Pattern(name=f"{kind}_{i}", regex=p, score=0.5) for i, p in enumerate(PATTERNS[kind])]
            super().__init__(
                supported_entity=kind,
                name=f"veil_compare_{kind}",
                supported_language=language,
                patterns=patterns,
                # Case matters for the letter prefixes (E, G, H, M, C...); e-mail's class lists both cases.
                global_regex_flags=regex.DOTALL | regex.MULTILINE,
            )
            self.check = check

        def validate_result(self, pattern_text):
            return self.check(pattern_text) if self.check else None

    recognizers = [Recognizer(kind, VALIDATORS.get(kind) if validate else None) for kind in COMPARED]
    registry = RecognizerRegistry(recognizers=recognizers, supported_languages=[language])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        analyzer = AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=[language])
    return analyzer, AnonymizerEngine()


def mask_operators():
    from presidio_anonymizer.entities import OperatorConfig

    return {"DEFAULT": OperatorConfig("mask", {"masking_char": "*", "chars_to_mask": 100, "from_end": False})}


def resolve(results):
    """Cross-kind overlaps resolved as Presidio's anonymizer would keep one: score, length, then priority."""
    ordered = sorted(results, key=lambda r: (-r.score, -(r.end - r.start), PRIORITY.get(r.entity_type, 99)))
    kept = []
    for result in ordered:
        if all(result.end <= k.start or k.end <= result.start for k in kept):
            kept.append(result)
    return kept


# --------------------------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------------------------

def load_corpus(path):
    lines = []
    with open(path, encoding="utf-8") as source:
        for raw in source:
            if not raw.strip():
                continue
            value = json.loads(raw)
            if value.get("kind", "free_text") != "free_text":
                continue
            spans = [(ALIASES.get(s["kind"], s["kind"]), s["start"], s["end"], s.get("valid", True))
                     for s in value.get("spans", [])]
            lines.append((value["text"], spans))
    return lines


def score_presidio(analyzer, lines, valid_only, language="zh"):
    counts = {kind: {"labelled": 0, "found": 0, "matched": 0} for kind in COMPARED}
    misses, false_positives = [], []
    for text, spans in lines:
        truth = {(k, s, e) for k, s, e, valid in spans if k in counts and (valid or not valid_only)}
        found = {(r.entity_type, r.start, r.end) for r in resolve(analyzer.analyze(text=text, language=language))}
        for item in truth:
            counts[item[0]]["labelled"] += 1
            if item in found:
                counts[item[0]]["matched"] += 1
            else:
                misses.append(f"{item[0]} {text[item[1]:item[2]]!r} in {text!r}")
        for item in found:
            counts[item[0]]["found"] += 1
            if item not in truth:
                false_positives.append(f"{item[0]} {text[item[1]:item[2]]!r} in {text!r}")
    total = {"labelled": 0, "found": 0, "matched": 0}
    for c in counts.values():
        for key in total:
            total[key] += c[key]
    counts["all"] = total
    for c in counts.values():
        c["precision"] = c["matched"] / c["found"] if c["found"] else None
        c["recall"] = c["matched"] / c["labelled"] if c["labelled"] else None
    return counts, misses, false_positives


# --------------------------------------------------------------------------------------------------------------
# Throughput
# --------------------------------------------------------------------------------------------------------------

def sample(path, min_bytes):
    """The first whole lines of `path` adding up to at least `min_bytes` bytes (all of it if min_bytes <= 0)."""
    lines, size = [], 0
    with open(path, encoding="utf-8") as source:
        for line in source:
            lines.append(line.rstrip("\n"))
            size += len(line.encode("utf-8"))
            if 0 < min_bytes <= size:
                break
    return lines, size


def presidio_throughput(analyzer, anonymizer, lines, size, rounds, language="zh"):
    operators = mask_operators()

    def one_pass():
        total = 0
        for line in lines:
            results = analyzer.analyze(text=line, language=language)
            total += len(anonymizer.anonymize(text=line, analyzer_results=results, operators=operators).text)
        return total

    one_pass_lines = lines[: max(1, len(lines) // 20)]  # warm-up on 5 %
    for line in one_pass_lines:
        anonymizer.anonymize(text=line, analyzer_results=analyzer.analyze(text=line, language=language),
                             operators=operators)
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        one_pass()
        times.append(time.perf_counter() - started)
    best = min(times)
    return {"bytes": size, "lines": len(lines), "rounds": rounds, "best_seconds": best,
            "mb_per_s": size / best / 1e6, "mib_per_s": size / best / 1048576}


# --------------------------------------------------------------------------------------------------------------
# FF3-1
# --------------------------------------------------------------------------------------------------------------

def ff3_rate(count):
    from ff3 import FF3Cipher

    key = bytes(range(32)).hex()  # AES-256, like Veil's FF1 key
    tweak = "d8e7920afa330a"  # 56 bits: FF3-1
    cipher = FF3Cipher(key, tweak, radix=10)
    rng = random.Random(0xFF3)
    values = [f"{rng.randrange(10 ** 11):011d}" for _ in range(count)]
    for value in values[:100]:
        assert cipher.decrypt(cipher.encrypt(value)) == value, "ff3 round trip failed"
    started = time.perf_counter()
    for value in values:
        cipher.encrypt(value)
    seconds = time.perf_counter() - started
    return {"algorithm": "FF3-1-AES-256 (ff3 package), radix 10", "digits": 11, "values": count,
            "seconds": seconds, "ops_per_s": count / seconds}


# --------------------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------------------

def fmt(value, digits=3):
    return "—" if value is None else f"{value:.{digits}f}"


def pr_table(title, veil, presidio):
    rows = [f"\n{title}",
            f"| kind | labelled | Veil found | Veil P | Veil R | Presidio found | Presidio P | Presidio R | P/R ≥ |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | :---: |"]
    verdicts = []
    for kind in COMPARED + ["all"]:
        v, p = veil[kind], presidio[kind]
        if v["labelled"] == 0 and v["found"] == 0 and p["found"] == 0:
            continue
        vp, vr = v["precision"] or 0.0, v["recall"] or 0.0
        pp, pr = p["precision"] or 0.0, p["recall"] or 0.0
        if v["found"] == 0 and v["labelled"] == 0:
            vp = vr = 1.0
        if p["found"] == 0 and p["labelled"] == 0:
            pp = pr = 1.0
        ok = vp + 1e-9 >= pp and vr + 1e-9 >= pr
        verdicts.append(ok)
        rows.append(f"| {kind} | {v['labelled']} | {v['found']} | {fmt(v['precision'])} | {fmt(v['recall'])} | "
                    f"{p['found']} | {fmt(p['precision'])} | {fmt(p['recall'])} | {'yes' if ok else 'NO'} |")
    return "\n".join(rows), all(verdicts)


def run_veil(args, texts_dir):
    corpora = sum((["--corpus", c] for c in args.corpus), [])
    tail = ["--write-texts", texts_dir, "--rounds", str(args.rounds), "--ff1-values", str(args.ff1_values)] + corpora
    if args.veil_bin:
        command = [args.veil_bin] + tail
    else:
        command = ["cargo", "run", "--release", "-q", "-p", "veil-bench", "--bin", "pii-compare", "--"] + tail
    print("$ " + " ".join(command), file=sys.stderr)
    out = subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--veil-bin", help="path of a built pii-compare (default: cargo run --release)")
    parser.add_argument("--corpus", action="append",
                        help="labelled JSONL (repeatable); default crates/veil-pii/tests/fixtures/pii-corpus.jsonl "
                             "and, if present, ../shared/testdata/pii-vectors-dev.jsonl")
    parser.add_argument("--presidio-bytes", type=int, default=0,
                        help="Presidio's throughput sample per text, in bytes (0 = the whole >= 10 MB text)")
    parser.add_argument("--rounds", type=int, default=3, help="Veil's timed passes (the best is reported)")
    parser.add_argument("--presidio-rounds", type=int, default=1,
                        help="Presidio's timed passes over each text (one pass of 10 MB takes ~20 s)")
    parser.add_argument("--ff1-values", type=int, default=1_000_000)
    parser.add_argument("--ff3-values", type=int, default=20_000)
    parser.add_argument("--json-out", help="also write every figure as JSON here")
    args = parser.parse_args()
    if not args.corpus:
        args.corpus = [os.path.join(ROOT, "crates/veil-pii/tests/fixtures/pii-corpus.jsonl")]
        shared = os.path.join(ROOT, "../shared/testdata/pii-vectors-dev.jsonl")
        if os.path.exists(shared):
            args.corpus.append(os.path.normpath(shared))

    started = time.perf_counter()
    report = {"date": datetime.date.today().isoformat(), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
              "python": platform.python_version()}
    try:
        from importlib.metadata import version

        report["versions"] = {p: version(p) for p in ("presidio-analyzer", "presidio-anonymizer", "ff3", "regex")}
    except Exception:  # noqa: BLE001 - informational only
        pass
    goals = {}
    try:
        with tempfile.TemporaryDirectory(prefix="veil-pii-compare-") as texts_dir:
            veil = run_veil(args, texts_dir)
            print(f"(Veil side done after {time.perf_counter() - started:.0f} s, cargo build included)")
            report["veil"] = veil
            analyzer, anonymizer = build_presidio(validate=True)
            analyzer_all, _ = build_presidio(validate=False)

            # --- throughput
            print("\n## Scan + mask throughput (one note per call, one core)")
            print("| text | bytes (Veil) | Veil MB/s | Presidio sample bytes | Presidio MB/s | ratio | ≥ 50× |")
            print("| --- | ---: | ---: | ---: | ---: | ---: | :---: |")
            report["presidio_throughput"] = {}
            ratios = []
            for name in ("notes", "labelled"):
                lines, size = sample(os.path.join(texts_dir, f"{name}.txt"), args.presidio_bytes)
                presidio = presidio_throughput(analyzer, anonymizer, lines, size, args.presidio_rounds)
                report["presidio_throughput"][name] = presidio
                v = veil["throughput"][name]
                veil_rate = v["scan_mask_by_line"]["mb_per_s"]
                ratio = veil_rate / presidio["mb_per_s"]
                ratios.append(ratio)
                print(f"| {name} | {v['bytes']:,} | {veil_rate:.1f} | {size:,} | {presidio['mb_per_s']:.3f} | "
                      f"{ratio:.0f}× | {'yes' if ratio >= 50 else 'NO'} |")
                for variant in ("mask_text_by_line", "scan_mask_whole", "scan_only_by_line"):
                    r = v[variant]["mb_per_s"]
                    print(f"|   Veil {variant} | | {r:.1f} | | | {r / presidio['mb_per_s']:.0f}× | |")
            goals["throughput ≥ 50× Presidio"] = min(ratios) >= 50

            # --- precision / recall
            pr_ok = True
            report["presidio_precision_recall"] = []
            for index, path in enumerate(args.corpus):
                lines = load_corpus(path)
                veil_pr = veil["precision_recall"][index]
                entry = {"corpus": path, "lines": len(lines)}
                for mode, engine in (("valid", analyzer), ("all", analyzer_all)):
                    counts, misses, false_positives = score_presidio(engine, lines, mode == "valid")
                    entry[mode] = counts
                    entry[f"{mode}_misses"] = misses
                    entry[f"{mode}_false_positives"] = false_positives
                    table, ok = pr_table(
                        f"## Precision / recall, strict, scoring `{mode}`: {os.path.relpath(path, ROOT)} "
                        f"({len(lines)} lines)", veil_pr[mode], counts)
                    print(table)
                    for line in misses[:8]:
                        print(f"  Presidio missed: {line}")
                    for line in false_positives[:8]:
                        print(f"  Presidio false positive: {line}")
                    if mode == "valid":
                        pr_ok = pr_ok and ok
                report["presidio_precision_recall"].append(entry)
            goals["P/R equal or better (valid scoring, every kind)"] = pr_ok

            # --- FPE
            ff3 = ff3_rate(args.ff3_values)
            report["ff3"] = ff3
            ff1 = veil["ff1"]
            ratio = ff1["string_ops_per_s"] / ff3["ops_per_s"]
            print("\n## Format-preserving encryption, 11-digit strings, one key, constant tweak")
            print("| engine | values | ops/s |")
            print("| --- | ---: | ---: |")
            print(f"| Veil FF1 (Ff1Cipher, string in/out) | {ff1['values']:,} | {ff1['string_ops_per_s']:,.0f} |")
            print(f"| Veil FF1 (Ff1Cipher, numerals) | {ff1['values']:,} | {ff1['numerals_ops_per_s']:,.0f} |")
            print(f"| Python ff3 (FF3-1) | {ff3['values']:,} | {ff3['ops_per_s']:,.0f} |")
            print(f"ratio (string in/out): {ratio:.0f}×")
            goals["FPE ≥ 20× ff3"] = ratio >= 20
            report["goals"] = goals

            print("\n## Goals")
            for goal, met in goals.items():
                print(f"- {goal}: {'met' if met else 'NOT met'}")
    except Exception:  # noqa: BLE001 - a benchmark reports and exits 0
        traceback.print_exc()
        print("benchmark did not complete (see the error above)")
    print(f"\n(total {time.perf_counter() - started:.0f} s)")
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as out:
            json.dump(report, out, ensure_ascii=False, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
