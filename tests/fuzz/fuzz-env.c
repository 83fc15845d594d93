/* SPDX-License-Identifier: MIT */
/* libFuzzer: the env, json, raw and template renderers on arbitrary values, with a
 * round-trip oracle for env and raw. An env file must read back to exactly the values given
 * (SPEC: "any value reads back exactly through both sh and systemd EnvironmentFile="), and
 * the only values it may refuse are those such a file cannot hold: a NUL byte, or bytes
 * that are not UTF-8 or are Unicode noncharacters (systemd refuses the whole file then).
 * The reader below is written from those rules, not from the renderer: inside double
 * quotes, a backslash before " \ $ ` stands for that character (for sh and systemd alike),
 * a backslash before a newline joins the lines (so a value's newline cannot follow one), a
 * bare $ or ` would be expanded by sh, and everything else (newlines included) is literal. tests/integration/test-env-roundtrip.py reads rendered
 * files back through sh, bash and systemd's own parser. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sinks/sink.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Strict UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF), and none of the
 * noncharacters U+FDD0..U+FDEF and U+xxFFFE/U+xxFFFF. */
static bool env_value_representable(const uint8_t *p, size_t n) {
        for (size_t i = 0; i < n;) {
                uint32_t c = p[i];
                size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
                if (c == 0 || len == 0 || i + len > n)
                        return false;
                if (len > 1)
                        c &= 0xff >> (len + 1);
                for (size_t k = 1; k < len; k++) {
                        if ((p[i + k] & 0xc0) != 0x80)
                                return false;
                        c = (c << 6) | (p[i + k] & 0x3f);
                }
                static const uint32_t min[] = { 0, 0, 0x80, 0x800, 0x10000 };
                if (c < min[len] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff) || (c >= 0xfdd0 && c <= 0xfdef) ||
                    (c & 0xfffe) == 0xfffe)
                        return false;
                i += len;
        }
        return true;
}

/* Reads KEY="value" lines; returns the number of assignments or -1 if the text is not
 * made of such lines only. Values are malloc'ed, with their lengths. */
static int env_read(const uint8_t *t, size_t n, char *keys[], uint8_t *vals[], size_t lens[], int max) {
        size_t i = 0;
        int count = 0;

        while (i < n) {
                size_t k = i;
                while (k < n && (t[k] == '_' || (t[k] >= 'A' && t[k] <= 'Z') || (t[k] >= 'a' && t[k] <= 'z') ||
                                 (k > i && t[k] >= '0' && t[k] <= '9')))
                        k++;
                if (k == i || count == max || k + 1 >= n || t[k] != '=' || t[k + 1] != '"')
                        return -1;
                keys[count] = strndup((const char *) t + i, k - i);
                uint8_t *v = malloc(n + 1);
                size_t vl = 0;
                if (!keys[count] || !v)
                        abort();
                for (i = k + 2; i < n && t[i] != '"'; i++) {
                        if (t[i] == '$' || t[i] == '`')
                                return -1;
                        if (t[i] == '\\' && i + 1 < n && t[i + 1] == '\n')
                                return -1;
                        if (t[i] == '\\' && i + 1 < n && t[i + 1] != '\0' && strchr("\"\\$`", t[i + 1]))
                                i++;
                        v[vl++] = t[i];
                }
                vals[count] = v;
                lens[count++] = vl;
                if (i + 1 >= n || t[i] != '"' || t[i + 1] != '\n')
                        return -1;
                i += 2;
        }
        return count;
}

static void check_env(const SecretData *d, const char *names[], const uint8_t *values[], const size_t lens[]) {
        FileTarget t = { .path = (char *) "/nonexistent", .format = FILE_FORMAT_ENV };
        SecBuf *out = NULL;
        char *err = NULL;
        bool representable = true;
        for (int i = 0; i < 2; i++)
                /* execve() takes no longer KEY=value string (MAX_ARG_STRLEN, NUL included) */
                representable = representable && env_value_representable(values[i], lens[i]) &&
                                strlen(names[i]) + 1 + lens[i] < 32 * 4096;

        int r = sink_file_render(&t, d, &out, &err);
        if (r < 0) {
                if (representable) {
                        fprintf(stderr, "env: a value an env file can hold was refused: %s\n", err);
                        abort();
                }
                free(err);
                return;
        }
        if (!representable) {
                fprintf(stderr, "env: a value no env file can hold was rendered\n");
                abort();
        }
        char *keys[3] = { 0 };
        uint8_t *vals[3] = { 0 };
        size_t got[3] = { 0 };
        int c = env_read(out->data, out->len, keys, vals, got, 3);
        if (c != 2) {
                fprintf(stderr, "env: rendered text is not two KEY=\"value\" lines (%d)\n", c);
                abort();
        }
        for (int i = 0; i < 2; i++) {
                if (strcmp(keys[i], names[i]) != 0 || got[i] != lens[i] || memcmp(vals[i], values[i], lens[i]) != 0) {
                        fprintf(stderr, "env: %s read back as %s with %zu bytes instead of %zu\n", names[i], keys[i],
                                got[i], lens[i]);
                        abort();
                }
                free(keys[i]);
                free(vals[i]);
        }
        secbuf_free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        SecretData *d = secret_data_new();
        if (!d)
                return 0;
        /* first byte: split point between two values */
        size_t cut = size ? data[0] % (size + 1) : 0;
        const char *names[] = { "A", "B_2" };
        const uint8_t *values[] = { data, data + cut };
        const size_t lens[] = { cut, size - cut };
        secret_data_set(d, "A", secbuf_new_from(data, cut));
        secret_data_set(d, "B_2", secbuf_new_from(data + cut, size - cut));

        check_env(d, names, values, lens);

        /* raw: exactly the bytes of the key, nothing added */
        FileTarget raw = { .path = (char *) "/nonexistent", .format = FILE_FORMAT_RAW, .key = (char *) "B_2" };
        SecBuf *out = NULL;
        char *err = NULL;
        if (sink_file_render(&raw, d, &out, &err) < 0 || out->len != lens[1] || memcmp(out->data, values[1], lens[1]) != 0) {
                fprintf(stderr, "raw: not the value's exact bytes (%s)\n", err ? err : "");
                abort();
        }
        secbuf_free(out);

        /* json and template: no crash, no leak */
        static const FileFormat formats[] = { FILE_FORMAT_JSON, FILE_FORMAT_TEMPLATE };
        for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
                FileTarget t = { .path = (char *) "/nonexistent", .format = formats[i], .key = (char *) "B_2",
                                 .template_text = (char *) "x={{ A | json }} y={{ B_2 | base64 }} z={{ A }}" };
                out = NULL;
                err = NULL;
                if (sink_file_render(&t, d, &out, &err) >= 0)
                        secbuf_free(out);
                free(err);
        }
        secret_data_free(d);
        return 0;
}
