/* The wasm boundary. Every other file in src/ is plain C11; the exported
 * functions are listed by their SB_EXPORT markers (see CMakeLists.txt). This
 * file holds what only the wasm build needs. */
#include <emscripten.h>

#include "switchboard.h"

EMSCRIPTEN_KEEPALIVE int sb_wasm_abi(void);

int sb_wasm_abi(void)
{
    return SB_WASM_ABI;
}
