/* SPDX-License-Identifier: MIT */
#include "sinks/sink.h"

/* The registry: a new sink is one file and one line here. In the order of a secret's
 * settings, which is the order they are read, dumped and written in. */
const SinkVTable *const sink_vtables[] = {
        &sink_kubernetes_vtable,
        &sink_file_vtable,
        NULL,
};
