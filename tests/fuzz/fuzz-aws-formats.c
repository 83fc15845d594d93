/* SPDX-License-Identifier: MIT */
/* libFuzzer: the AWS store's formats other than JSON: STS's XML answers, the SDKs' shared
 * credentials and config files (INI), ISO 8601 timestamps. The first byte picks the parser.
 * Oracle: an XML value is within AWS_XML_VALUE_MAX; a value found is never empty of its
 * buffer; a time parsed is within the years 0..9999. */
#include <stdlib.h>
#include <string.h>

#include "stores/aws-formats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const char *const tags[] = { "AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration", "Code" };
        static const char *const profiles[] = { "default", "prod", "profile prod", "" };
        static const char *const keys[] = { "aws_access_key_id", "aws_secret_access_key", "region", "role_arn" };
        SecBuf *v = NULL;

        if (size < 1)
                return 0;
        const uint8_t sel = data[0];
        data++, size--;
        switch (sel % 3) {
        case 0:
                if (aws_xml_value(data, size, tags[(sel / 3) % 5], &v) >= 0 && (!v || v->len > AWS_XML_VALUE_MAX))
                        abort();
                break;
        case 1: {
                SecBuf *ini = secbuf_new_from(data, size);
                if (!ini)
                        return 0;
                if (aws_ini_value(ini, profiles[(sel / 3) % 4], keys[(sel / 12) % 4], &v) >= 0 && !v)
                        abort();
                secbuf_free(ini);
                break;
        }
        case 2: {
                char *s = strndup((const char *) data, size);
                int64_t t;
                if (s && aws_parse_time(s, &t) >= 0 && (t < -62167219200LL - 86400 || t > 253402300800LL + 86400))
                        abort();
                free(s);
                break;
        }
        }
        secbuf_free(v);
        return 0;
}
