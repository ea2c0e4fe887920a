/* keys: X25519 key files and base64 public keys for the tunnel (vehicle and hub).
 *
 * A key file holds one base64 (standard alphabet, padded: 44 characters) private key and a
 * newline, mode 0600. Public keys travel as the same base64 in configuration files and on stdout
 * of `corridor keygen` / `corridor-hub keygen`. Errors are returned in a caller buffer naming the
 * file or field and what is wrong; key material never appears in an error or a log. */
#ifndef CORRIDOR_AGG_KEYS_H
#define CORRIDOR_AGG_KEYS_H

#include <stddef.h>
#include <stdint.h>

#define KEYS_LEN     32u
#define KEYS_B64_LEN 45u /* 44 characters + NUL */

/* Create a new private key in path (which must not exist: a deployed key is never overwritten),
 * mode 0600, fsync'ed, and write its public key as base64 to pub_b64. 0 or -1 with err set. */
int keys_generate(const char *path, char pub_b64[KEYS_B64_LEN], char *err, size_t errlen);

/* Load a private key file. Refuses a file that group or others may read or write, or that is
 * not a regular file. priv receives the key, pub (optional) its public key. 0 or -1 with err. */
int keys_load_private(const char *path, uint8_t priv[KEYS_LEN], uint8_t pub[KEYS_LEN], char *err,
                      size_t errlen);

/* Parse a base64 public key (surrounding whitespace allowed). what names the field in the
 * error ("hub_public_key", "vehicles[3].public_key"). 0 or -1 with err. */
int keys_parse_public(const char *b64, uint8_t pub[KEYS_LEN], const char *what, char *err,
                      size_t errlen);

/* Encode a 32-byte key as base64 (44 characters + NUL). */
void keys_to_b64(const uint8_t key[KEYS_LEN], char out[KEYS_B64_LEN]);

#endif
