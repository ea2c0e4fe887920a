/* jsoncheck: the validation helpers shared by every JSON file corridor reads (the appliance
 * configuration in firmware/config.c, board profiles in board/profile.c).
 *
 * Each walk keeps the current key path in hand ("tunnel.classes[2].dscp"), so every message
 * names exactly where the problem is, and the first error wins because it is the one to fix
 * first: later calls of jc_fail() only count. Unknown keys are errors (a typo in an optional
 * key must not silently fall back to its default). Functions return 0, or -1 after recording
 * the error in the context. */
#ifndef CORRIDOR_COMMON_JSONCHECK_H
#define CORRIDOR_COMMON_JSONCHECK_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct jc {
    const char *src; /* file name (or "<string>") that starts every message */
    const char *doc; /* where the allowed keys are documented, for "unknown key" */
    char *err;
    size_t errlen;
    int failed; /* errors seen; only the first is kept in err */
};

/* "src: path: message" (or "src: message" for an empty path); always -1. */
__attribute__((format(printf, 3, 4))) int jc_fail(struct jc *v, const char *path, const char *fmt,
                                                  ...);
/* out = parent.key (or key at the top level). */
void jc_child(char *out, size_t n, const char *parent, const char *key);
/* "an object", "a string", ... for messages. */
const char *jc_type_name(const json_t *j);
/* Every key of obj must be in allowed (NULL-terminated). */
int jc_check_keys(struct jc *v, const char *path, json_t *obj, const char *const *allowed);
/* String at obj.key into dst (size n): required (present and not empty) or optional (dst kept
 * when absent). Refused: not a string, embedded NUL bytes, n bytes or longer. */
int jc_get_str(struct jc *v, const char *path, json_t *obj, const char *key, bool required,
               char *dst, size_t n);
/* Optional integer at obj.key in min..max into dst (kept when absent). */
int jc_get_uint(struct jc *v, const char *path, json_t *obj, const char *key, unsigned long min,
                unsigned long max, unsigned *dst);
/* Names end up in log lines, metric labels and file names: letters, digits, '-', '_', '.'. */
int jc_check_name(struct jc *v, const char *path, const char *s);

#endif
