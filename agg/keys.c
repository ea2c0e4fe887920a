/* keys: key files and base64 (see keys.h). */
#include "agg/keys.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void keys_to_b64(const uint8_t key[KEYS_LEN], char out[KEYS_B64_LEN])
{
    sodium_bin2base64(out, KEYS_B64_LEN, key, KEYS_LEN, sodium_base64_VARIANT_ORIGINAL);
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Decode the whole (trimmed) text; 0 ok, -1 bad base64, -2 wrong length (*n = decoded). */
static int decode_key(const char *s, size_t len, uint8_t key[KEYS_LEN], size_t *n)
{
    uint8_t buf[96];
    const char *end = NULL;
    *n = 0;
    while (len && is_space(*s)) {
        s++;
        len--;
    }
    while (len && is_space(s[len - 1]))
        len--;
    if (len > 128)
        return -2;
    if (sodium_base642bin(buf, sizeof(buf), s, len, NULL, n, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        end != s + len) {
        sodium_memzero(buf, sizeof(buf));
        return -1;
    }
    int rc = -2;
    if (*n == KEYS_LEN) {
        memcpy(key, buf, KEYS_LEN);
        rc = 0;
    }
    sodium_memzero(buf, sizeof(buf));
    return rc;
}

int keys_parse_public(const char *b64, uint8_t pub[KEYS_LEN], const char *what, char *err,
                      size_t errlen)
{
    if (!what)
        what = "public key";
    if (sodium_init() < 0) {
        set_err(err, errlen, "%s: libsodium initialisation failed", what);
        return -1;
    }
    if (!b64 || !*b64) {
        set_err(err, errlen, "%s: empty; expected 44 characters of base64", what);
        return -1;
    }
    size_t n;
    int rc = decode_key(b64, strlen(b64), pub, &n);
    if (rc == -1) {
        set_err(err, errlen, "%s: not valid base64 (expected 44 characters A-Z a-z 0-9 + / =)",
                what);
        return -1;
    }
    if (rc == -2) {
        set_err(err, errlen, "%s: decodes to %zu bytes, expected %u", what, n, KEYS_LEN);
        return -1;
    }
    if (sodium_is_zero(pub, KEYS_LEN)) {
        set_err(err, errlen, "%s: all-zero key is not a valid X25519 public key", what);
        return -1;
    }
    return 0;
}

static void fsync_parent(const char *path)
{
    /* The new directory entry must survive a power cut too (vehicles lose power abruptly).
     * Best effort: the key itself is already on disk. */
    char dir[4096];
    size_t n = strlen(path);
    if (n >= sizeof(dir))
        return;
    memcpy(dir, path, n + 1);
    char *slash = strrchr(dir, '/');
    if (!slash)
        strcpy(dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
}

int keys_generate(const char *path, char pub_b64[KEYS_B64_LEN], char *err, size_t errlen)
{
    if (!path || !*path || !pub_b64) {
        set_err(err, errlen, "keygen: no key file path given");
        return -1;
    }
    if (sodium_init() < 0) {
        set_err(err, errlen, "keygen: libsodium initialisation failed");
        return -1;
    }
    uint8_t priv[KEYS_LEN], pub[KEYS_LEN];
    char line[KEYS_B64_LEN + 1];
    randombytes_buf(priv, sizeof(priv));
    crypto_scalarmult_base(pub, priv);
    keys_to_b64(priv, line);
    line[KEYS_B64_LEN - 1] = '\n';
    line[KEYS_B64_LEN] = '\0';
    sodium_memzero(priv, sizeof(priv));

    int rc = -1;
    /* O_EXCL: never overwrite (a deployed key lost = a vehicle locked out); O_NOFOLLOW: never
     * write a key through a planted symlink. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            set_err(err, errlen, "key file %s already exists; refusing to overwrite it", path);
        else
            set_err(err, errlen, "cannot create key file %s: %s", path, strerror(errno));
        goto out;
    }
    /* The umask can only remove bits, but be explicit about the result. */
    if (fchmod(fd, 0600) != 0) {
        set_err(err, errlen, "cannot set mode 0600 on key file %s: %s", path, strerror(errno));
        goto fail;
    }
    size_t len = KEYS_B64_LEN, off = 0;
    while (off < len) {
        ssize_t w = write(fd, line + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            set_err(err, errlen, "cannot write key file %s: %s", path,
                    w < 0 ? strerror(errno) : "short write");
            goto fail;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0) {
        set_err(err, errlen, "cannot fsync key file %s: %s", path, strerror(errno));
        goto fail;
    }
    if (close(fd) != 0) {
        fd = -1;
        set_err(err, errlen, "cannot close key file %s: %s", path, strerror(errno));
        goto fail;
    }
    fd = -1;
    fsync_parent(path);
    keys_to_b64(pub, pub_b64);
    rc = 0;
    goto out;
fail:
    if (fd >= 0)
        close(fd);
    unlink(path);
out:
    sodium_memzero(line, sizeof(line));
    return rc;
}

int keys_load_private(const char *path, uint8_t priv[KEYS_LEN], uint8_t pub[KEYS_LEN], char *err,
                      size_t errlen)
{
    if (!path || !*path || !priv) {
        set_err(err, errlen, "no private key file configured");
        return -1;
    }
    if (sodium_init() < 0) {
        set_err(err, errlen, "key file %s: libsodium initialisation failed", path);
        return -1;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        set_err(err, errlen, "cannot open key file %s: %s", path, strerror(errno));
        return -1;
    }
    int rc = -1;
    char buf[256];
    size_t got = 0;
    struct stat st;
    /* fstat on the open descriptor: the file checked is the file read. */
    if (fstat(fd, &st) != 0) {
        set_err(err, errlen, "cannot stat key file %s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        set_err(err, errlen, "key file %s is not a regular file", path);
        goto out;
    }
    if (st.st_mode & 077) {
        set_err(err, errlen,
                "key file %s has mode %04o; must not be readable or writable by group or others "
                "(chmod 600)",
                path, (unsigned)(st.st_mode & 07777));
        goto out;
    }
    for (;;) {
        ssize_t r = read(fd, buf + got, sizeof(buf) - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            set_err(err, errlen, "cannot read key file %s: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        got += (size_t)r;
        if (got == sizeof(buf)) {
            set_err(err, errlen, "key file %s is too long to be a key (expected 44 characters)",
                    path);
            goto out;
        }
    }
    size_t n;
    int d = decode_key(buf, got, priv, &n);
    if (d == -1) {
        set_err(err, errlen, "key file %s: not valid base64 (expected 44 characters)", path);
        goto out;
    }
    if (d == -2) {
        set_err(err, errlen, "key file %s: decodes to %zu bytes, expected %u", path, n, KEYS_LEN);
        goto out;
    }
    if (pub)
        crypto_scalarmult_base(pub, priv);
    rc = 0;
out:
    sodium_memzero(buf, sizeof(buf));
    close(fd);
    return rc;
}
