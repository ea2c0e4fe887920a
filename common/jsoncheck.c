/* jsoncheck: see jsoncheck.h. */
#include "common/jsoncheck.h"
#include "common/common.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int jc_fail(struct jc *v, const char *path, const char *fmt, ...)
{
    if (v->failed++)
        return -1; /* keep the first error: it is the one to fix first */
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (path[0])
        snprintf(v->err, v->errlen, "%s: %s: %s", v->src, path, msg);
    else
        snprintf(v->err, v->errlen, "%s: %s", v->src, msg);
    return -1;
}

void jc_child(char *out, size_t n, const char *parent, const char *key)
{
    if (parent[0])
        snprintf(out, n, "%s.%s", parent, key);
    else
        snprintf(out, n, "%s", key);
}

const char *jc_type_name(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "?";
}

int jc_check_keys(struct jc *v, const char *path, json_t *obj, const char *const *allowed)
{
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val)
    {
        bool ok = false;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strcmp(*a, key) == 0;
        if (!ok) {
            char p[256];
            jc_child(p, sizeof p, path, key);
            return jc_fail(v, p, "unknown key (allowed here: see %s)", v->doc);
        }
    }
    return 0;
}

int jc_get_str(struct jc *v, const char *path, json_t *obj, const char *key, bool required,
               char *dst, size_t n)
{
    char p[256];
    jc_child(p, sizeof p, path, key);
    json_t *j = json_object_get(obj, key);
    if (!j)
        return required ? jc_fail(v, p, "missing (required)") : 0;
    if (!json_is_string(j))
        return jc_fail(v, p, "must be a string, got %s", jc_type_name(j));
    const char *s = json_string_value(j);
    size_t len = json_string_length(j);
    if (len != strlen(s))
        return jc_fail(v, p, "must not contain NUL bytes");
    if (len >= n)
        return jc_fail(v, p, "too long (%zu bytes, at most %zu)", len, n - 1);
    if (required && !len)
        return jc_fail(v, p, "must not be empty");
    str_copy(dst, s, n);
    return 0;
}

int jc_get_uint(struct jc *v, const char *path, json_t *obj, const char *key, unsigned long min,
                unsigned long max, unsigned *dst)
{
    char p[256];
    jc_child(p, sizeof p, path, key);
    json_t *j = json_object_get(obj, key);
    if (!j)
        return 0;
    if (!json_is_integer(j))
        return jc_fail(v, p, "must be an integer in %lu..%lu, got %s", min, max, jc_type_name(j));
    json_int_t x = json_integer_value(j);
    if (x < (json_int_t)min || x > (json_int_t)max)
        return jc_fail(v, p, "must be in %lu..%lu, got %lld", min, max, (long long)x);
    *dst = (unsigned)x;
    return 0;
}

int jc_check_name(struct jc *v, const char *path, const char *s)
{
    for (const char *c = s; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '-' && *c != '_' && *c != '.')
            return jc_fail(v, path, "\"%s\": only letters, digits, '-', '_' and '.' are allowed",
                           s);
    return 0;
}
