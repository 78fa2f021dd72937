/* The wasm boundary. Every other file in src/ is plain C11; the exported
 * functions are listed by their SB_EXPORT markers (see CMakeLists.txt). This
 * file holds what only the wasm build needs. */
#include <emscripten.h>

#include "switchboard.h"

/* Bumped whenever an exported signature changes, so the JS loader can refuse
 * a stale separately-served .wasm instead of misbehaving. */
#define SB_WASM_ABI 1

EMSCRIPTEN_KEEPALIVE int sb_wasm_abi(void);

int sb_wasm_abi(void)
{
    return SB_WASM_ABI;
}
