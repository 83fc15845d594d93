/* SPDX-License-Identifier: MIT */
/* libFuzzer: Google credential files: a service account key (JSON as IAM issues it, its
 * private_key PEM signed with) and, for workload identity federation, the external account
 * file with the subject token it names. The first byte picks: even, a key file; odd, an
 * external account file, then a NUL, then the subject token file's content. Oracle: a key
 * accepted gives a form body and its token_uri; a refusal says why. */
#include <stdlib.h>
#include <string.h>

#include "stores/gcp-credentials.h"
#include "util/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        json_object *o = NULL;
        SecBuf *out = NULL;

        if (size < 1)
                return 0;
        const uint8_t *nul = memchr(data + 1, 0, size - 1);
        size_t json_len = data[0] % 2 && nul ? (size_t) (nul - (data + 1)) : size - 1;
        if (json_parse_strict(data + 1, json_len, &o) < 0)
                return 0;
        if (data[0] % 2 == 0) {
                const char *uri = NULL, *why = NULL;
                int r = gcp_key_assertion(o, 1767225600, &out, &uri, &why);
                if ((r >= 0 && (!out || !uri || strncmp(uri, "http", 4) != 0)) || (r < 0 && !why))
                        abort();
        } else {
                SecBuf *raw = nul ? secbuf_new_from(nul + 1, size - 1 - json_len - 1) : secbuf_new(0);
                if (raw && gcp_subject_token(o, raw, &out) >= 0 && !out)
                        abort();
                secbuf_free(raw);
        }
        secbuf_free(out);
        json_put_wiped(o);
        return 0;
}
