# embed.cmake — turns INPUT (edge/openapi.json) into a C array in OUTPUT, so the
# binary serves /openapi.json without reading files at run time.
file(READ ${INPUT} content HEX)
string(LENGTH "${content}" hex_length)
math(EXPR length "${hex_length} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${content}")
file(WRITE ${OUTPUT} "/* generated from edge/openapi.json by edge/embed.cmake: do not edit */\n#include <stddef.h>\n"
                     "const unsigned char edge_openapi_json[] = {${bytes}};\n"
                     "const size_t edge_openapi_json_len = ${length};\n")
