/* SPDX-License-Identifier: MIT */
#include "util/base64.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "util/cleanup.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char alphabet_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int encode(SecBuf *b, const void *p, size_t len, const char *abc, bool pad) {
        const uint8_t *s = p;
        char out[4];
        int r = 0;

        for (size_t i = 0; i < len && r >= 0; i += 3) {
                uint32_t v = (uint32_t) s[i] << 16;
                size_t n = MIN(len - i, (size_t) 3);

                if (n > 1)
                        v |= (uint32_t) s[i + 1] << 8;
                if (n > 2)
                        v |= s[i + 2];
                out[0] = abc[(v >> 18) & 0x3f];
                out[1] = abc[(v >> 12) & 0x3f];
                out[2] = n > 1 ? abc[(v >> 6) & 0x3f] : '=';
                out[3] = n > 2 ? abc[v & 0x3f] : '=';
                r = secbuf_append(b, out, pad ? sizeof(out) : n + 1);
        }
        explicit_bzero(out, sizeof(out));
        return r;
}

int base64_encode_append(SecBuf *b, const void *p, size_t len) {
        return encode(b, p, len, alphabet, true);
}

int base64url_encode_append(SecBuf *b, const void *p, size_t len) {
        return encode(b, p, len, alphabet_url, false);
}

static int value_of(char c) {
        const char *p = c ? memchr(alphabet, c, sizeof(alphabet) - 1) : NULL;
        return p ? (int) (p - alphabet) : -1;
}

int base64_decode(const char *s, size_t len, bool ignore_space, SecBuf **ret) {
        _cleanup_secbuf_ SecBuf *b = secbuf_new(len / 4 * 3 + 3);
        uint32_t acc = 0;
        size_t n = 0, pad = 0;
        uint8_t out[3];

        if (!b)
                return -ENOMEM;
        for (size_t i = 0; i < len; i++) {
                char c = s[i];
                if (ignore_space && memchr(" \t\r\n", c, 4) && c)
                        continue;
                if (c == '=') {
                        pad++;
                        continue;
                }
                int v = value_of(c);
                if (v < 0 || pad > 0) /* no data after padding */
                        return -EINVAL;
                acc = acc << 6 | (uint32_t) v;
                if (++n % 4 == 0) {
                        out[0] = (uint8_t) (acc >> 16);
                        out[1] = (uint8_t) (acc >> 8);
                        out[2] = (uint8_t) acc;
                        if (secbuf_append(b, out, 3) < 0)
                                return -ENOMEM;
                        acc = 0;
                }
        }
        /* 1 leftover character cannot encode a byte; padding, if any, must complete the quad. */
        size_t rest = n % 4;
        if (rest == 1 || (pad > 0 && (rest == 0 || rest + pad != 4)) || pad > 2)
                return -EINVAL;
        if (rest == 2 || rest == 3) {
                acc <<= 6 * (4 - rest);
                out[0] = (uint8_t) (acc >> 16);
                out[1] = (uint8_t) (acc >> 8);
                if (secbuf_append(b, out, rest - 1) < 0)
                        return -ENOMEM;
        }
        explicit_bzero(out, sizeof(out));
        acc = 0;
        *ret = TAKE_PTR(b);
        return 0;
}
