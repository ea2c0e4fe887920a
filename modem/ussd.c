/* ussd: +CUSD parsing, the GSM 7-bit / UCS2 / 8-bit decoders (3GPP 23.038) and the balance
 * amount finder. Pure functions: no allocation, bounded output, NUL-terminated UTF-8.
 *
 * Heuristic for hex-looking text under a GSM-7 dcs (dcs 15 and friends): depending on CSCS the
 * modem hands out either readable text, UCS2 hex (CSCS="UCS2") or the raw packed septets as hex
 * (seen on MikroTik/Qualcomm firmware). A string is re-interpreted only when it is all hex
 * digits, and then:
 *   1. as UCS2 if its length is a multiple of 4 (>= 8) and every code unit decodes to a
 *      printable character (valid surrogate pairs, no controls other than CR/LF); a string of
 *      decimal digits only is taken as UCS2 only when every unit is 00xx..04xx (Latin/Cyrillic),
 *      so that a numeric answer ("12345678") stays a number;
 *   2. else as packed GSM-7 if its length is even (>= 4), it is not all decimal digits, and
 *      the septets are printable with at least 60% letters, digits or spaces;
 *   3. else the text is kept as it is. */
#include "modem/parse.h"
#include "common/common.h"

#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* ---- UTF-8 output ------------------------------------------------------------------------ */

struct u8out {
    char *p;
    size_t n, len;
    bool full;
};

static void u8_init(struct u8out *o, char *p, size_t n)
{
    o->p = p;
    o->n = n;
    o->len = 0;
    o->full = n == 0;
    if (n)
        p[0] = '\0';
}

/* Append one code point; once a character does not fit, nothing more is appended (the output
 * is truncated at a character boundary). */
static void u8_put(struct u8out *o, uint32_t cp)
{
    char b[4];
    size_t m;
    if (o->full)
        return;
    if (cp < 0x80) {
        b[0] = (char)cp;
        m = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xC0 | (cp >> 6));
        b[1] = (char)(0x80 | (cp & 0x3F));
        m = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | (cp >> 12));
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        m = 3;
    } else {
        b[0] = (char)(0xF0 | (cp >> 18));
        b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (char)(0x80 | (cp & 0x3F));
        m = 4;
    }
    if (o->len + m >= o->n) {
        o->full = true;
        return;
    }
    memcpy(o->p + o->len, b, m);
    o->len += m;
    o->p[o->len] = '\0';
}

/* Length of a valid UTF-8 sequence at s (max bytes available), 0 if invalid. */
static size_t u8_valid(const unsigned char *s, size_t max)
{
    if (max == 0)
        return 0;
    if (s[0] < 0x80)
        return 1;
    size_t m;
    uint32_t cp;
    if ((s[0] & 0xE0) == 0xC0) {
        m = 2;
        cp = s[0] & 0x1F;
    } else if ((s[0] & 0xF0) == 0xE0) {
        m = 3;
        cp = s[0] & 0x0F;
    } else if ((s[0] & 0xF8) == 0xF0) {
        m = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (m > max)
        return 0;
    for (size_t i = 1; i < m; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((m == 2 && cp < 0x80) || (m == 3 && cp < 0x800) || (m == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return m;
}

/* Copy text that should already be UTF-8; stray bytes are taken as Latin-1. */
static int copy_text(const char *s, size_t len, char *out, size_t n)
{
    struct u8out o;
    u8_init(&o, out, n);
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < len && !o.full;) {
        size_t m = u8_valid(u + i, len - i);
        if (m == 0) {
            u8_put(&o, u[i]);
            i++;
            continue;
        }
        if (o.len + m >= o.n) {
            o.full = true;
            break;
        }
        memcpy(o.p + o.len, u + i, m);
        o.len += m;
        o.p[o.len] = '\0';
        i += m;
    }
    return (int)o.len;
}

/* ---- GSM 7-bit --------------------------------------------------------------------------- */

static const uint16_t gsm7_default[128] = {
    0x0040, 0x00A3, 0x0024, 0x00A5, 0x00E8, 0x00E9, 0x00F9, 0x00EC, 0x00F2, 0x00C7, 0x000A, 0x00D8,
    0x00F8, 0x000D, 0x00C5, 0x00E5, 0x0394, 0x005F, 0x03A6, 0x0393, 0x039B, 0x03A9, 0x03A0, 0x03A8,
    0x03A3, 0x0398, 0x039E, 0x00A0, 0x00C6, 0x00E6, 0x00DF, 0x00C9, 0x0020, 0x0021, 0x0022, 0x0023,
    0x00A4, 0x0025, 0x0026, 0x0027, 0x0028, 0x0029, 0x002A, 0x002B, 0x002C, 0x002D, 0x002E, 0x002F,
    0x0030, 0x0031, 0x0032, 0x0033, 0x0034, 0x0035, 0x0036, 0x0037, 0x0038, 0x0039, 0x003A, 0x003B,
    0x003C, 0x003D, 0x003E, 0x003F, 0x00A1, 0x0041, 0x0042, 0x0043, 0x0044, 0x0045, 0x0046, 0x0047,
    0x0048, 0x0049, 0x004A, 0x004B, 0x004C, 0x004D, 0x004E, 0x004F, 0x0050, 0x0051, 0x0052, 0x0053,
    0x0054, 0x0055, 0x0056, 0x0057, 0x0058, 0x0059, 0x005A, 0x00C4, 0x00D6, 0x00D1, 0x00DC, 0x00A7,
    0x00BF, 0x0061, 0x0062, 0x0063, 0x0064, 0x0065, 0x0066, 0x0067, 0x0068, 0x0069, 0x006A, 0x006B,
    0x006C, 0x006D, 0x006E, 0x006F, 0x0070, 0x0071, 0x0072, 0x0073, 0x0074, 0x0075, 0x0076, 0x0077,
    0x0078, 0x0079, 0x007A, 0x00E4, 0x00F6, 0x00F1, 0x00FC, 0x00E0,
};

/* Extension table (after the 0x1B escape); 0 = not defined. */
static uint32_t gsm7_ext(unsigned char c)
{
    switch (c) {
    case 0x0A:
        return 0x0C; /* page break */
    case 0x14:
        return '^';
    case 0x28:
        return '{';
    case 0x29:
        return '}';
    case 0x2F:
        return '\\';
    case 0x3C:
        return '[';
    case 0x3D:
        return '~';
    case 0x3E:
        return ']';
    case 0x40:
        return '|';
    case 0x65:
        return 0x20AC; /* euro */
    default:
        return 0;
    }
}

int ussd_gsm7_to_utf8(const unsigned char *septets, size_t len, char *out, size_t n)
{
    struct u8out o;
    u8_init(&o, out, n);
    for (size_t i = 0; i < len; i++)
        if (septets[i] > 0x7F)
            return -1;
    for (size_t i = 0; i < len && !o.full; i++) {
        unsigned char c = septets[i];
        if (c == 0x1B) {
            if (i + 1 >= len) {
                u8_put(&o, ' '); /* dangling escape */
                break;
            }
            uint32_t e = gsm7_ext(septets[++i]);
            /* 23.038: an undefined extension shows the default-table character */
            u8_put(&o, e ? e : gsm7_default[septets[i]]);
            continue;
        }
        u8_put(&o, gsm7_default[c]);
    }
    return (int)o.len;
}

static bool all_hex(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]))
            return false;
    return true;
}

static bool all_dec(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return n > 0;
}

static int hexv(char c)
{
    return isdigit((unsigned char)c) ? c - '0' : (tolower((unsigned char)c) - 'a' + 10);
}

/* Unpack septets from the hex of packed octets (23.038 6.1.2.1.1, LSB first). Returns the
 * septet count or -1. Trailing padding (CR, or 0 in the last 7 bits) is dropped. */
static int unpack_septets(const char *hex, size_t hn, unsigned char *sep, size_t max)
{
    if (hn == 0)
        return 0;
    if (hn % 2 != 0 || !all_hex(hex, hn))
        return -1;
    size_t nbytes = hn / 2, ns = nbytes * 8 / 7;
    if (ns > max)
        ns = max;
    for (size_t i = 0; i < ns; i++) {
        size_t bit = i * 7, byte = bit / 8, sh = bit % 8;
        unsigned v = (unsigned)(hexv(hex[2 * byte]) << 4 | hexv(hex[2 * byte + 1])) >> sh;
        if (sh > 1 && byte + 1 < nbytes)
            v |= (unsigned)(hexv(hex[2 * byte + 2]) << 4 | hexv(hex[2 * byte + 3])) << (8 - sh);
        sep[i] = (unsigned char)(v & 0x7F);
    }
    /* when the septets exactly fill the octets the last one is padding: CR (23.038) or 0 */
    if (ns > 0 && ns % 8 == 0 && (sep[ns - 1] == 0x0D || sep[ns - 1] == 0))
        ns--;
    return (int)ns;
}

int ussd_decode_gsm7_packed_hex(const char *hex, char *out, size_t n)
{
    unsigned char sep[1024];
    if (n)
        out[0] = '\0';
    int ns = unpack_septets(hex, strlen(hex), sep, sizeof sep);
    if (ns < 0)
        return -1;
    return ussd_gsm7_to_utf8(sep, (size_t)ns, out, n);
}

/* ---- UCS2 -------------------------------------------------------------------------------- */

static int ucs2_hex_n(const char *hex, size_t hn, char *out, size_t n, bool strict_print)
{
    struct u8out o;
    u8_init(&o, out, n);
    if (hn % 4 != 0 || (hn > 0 && !all_hex(hex, hn)))
        return -1;
    for (size_t i = 0; i < hn; i += 4) {
        uint32_t u = (uint32_t)(hexv(hex[i]) << 12 | hexv(hex[i + 1]) << 8 | hexv(hex[i + 2]) << 4 |
                                hexv(hex[i + 3]));
        if (u >= 0xD800 && u <= 0xDBFF) { /* high surrogate: needs a low one next */
            if (i + 8 > hn)
                return -1;
            uint32_t l = (uint32_t)(hexv(hex[i + 4]) << 12 | hexv(hex[i + 5]) << 8 |
                                    hexv(hex[i + 6]) << 4 | hexv(hex[i + 7]));
            if (l < 0xDC00 || l > 0xDFFF)
                return -1;
            u = 0x10000 + ((u - 0xD800) << 10) + (l - 0xDC00);
            i += 4;
        } else if (u >= 0xDC00 && u <= 0xDFFF) {
            return -1;
        }
        if (u == 0) {
            if (strict_print)
                return -1;
            continue; /* NUL padding some modems append */
        }
        if (strict_print && ((u < 0x20 && u != '\n' && u != '\r') || (u >= 0x7F && u < 0xA0) ||
                             u == 0xFFFE || u == 0xFFFF || (u >= 0xE000 && u <= 0xF8FF)))
            return -1;
        u8_put(&o, u);
    }
    return (int)o.len;
}

int ussd_decode_ucs2_hex(const char *hex, char *out, size_t n)
{
    if (n)
        out[0] = '\0';
    return ucs2_hex_n(hex, strlen(hex), out, n, false);
}

/* ---- +CUSD ------------------------------------------------------------------------------- */

enum alphabet { AL_GSM7, AL_8BIT, AL_UCS2 };

/* 23.038 section 5 (CBS data coding scheme, also used for USSD). */
static enum alphabet dcs_alphabet(int dcs)
{
    if (dcs < 0)
        return AL_GSM7;
    if (dcs == 0x11)
        return AL_UCS2;
    switch (dcs & 0xF0) {
    case 0x40:
    case 0x50:
    case 0x60:
    case 0x70:
    case 0x90: {
        int a = (dcs >> 2) & 3;
        return a == 1 ? AL_8BIT : a == 2 ? AL_UCS2 : AL_GSM7;
    }
    case 0xF0:
        return (dcs & 0x04) ? AL_8BIT : AL_GSM7;
    default:
        return AL_GSM7;
    }
}

/* Printable-text check for the heuristic decodes. */
static bool plausible_gsm7(const unsigned char *sep, int ns)
{
    int good = 0;
    for (int i = 0; i < ns; i++) {
        unsigned char c = sep[i];
        if (c == 0x1B) {
            i++;
            continue;
        }
        if (isalnum(c) || c == ' ')
            good++;
    }
    return ns > 0 && good * 10 >= ns * 6;
}

static bool ucs2_low_range(const char *s, size_t n)
{
    for (size_t i = 0; i + 3 < n; i += 4)
        if (s[i] != '0' || s[i + 1] < '0' || s[i + 1] > '4')
            return false;
    return true;
}

/* Decode the quoted text t[0..tn) of a +CUSD according to dcs (see the file comment). */
static void cusd_decode(const char *t, size_t tn, int dcs, char *out, size_t n)
{
    enum alphabet al = dcs_alphabet(dcs);
    bool hex = all_hex(t, tn);
    if (al == AL_UCS2 && hex && tn % 4 == 0) {
        /* dcs 0x11: a packed-GSM7 two-letter language code may precede the UCS2 text */
        if (dcs == 0x11 && tn >= 8) {
            unsigned char sep[4];
            char h4[5];
            memcpy(h4, t, 4);
            h4[4] = '\0';
            if (unpack_septets(h4, 4, sep, 4) >= 2 && islower(sep[0]) && islower(sep[1]) &&
                ucs2_hex_n(t + 4, tn - 4, out, n, false) >= 0)
                return;
        }
        if (ucs2_hex_n(t, tn, out, n, false) >= 0)
            return;
    }
    if (al == AL_8BIT && hex && tn % 2 == 0) {
        if (tn % 4 == 0 && tn >= 8 && ucs2_hex_n(t, tn, out, n, true) >= 0)
            return; /* modems in CSCS="UCS2" re-encode 8-bit answers as UCS2 too */
        char bytes[512];
        size_t nb = tn / 2 < sizeof bytes ? tn / 2 : sizeof bytes;
        for (size_t i = 0; i < nb; i++)
            bytes[i] = (char)(hexv(t[2 * i]) << 4 | hexv(t[2 * i + 1]));
        copy_text(bytes, nb, out, n);
        return;
    }
    if (al == AL_GSM7 && hex) {
        bool dec = all_dec(t, tn);
        if (tn % 4 == 0 && tn >= 8 && (!dec || ucs2_low_range(t, tn)) &&
            ucs2_hex_n(t, tn, out, n, true) > 0)
            return;
        if (tn % 2 == 0 && tn >= 4 && !dec) {
            unsigned char sep[1024];
            int ns = unpack_septets(t, tn, sep, sizeof sep);
            bool ok = ns > 0 && plausible_gsm7(sep, ns);
            for (int i = 0; ok && i < ns; i++)
                ok = sep[i] >= 0x20 || sep[i] == 0x0A || sep[i] == 0x0D || sep[i] == 0x1B;
            if (ok && ussd_gsm7_to_utf8(sep, (size_t)ns, out, n) >= 0)
                return;
        }
    }
    copy_text(t, tn, out, n);
    /* dcs 0x10: "xx\r" language prefix before GSM-7 text */
    if (dcs == 0x10 && strlen(out) >= 3 && islower((unsigned char)out[0]) &&
        islower((unsigned char)out[1]) && out[2] == '\r')
        memmove(out, out + 3, strlen(out + 3) + 1);
}

int at_parse_cusd(const char *line, struct at_cusd *out)
{
    const char *s = line;
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
        s++;
    if (strncasecmp(s, "+CUSD:", 6) != 0)
        return -1;
    s += 6;
    while (*s == ' ')
        s++;
    if (!isdigit((unsigned char)*s))
        return -1;
    int m = 0;
    while (isdigit((unsigned char)*s)) {
        if (m > 99)
            return -1;
        m = m * 10 + (*s++ - '0');
    }
    out->m = m;
    out->dcs = -1;
    out->text[0] = '\0';
    while (*s == ' ')
        s++;
    if (*s == '\0' || *s == '\r' || *s == '\n')
        return 0;
    if (*s != ',')
        return -1;
    s++;
    while (*s == ' ')
        s++;
    const char *t, *te;
    if (*s == '"') {
        t = s + 1;
        /* the text may hold commas and line breaks: it ends at the LAST quote */
        te = strrchr(t, '"');
        if (!te) /* truncated: keep what arrived */
            te = t + strlen(t);
        s = *te ? te + 1 : te;
    } else {
        /* unquoted text (rare): up to the last comma */
        t = s;
        te = strrchr(t, ',');
        if (!te)
            te = t + strlen(t);
        s = te;
    }
    while (*s == ' ')
        s++;
    if (*s == ',') {
        s++;
        while (*s == ' ')
            s++;
        int dcs = 0, nd = 0;
        while (isdigit((unsigned char)*s) && nd < 4) {
            dcs = dcs * 10 + (*s++ - '0');
            nd++;
        }
        if (nd > 0 && dcs <= 255)
            out->dcs = dcs;
    }
    cusd_decode(t, (size_t)(te - t), out->dcs, out->text, sizeof out->text);
    return 0;
}

/* ---- balance amount ---------------------------------------------------------------------- */

/* Lower-case ASCII and Cyrillic (both cases are 2 bytes in UTF-8, so offsets are kept). */
static void lower_utf8(const char *s, char *d, size_t n)
{
    size_t i = 0;
    const unsigned char *u = (const unsigned char *)s;
    for (; u[i] && i + 1 < n; i++) {
        unsigned char c = u[i];
        if (c == 0xD0 && i + 2 < n && u[i + 1] >= 0x90 && u[i + 1] <= 0x9F) {
            d[i] = (char)0xD0; /* А..П -> а..п */
            d[i + 1] = (char)(u[i + 1] + 0x20);
            i++;
        } else if (c == 0xD0 && i + 2 < n && u[i + 1] >= 0xA0 && u[i + 1] <= 0xAF) {
            d[i] = (char)0xD1; /* Р..Я -> р..я */
            d[i + 1] = (char)(u[i + 1] - 0x20);
            i++;
        } else if (c == 0xD0 && i + 2 < n && u[i + 1] == 0x81) {
            d[i] = (char)0xD1; /* Ё -> ё */
            d[i + 1] = (char)0x91;
            i++;
        } else {
            d[i] = (char)tolower(c);
        }
    }
    d[i] = '\0';
}

static bool word_start(const char *base, const char *p)
{
    if (p == base)
        return true;
    unsigned char c = (unsigned char)p[-1];
    return !(isalnum(c) || c >= 0x80);
}

static const char *const currency_after[] = {
    "rub", "руб", "р.",   "р",   "₽", "r.",    "r",   "eur", "€",   "usd", "$",   "gbp",
    "£",   "uah", "грн",  "kzt", "тг",  "тенге", "byn", "бел", "pln", "zł",  "zl",  "kr",
    "lei", "ron", "try",  "tl",  "sum", "сум",   "som", "сом", "azn", "gel", "amd", "драм",
    "inr", "rs",  "eur.", "chf", "czk", "kč",    "huf", "ft",  "mdl", "tjs", "kgs", "uzs"};
static const char *const currency_before[] = {"$",   "€",  "£",   "₽", "eur", "usd", "rub",
                                              "gbp", "rs", "rs.", "inr", "kzt", "uah", "chf"};
static const char *const not_money_after[] = {
    "min",  "мин", "sms",   "смс", "mms",   "ммс", "mb",   "мб",  "gb",   "гб",   "kb",     "кб",
    "%",    "day", "дн",    "дня", "сут",   "sec", "сек",  "час", "hour", "free", "шт",     "pcs",
    "ball", "бал", "point", "очк", "month", "мес", "year", "год", "г.",   "min.", "minutes"};

/* Does the lower-cased text at p start one of the words (a word may be followed by anything
 * that is not a Latin letter, so "р." and "руб" both match and "rubbish" does not)? */
static bool word_in(const char *p, const char *const *w, size_t nw)
{
    for (size_t i = 0; i < nw; i++) {
        size_t n = strlen(w[i]);
        if (strncmp(p, w[i], n) == 0) {
            unsigned char c = (unsigned char)p[n];
            bool alpha_end = isalpha((unsigned char)w[i][n - 1]) != 0;
            if (!alpha_end || !isalpha(c))
                return true;
        }
    }
    return false;
}

struct cand {
    double v;
    size_t start, end; /* byte offsets in the text */
    int score;         /* < 0: rejected */
};

/* Skip ASCII blanks and no-break spaces. */
static size_t skip_sp(const char *s, size_t i)
{
    for (;;) {
        if (s[i] == ' ' || s[i] == '\t')
            i++;
        else if ((unsigned char)s[i] == 0xC2 && (unsigned char)s[i + 1] == 0xA0)
            i += 2;
        else
            return i;
    }
}

/* Parse the number starting at digit s[i] (lower-cased text), with thousands groups ("1 234",
 * "1,234.56", "1.234,56") and a 1-2 digit decimal part. */
static struct cand read_number(const char *s, size_t i)
{
    struct cand c = {0, i, i, 0};
    double ip = 0;
    int ndig = 0;
    size_t j = i;
    while (isdigit((unsigned char)s[j])) {
        ip = ip * 10 + (s[j++] - '0');
        ndig++;
    }
    bool grouped = false;
    /* thousands groups: separator + exactly 3 digits not followed by another digit */
    for (;;) {
        size_t k = j;
        if (ndig > 3 && !grouped)
            break;
        if (s[k] == ' ')
            k++;
        else if ((unsigned char)s[k] == 0xC2 && (unsigned char)s[k + 1] == 0xA0)
            k += 2;
        else if ((s[k] == ',' || s[k] == '.') && isdigit((unsigned char)s[k + 1]) &&
                 isdigit((unsigned char)s[k + 2]) && isdigit((unsigned char)s[k + 3]) &&
                 !isdigit((unsigned char)s[k + 4]) &&
                 (s[k + 4] == (s[k] == ',' ? '.' : ',') || s[k + 4] == s[k]))
            k++; /* "1,234.56" / "1.234,56" / "1,234,567" */
        else
            break;
        if (isdigit((unsigned char)s[k]) && isdigit((unsigned char)s[k + 1]) &&
            isdigit((unsigned char)s[k + 2]) && !isdigit((unsigned char)s[k + 3])) {
            ip = ip * 1000 + (s[k] - '0') * 100 + (s[k + 1] - '0') * 10 + (s[k + 2] - '0');
            ndig += 3;
            grouped = true;
            j = k + 3;
        } else {
            break;
        }
    }
    double v = ip;
    if ((s[j] == '.' || s[j] == ',') && isdigit((unsigned char)s[j + 1])) {
        size_t k = j + 1;
        int nf = 0;
        double frac = 0, sc = 0.1;
        while (isdigit((unsigned char)s[k]) && nf < 6) {
            frac += (s[k++] - '0') * sc;
            sc /= 10;
            nf++;
        }
        if (isdigit((unsigned char)s[k]))
            nf = 99;
        if (nf <= 2) {
            v += frac;
            j = k;
            c.score += 2; /* money-like decimals */
        } else if (nf == 3 && !grouped) {
            /* "1,234" alone: a thousands separator */
            v = ip * 1000 + frac * 1000;
            j = k;
        }
    }
    c.v = v;
    c.end = j;
    /* codes and phone numbers: long undivided digit runs */
    if (ndig >= 7 && !grouped)
        c.score = -1;
    return c;
}

/* Score a candidate in context; < 0 rejects it. */
static void judge(const char *s, struct cand *c)
{
    if (c->score < 0)
        return;
    size_t a = c->start, e = c->end;
    char prev = a > 0 ? s[a - 1] : ' ';
    /* USSD codes (*100#), phone numbers (+7...), times (12:30), dates (12.01.2027, 2027-01-12) */
    if (prev == '*' || prev == '#' || prev == '+' || prev == ':' || prev == '/' ||
        (prev == '.' && a > 1 && isdigit((unsigned char)s[a - 2])) ||
        (prev == '-' && a > 1 && isdigit((unsigned char)s[a - 2]))) {
        c->score = -1;
        return;
    }
    char next = s[e];
    if (next == '*' || next == '#' || (next == ':' && isdigit((unsigned char)s[e + 1])) ||
        ((next == '.' || next == '/' || next == '-') && isdigit((unsigned char)s[e + 1]))) {
        c->score = -1;
        return;
    }
    size_t k = skip_sp(s, e);
    if (word_in(s + k, not_money_after, ARRAY_LEN(not_money_after))) {
        c->score = -1;
        return;
    }
    if (word_in(s + k, currency_after, ARRAY_LEN(currency_after)))
        c->score += 3;
    /* a currency word or sign just before: "EUR 5.00", "$100.00" */
    for (size_t i = 0; i < ARRAY_LEN(currency_before); i++) {
        size_t n = strlen(currency_before[i]);
        size_t b = a;
        if (b > 0 && s[b - 1] == '-')
            b--;
        while (b > 0 && s[b - 1] == ' ')
            b--;
        if (b >= n && strncmp(s + b - n, currency_before[i], n) == 0 && word_start(s, s + b - n)) {
            c->score += 3;
            break;
        }
    }
}

/* Negative sign: '-' or U+2212 right before the digits, or the word "минус"/"minus". */
static bool negative_before(const char *s, size_t a)
{
    if (a > 0 && s[a - 1] == '-' && (a < 2 || !isalnum((unsigned char)s[a - 2])))
        return true;
    if (a >= 3 && memcmp(s + a - 3, "\xe2\x88\x92", 3) == 0)
        return true;
    size_t b = a;
    while (b > 0 && s[b - 1] == ' ')
        b--;
    static const char *const words[] = {"минус", "minus"};
    for (size_t i = 0; i < 2; i++) {
        size_t n = strlen(words[i]);
        if (b >= n && strncmp(s + b - n, words[i], n) == 0)
            return true;
    }
    return false;
}

int ussd_find_amount(const char *text, double *amount)
{
    /* "credit" only counts when no real balance word is present ("Credit limit 500, balance
     * 20" is a balance of 20). */
    static const char *const keywords[] = {"balance", "balans",  "bal:",    "bal ",    "bal.",
                                           "saldo",   "остаток", "баланс",  "на счет", "на счёт",
                                           "счет:",   "счёт:",   "ostatok", "schet",   "credit"};
    char s[1024];
    if (!text)
        return -1;
    lower_utf8(text, s, sizeof s);

    size_t kw = (size_t)-1;
    for (size_t i = 0; i < ARRAY_LEN(keywords); i++) {
        if (kw != (size_t)-1 && strcmp(keywords[i], "credit") == 0)
            break;
        const char *p = s;
        while ((p = strstr(p, keywords[i])) != NULL) {
            if (word_start(s, p)) {
                size_t off = (size_t)(p - s) + strlen(keywords[i]);
                if (off < kw)
                    kw = off;
                break;
            }
            p++;
        }
    }

    struct cand best = {0, 0, 0, -1};
    bool have_best = false;
    for (size_t i = 0; s[i];) {
        if (!isdigit((unsigned char)s[i]) || (i > 0 && isdigit((unsigned char)s[i - 1]))) {
            i++;
            continue;
        }
        /* a digit glued to letters ("B3", "4G") is not an amount */
        if (i > 0 && isalpha((unsigned char)s[i - 1])) {
            while (isdigit((unsigned char)s[i]))
                i++;
            continue;
        }
        struct cand c = read_number(s, i);
        judge(s, &c);
        if (c.score >= 0 && negative_before(s, c.start))
            c.v = -c.v;
        i = c.end > i ? c.end : i + 1;
        if (c.score < 0)
            continue;
        if (kw != (size_t)-1 && c.start >= kw) {
            /* the first acceptable number after the balance keyword wins */
            *amount = c.v;
            return 0;
        }
        if (c.score > 0 && (!have_best || c.score > best.score)) {
            best = c;
            have_best = true;
        }
    }
    if (!have_best)
        return -1;
    *amount = best.v;
    return 0;
}
