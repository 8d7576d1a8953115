/* PCRE2 with 8-bit code units. The library's names are macros pasting the width onto the function names, which
   Swift cannot import: Swift calls the `_8` functions directly. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
