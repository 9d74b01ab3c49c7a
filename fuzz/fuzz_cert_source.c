/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz/fuzz_cert_source.c -- a certificate source's JSON (POST /v1/certificates bodies and the
 * entries of --cert-sources) must never crash, hang or leak. Oracle: what is accepted is a
 * source the inventory can use as is: a known kind, an id that is empty or a valid name, the
 * target its kind wants (an absolute path, or host:port), PEM only for pem, and thresholds with
 * critical <= warning. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/json/jsonx.h"
#include "common/names.h"
#include "server/certs.h"
#include "server/handlers/handlers.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    json_t *body = NULL;
    struct cert_spec s;
    const char *msg = NULL;

    if (!init) {
        jx_init();
        init = 1;
    }
    if (jx_parse_object(&body, (const char *)data, size, &msg) != ST_OK)
        return 0;
    if (certs_spec_parse(body, &s, &msg) == ST_OK) {
        bool path = s.kind == CERT_FILE || s.kind == CERT_DIR;
        if ((s.id[0] != '\0' && !names_valid(s.id)) || s.kind > CERT_ENDPOINT ||
            (path && s.target[0] != '/') ||
            (s.kind == CERT_ENDPOINT && strchr(s.target, ':') == NULL) ||
            ((s.pem != NULL) != (s.kind == CERT_PEM)) || s.warning < 0 || s.critical < 0 ||
            (s.warning > 0 && s.critical > s.warning))
            abort();
    } else if (msg == NULL) {
        abort(); /* every refusal says why */
    }
    cert_spec_free(&s);
    json_decref(body);
    return 0;
}
