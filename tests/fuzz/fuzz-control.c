/* SPDX-License-Identifier: MIT */
/* libFuzzer: a request on the control socket (Varlink: a JSON object, its NUL taken off),
 * as secretsyncctl or any local client might send it. Oracle: a request accepted has a
 * method, and names only as an array. */
#include <stdlib.h>

#include "core/control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        ControlRequest req;
        if (control_request_parse((const char *) data, size, &req) < 0)
                return 0;
        if (!req.method || (req.names && !json_object_is_type(req.names, json_type_array)) ||
            (req.names && req.names_invalid))
                abort();
        control_request_done(&req);
        return 0;
}
