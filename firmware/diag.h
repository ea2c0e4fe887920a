/* diag: diagnostics for support. One builder shared by the dashboard's GET /api/v1/diagnostics
 * (inside the daemon) and `corridor diag` (a separate process that asks the daemon over the
 * control socket and adds what only a shell on the box can see).
 *
 * The bundle is one JSON document (docs/operations.md, "Diagnostics bundle"):
 *   {"bundle": "corridor-diag", "format": 1, "created": "<UTC>", "versions": {...},
 *    "config": {"path", "text" | "error"}, "daemon": {"socket", "running", "status", "log"},
 *    "modems": [...], "system": {...}, "redacted": N, "unavailable": {"<part>": "<why>"}}
 * written zstd-compressed (FILE.json.zst) or plain (FILE.json, or "-" for stdout). Every part
 * that cannot be collected is listed under "unavailable" with the reason instead of failing
 * the bundle: a support bundle is most needed exactly when things are broken. */
#ifndef CORRIDOR_FIRMWARE_DIAG_H
#define CORRIDOR_FIRMWARE_DIAG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define DIAG_FORMAT   1
#define DIAG_REDACTED "<redacted>"

/* {"corridor": "<version>", "<library>": "<version>", ...} for everything linked in. */
json_t *diag_versions(void);

/* This process's recent log lines (log_recent), oldest first, as a JSON array of strings. */
json_t *diag_log_lines(unsigned max_lines);

/* The daemon-side document: {"versions", "status", "log"}. Takes ownership of status (may be
 * NULL). Used by the dashboard and by the control socket's "diagnostics" request. */
json_t *diag_runtime_doc(json_t *status);

/* True for an object key whose value must not leave the box: a name containing "key",
 * "token", "password", "passwd" or "secret" (any case), except public keys ("public"). */
bool diag_key_is_secret(const char *key);

/* Replace, in place and recursively, the value of every secret key (diag_key_is_secret) with
 * DIAG_REDACTED, and the user:password part of URLs in any string with DIAG_REDACTED. Returns
 * how many values were changed. */
unsigned diag_redact(json_t *v);

struct diag_opts {
    const char *config_path;    /* read as JSON and redacted; need not be a valid config */
    const char *control_socket; /* NULL: the config's control_socket, else the default */
    bool system_info;           /* uname, uptime, ip addr/route/rule, dmesg, serial ports */
    bool journal;               /* fall back to journalctl when the daemon cannot give logs */
};

/* Collect everything into one document (caller json_decref()s). Only out of memory gives NULL. */
json_t *diag_collect(const struct diag_opts *o);

/* Write doc to path: "-" = plain JSON on stdout, "*.json" = plain JSON, anything else = zstd.
 * The file is created mode 0600 (it still describes the box) and written whole or not at all
 * (temporary file + rename). 0 ok, -1 with err naming the file. */
int diag_write(json_t *doc, const char *path, char *err, size_t errlen);

/* Read a bundle written by diag_write (plain or zstd; at most max_bytes decompressed). Returns
 * the document or NULL with err. For tests and for support tooling. */
json_t *diag_read(const char *path, size_t max_bytes, char *err, size_t errlen);

#endif
