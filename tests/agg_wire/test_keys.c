/* Key files: generate (0600, never overwrite), load, refuse loose modes with a clear message,
 * base64 errors. */
#include "agg/keys.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "testlib.h"

static char dir[] = "/tmp/corridor-keys-XXXXXX";

static void write_file(const char *path, const char *text, mode_t mode)
{
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    CHECK(fchmod(fd, mode) == 0);
    close(fd);
}

static void test_generate_load(void)
{
    char path[256], pub_b64[KEYS_B64_LEN], err[256];
    snprintf(path, sizeof(path), "%s/vehicle.key", dir);
    mode_t old = umask(0); /* even with a permissive umask the file is 0600 */
    CHECK_INT(keys_generate(path, pub_b64, err, sizeof(err)), 0);
    umask(old);
    CHECK_INT(strlen(pub_b64), 44);
    struct stat st;
    CHECK_INT(stat(path, &st), 0);
    CHECK_INT(st.st_mode & 07777, 0600);
    CHECK_INT(st.st_size, 45); /* 44 base64 + newline */

    uint8_t priv[KEYS_LEN], pub[KEYS_LEN], pub2[KEYS_LEN];
    CHECK_INT(keys_load_private(path, priv, pub, err, sizeof(err)), 0);
    CHECK_INT(keys_parse_public(pub_b64, pub2, "printed key", err, sizeof(err)), 0);
    CHECK(memcmp(pub, pub2, KEYS_LEN) == 0);
    char again[KEYS_B64_LEN];
    keys_to_b64(pub, again);
    CHECK_STR(again, pub_b64);
    /* The printed public key is not the private key. */
    char priv_b64[KEYS_B64_LEN];
    keys_to_b64(priv, priv_b64);
    CHECK(strcmp(priv_b64, pub_b64) != 0);

    /* Never overwrites. */
    err[0] = '\0';
    CHECK_INT(keys_generate(path, pub_b64, err, sizeof(err)), -1);
    CHECK(strstr(err, path) && strstr(err, "already exists"));
    uint8_t priv2[KEYS_LEN];
    CHECK_INT(keys_load_private(path, priv2, NULL, err, sizeof(err)), 0);
    CHECK(memcmp(priv, priv2, KEYS_LEN) == 0);

    /* Two keys differ. */
    char path2[256], pub_b64_2[KEYS_B64_LEN];
    snprintf(path2, sizeof(path2), "%s/hub.key", dir);
    CHECK_INT(keys_generate(path2, pub_b64_2, err, sizeof(err)), 0);
    CHECK(strcmp(pub_b64, pub_b64_2) != 0);

    /* Missing directory: clear error naming the path. */
    char bad[256];
    snprintf(bad, sizeof(bad), "%s/nodir/x.key", dir);
    CHECK_INT(keys_generate(bad, pub_b64, err, sizeof(err)), -1);
    CHECK(strstr(err, bad) != NULL);
    CHECK_INT(keys_generate("", pub_b64, err, sizeof(err)), -1);
    /* Through a symlink: refused (O_NOFOLLOW). */
    char link[256];
    snprintf(link, sizeof(link), "%s/link.key", dir);
    snprintf(bad, sizeof(bad), "%s/target.key", dir);
    CHECK_INT(symlink(bad, link), 0);
    CHECK_INT(keys_generate(link, pub_b64, err, sizeof(err)), -1);
    CHECK(access(bad, F_OK) != 0);
    unlink(link);
    unlink(path);
    unlink(path2);
}

static void test_modes(void)
{
    char path[256], err[256];
    snprintf(path, sizeof(path), "%s/mode.key", dir);
    uint8_t k[KEYS_LEN];
    randombytes_buf(k, sizeof(k));
    char line[KEYS_B64_LEN + 1];
    keys_to_b64(k, line);
    strcat(line, "\n");
    uint8_t priv[KEYS_LEN];
    mode_t bad_modes[] = {0644, 0640, 0604, 0660, 0602, 0620, 0606, 0666, 0777};
    for (size_t i = 0; i < sizeof(bad_modes) / sizeof(bad_modes[0]); i++) {
        write_file(path, line, bad_modes[i]);
        err[0] = '\0';
        CHECK_INT(keys_load_private(path, priv, NULL, err, sizeof(err)), -1);
        char want[320];
        snprintf(want, sizeof(want), "key file %s has mode %04o; must not be readable", path,
                 (unsigned)bad_modes[i]);
        CHECK_MSG(strncmp(err, want, strlen(want)) == 0, "got \"%s\"", err);
        CHECK(strstr(err, "chmod 600") != NULL);
        /* The key never appears in the message. */
        CHECK(strstr(err, line) == NULL);
    }
    mode_t good_modes[] = {0600, 0400};
    for (size_t i = 0; i < 2; i++) {
        write_file(path, line, good_modes[i]);
        CHECK_INT(keys_load_private(path, priv, NULL, err, sizeof(err)), 0);
        CHECK(memcmp(priv, k, KEYS_LEN) == 0);
    }
    chmod(path, 0600);
    /* Whitespace around the key is fine. */
    char spaced[80];
    snprintf(spaced, sizeof(spaced), "  \t%.44s \r\n\n", line);
    write_file(path, spaced, 0600);
    CHECK_INT(keys_load_private(path, priv, NULL, err, sizeof(err)), 0);
    CHECK(memcmp(priv, k, KEYS_LEN) == 0);
    /* Content errors. */
    write_file(path, "not base64 at all!\n", 0600);
    CHECK_INT(keys_load_private(path, priv, NULL, err, sizeof(err)), -1);
    CHECK(strstr(err, path) && strstr(err, "base64"));
    write_file(path, "AAAA\n", 0600);
    CHECK_INT(keys_load_private(path, priv, NULL, err, sizeof(err)), -1);
    CHECK(strstr(err, "decodes to 3 bytes, expected 32") != NULL);
    write_file(path, "", 0600);
    CHECK_INT(keys_load_private(path, priv, NULL, err, sizeof(err)), -1);
    char big[600];
    memset(big, 'A', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    write_file(path, big, 0600);
    CHECK_INT(keys_load_private(path, priv, NULL, err, sizeof(err)), -1);
    CHECK(strstr(err, "too long") != NULL);
    unlink(path);
    /* Missing file, directory. */
    CHECK_INT(keys_load_private(path, priv, NULL, err, sizeof(err)), -1);
    CHECK(strstr(err, "cannot open key file") && strstr(err, path));
    chmod(dir, 0700);
    CHECK_INT(keys_load_private(dir, priv, NULL, err, sizeof(err)), -1);
    CHECK(strstr(err, "not a regular file") != NULL);
    CHECK_INT(keys_load_private(NULL, priv, NULL, err, sizeof(err)), -1);
}

static void test_public_parse(void)
{
    char err[256];
    uint8_t pub[KEYS_LEN], k[KEYS_LEN];
    for (int i = 0; i < 32; i++)
        k[i] = (uint8_t)(i + 1);
    char b64[KEYS_B64_LEN];
    keys_to_b64(k, b64);
    CHECK_INT(keys_parse_public(b64, pub, "hub_public_key", err, sizeof(err)), 0);
    CHECK(memcmp(pub, k, 32) == 0);
    char spaced[64];
    snprintf(spaced, sizeof(spaced), " %s\n", b64);
    CHECK_INT(keys_parse_public(spaced, pub, "hub_public_key", err, sizeof(err)), 0);

    CHECK_INT(keys_parse_public("", pub, "hub_public_key", err, sizeof(err)), -1);
    CHECK(strstr(err, "hub_public_key: empty") != NULL);
    CHECK_INT(keys_parse_public(NULL, pub, "x", err, sizeof(err)), -1);
    CHECK_INT(keys_parse_public("!!!!", pub, "vehicles[2].public_key", err, sizeof(err)), -1);
    CHECK(strstr(err, "vehicles[2].public_key: not valid base64") != NULL);
    /* One character short, one character changed to URL-safe alphabet, padding missing. */
    char tmp[64];
    snprintf(tmp, sizeof(tmp), "%.43s", b64);
    CHECK_INT(keys_parse_public(tmp, pub, "k", err, sizeof(err)), -1);
    snprintf(tmp, sizeof(tmp), "%s", b64);
    tmp[5] = '-';
    CHECK_INT(keys_parse_public(tmp, pub, "k", err, sizeof(err)), -1);
    CHECK(strstr(err, "not valid base64") != NULL);
    /* Valid base64 of the wrong length. */
    CHECK_INT(keys_parse_public("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gIQ==", pub, "k", err,
                                sizeof(err)),
              -1);
    CHECK(strstr(err, "decodes to 34 bytes, expected 32") != NULL);
    CHECK_INT(keys_parse_public("AAAA", pub, "k", err, sizeof(err)), -1);
    CHECK(strstr(err, "decodes to 3 bytes") != NULL);
    /* Trailing garbage after a valid key. */
    snprintf(tmp, sizeof(tmp), "%s x", b64);
    CHECK_INT(keys_parse_public(tmp, pub, "k", err, sizeof(err)), -1);
    /* All-zero key. */
    CHECK_INT(keys_parse_public("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", pub, "k", err,
                                sizeof(err)),
              -1);
    CHECK(strstr(err, "all-zero") != NULL);
    /* NULL what: a default name. */
    CHECK_INT(keys_parse_public("AAAA", pub, NULL, err, sizeof(err)), -1);
    CHECK(strstr(err, "public key") != NULL);
    /* Tiny error buffer: truncated, not overflowed. */
    char small[8];
    CHECK_INT(keys_parse_public("AAAA", pub, "k", small, sizeof(small)), -1);
    CHECK_INT(strlen(small), 7);
}

int main(void)
{
    if (sodium_init() < 0 || !mkdtemp(dir))
        return 2;
    test_generate_load();
    test_modes();
    test_public_parse();
    rmdir(dir);
    return test_summary();
}
